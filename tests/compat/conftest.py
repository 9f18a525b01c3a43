"""Fixtures for the compat tests: the real Feast 0.9 SDK in a venv of its own, and a way to run code in it.

The SDK (feast 0.9.5.2, feast-spark 0.2.37, protobuf 3.20) can never be imported into our interpreter, so
tests run small driver scripts (tests/compat/drivers/) under the SDK's interpreter and assert on the JSON
they print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPAT_DIR = Path(__file__).resolve().parent
DRIVERS = COMPAT_DIR / "drivers"
INSTALLERS = (REPO_ROOT / "tools" / "install-feast09-sdk.sh",)  # as the Makefile uses it
INSTALL_TIMEOUT_S = 1200
CHECK = (
    "import json, feast, feast_spark, google.protobuf; "
    "print(json.dumps({'feast': feast.__version__, 'protobuf': google.protobuf.__version__}))"
)


def _clean_env(home: Path) -> dict[str, str]:
    """Our environment without anything that would leak our venv or Feast settings into the SDK's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("FEAST_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(
        FEAST_TELEMETRY="False",
        HOME=str(home),
        FEAST_CONFIG=str(home / ".feast"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONWARNINGS="ignore",
    )
    return env


@dataclass(frozen=True)
class Feast09:
    """The Feast 0.9 SDK venv, and helpers to run its interpreter and its `feast` CLI."""

    venv: Path
    home: Path
    versions: dict

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        env = _clean_env(self.home)
        env.update(extra)
        return env

    def run(self, argv: list[str], timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=self.env(**env), cwd=self.home
        )

    def driver(self, name: str, *args: str, timeout: float = 60, **env: str) -> dict:
        """Run tests/compat/drivers/NAME under the SDK's interpreter; returns the JSON it prints."""
        proc = self.run([str(self.python), str(DRIVERS / name), *args], timeout=timeout, **env)
        if proc.returncode != 0:
            pytest.fail(
                f"driver {name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"driver {name} printed no JSON\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")

    def feast_cli(self, *args: str, core_url: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.run([str(self.venv / "bin" / "feast"), *args], timeout=timeout, FEAST_CORE_URL=core_url)


def _check(venv: Path, home: Path) -> dict | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    proc = subprocess.run(
        [str(python), "-c", CHECK], capture_output=True, text=True, timeout=120, env=_clean_env(home)
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _install(venv: Path) -> None:
    installer = next((p for p in INSTALLERS if p.exists()), None)
    if installer is None:
        pytest.fail(
            f"the Feast 0.9 SDK venv {venv} is missing and no installer was found at "
            f"{' or '.join(map(str, INSTALLERS))}; run `make feast09`"
        )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.setdefault("PYTHON", "python3.11" if sys.version_info[:2] != (3, 11) else sys.executable)
    proc = subprocess.run(
        ["bash", str(installer), str(venv)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        env=env,
        cwd=REPO_ROOT,
    )
    if proc.returncode != 0:
        pytest.fail(f"installing the Feast 0.9 SDK with {installer} failed:\n{proc.stdout}\n{proc.stderr}")
    # As the Makefile does: a Feast 0.9 notebook reads its outputs with pandas from URLs, through fsspec.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "fsspec<2024"], check=True, timeout=300)
    (venv / ".installed").touch()


@pytest.fixture(scope="session")
def feast09(tmp_path_factory: pytest.TempPathFactory) -> Feast09:
    """The real Feast 0.9 SDK: $PROVENDER_FEAST09_VENV or <repo>/.venv-feast09, installed when missing."""
    venv = Path(os.environ.get("PROVENDER_FEAST09_VENV") or REPO_ROOT / ".venv-feast09").resolve()
    home = tmp_path_factory.mktemp("feast09-home")
    versions = _check(venv, home)
    if versions is None:
        _install(venv)
        versions = _check(venv, home)
        if versions is None:
            pytest.fail(f"{venv} was installed but `import feast, feast_spark` still fails there")
    assert versions["feast"].startswith("0.9."), versions
    assert versions["protobuf"].startswith("3.20."), versions
    return Feast09(venv=venv, home=home, versions=versions)
