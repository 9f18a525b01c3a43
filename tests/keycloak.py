"""Keycloak, a real OIDC provider, for the authentication tests: the distribution `make keycloak` fetched into
.deps/, started in its development mode on loopback with a realm of the test's own (clients with the OAuth
client-credentials grant, their service accounts in groups, an audience mapper and a groups claim), and stopped
after. Each start has a home of its own (its own `data/`), sharing the distribution's jars."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provender.local.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


class KeycloakNotAvailable(Exception):
    pass


def find_keycloak() -> Path:
    homes = sorted((ROOT / ".deps").glob("keycloak-*/bin/kc.sh"))
    if not homes:
        raise KeycloakNotAvailable("Keycloak is not in .deps/ (run `make keycloak`)")
    if shutil.which("java") is None:
        raise KeycloakNotAvailable("no java on PATH for Keycloak")
    return homes[-1].parent.parent


@dataclass(frozen=True)
class Keycloak:
    url: str  # the realm's issuer
    audience: str
    log: Path

    @property
    def token_url(self) -> str:
        return self.url + "/protocol/openid-connect/token"


def realm(name: str, audience: str, clients: Mapping[str, tuple[str, list[str]]]) -> dict:
    """A realm whose clients (id -> (secret, groups of its service account)) get access tokens for `audience`
    with a `groups` claim."""
    groups = sorted({g for _, gs in clients.values() for g in gs})
    mappers = [
        {"name": "audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
         "config": {"included.custom.audience": audience, "access.token.claim": "true", "id.token.claim": "false"}},
        {"name": "groups", "protocol": "openid-connect", "protocolMapper": "oidc-group-membership-mapper",
         "config": {"claim.name": "groups", "full.path": "false", "access.token.claim": "true",
                    "id.token.claim": "false", "userinfo.token.claim": "false"}},
    ]  # fmt: skip
    return {
        "realm": name,
        "enabled": True,
        "accessTokenLifespan": 300,
        "groups": [{"name": g} for g in groups],
        "clients": [
            {
                "clientId": cid,
                "enabled": True,
                "publicClient": False,
                "secret": secret,
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
                "directAccessGrantsEnabled": False,
                "protocolMappers": mappers,
            }
            for cid, (secret, _) in clients.items()
        ],
        "users": [
            {
                "username": f"service-account-{cid}",
                "enabled": True,
                "serviceAccountClientId": cid,
                "groups": [f"/{g}" for g in gs],
            }
            for cid, (_, gs) in clients.items()
        ],
    }


@contextmanager
def running_keycloak(base: Path, realm_json: dict, audience: str, timeout: float = 240) -> Iterator[Keycloak]:
    dist = find_keycloak()
    home = base / "keycloak"
    shutil.copytree(dist / "bin", home / "bin")  # kc.sh takes its home from its own real path
    for part in ("conf", "lib", "providers", "themes", "version.txt"):
        (home / part).symlink_to(dist / part)
    (home / "data" / "import").mkdir(parents=True)
    (home / "data" / "import" / "realm.json").write_text(json.dumps(realm_json))
    port = free_port()
    log = base / "keycloak.log"
    env = {
        **os.environ,
        "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
        "KC_BOOTSTRAP_ADMIN_PASSWORD": os.urandom(8).hex(),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(home / "bin" / "kc.sh"), "start-dev", f"--http-port={port}", "--http-host=127.0.0.1",
             f"--http-management-port={free_port()}", "--import-realm"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    issuer = f"http://127.0.0.1:{port}/realms/{realm_json['realm']}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise KeycloakNotAvailable(
                    f"Keycloak exited with {proc.returncode}: {log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise KeycloakNotAvailable(
                        f"Keycloak did not serve {issuer} within {timeout:.0f} s: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)
        yield Keycloak(issuer, audience, log)
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)
            proc.wait()
