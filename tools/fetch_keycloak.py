"""Fetches Keycloak, the real OIDC provider the authentication tests run against, from Maven Central into
.deps/keycloak-<version>/ (ignored by git): its distribution zip (org.keycloak:keycloak-quarkus-dist), checked
against Maven Central's SHA-1 and unpacked. Idempotent: a present, complete folder is kept. Prints one line.
Keycloak runs on the JDK that Spark already needs (17 or later). `make keycloak` runs it; `make test` needs it.

Usage: python tools/fetch_keycloak.py
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

VERSION = "26.4.0"
ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".deps" / f"keycloak-{VERSION}"
URL = (
    "https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/"
    f"{VERSION}/keycloak-quarkus-dist-{VERSION}.zip"
)


def main() -> int:
    if (HOME / "bin" / "kc.sh").exists() and (HOME / "lib" / "quarkus-run.jar").exists():
        print(f"keycloak: up to date ({HOME.relative_to(ROOT)})")
        return 0
    start = time.monotonic()
    HOME.parent.mkdir(parents=True, exist_ok=True)
    archive = HOME.parent / f"keycloak-{VERSION}.zip"
    try:
        with urllib.request.urlopen(URL, timeout=60) as answer, archive.open("wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)
        with urllib.request.urlopen(URL + ".sha1", timeout=60) as answer:
            expected = answer.read().decode().split()[0]
    except OSError as e:
        print(f"keycloak: cannot fetch {URL}: {e}", file=sys.stderr)
        return 1
    digest = hashlib.sha1(archive.read_bytes()).hexdigest()  # Maven Central publishes SHA-1 sums
    if digest != expected:
        print(f"keycloak: {archive.name} has SHA-1 {digest}, Maven Central says {expected}", file=sys.stderr)
        return 1
    unpacked = HOME.parent / f"keycloak-{VERSION}.tmp"
    shutil.rmtree(unpacked, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(unpacked)
    (inner,) = [p for p in unpacked.iterdir() if p.is_dir()]
    for script in (inner / "bin").glob("*.sh"):
        script.chmod(0o755)
    shutil.rmtree(HOME, ignore_errors=True)
    inner.rename(HOME)
    shutil.rmtree(unpacked, ignore_errors=True)
    archive.unlink()
    print(f"keycloak: fetched {VERSION} into {HOME.relative_to(ROOT)} in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
