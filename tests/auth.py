"""Authentication for tests: static token files, and Core and Serving started with authentication on (OIDC tokens
of a `tests.oidc.TestIssuer` or of Keycloak, and static service tokens), optionally on TLS."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from provender.core.app import CoreSettings, start_core
from provender.kernel.service_tokens import token_line
from provender.local.ports import free_port
from provender.serving.app import ServingSettings, start_serving
from tests.keycloak import Keycloak
from tests.oidc import TestIssuer
from tests.tls import TestCA

SERVING_TOKEN_NAME = "provender-serving"
_counter = iter(range(1_000_000))


def write_tokens(path: Path, tokens: Mapping[str, str]) -> Path:
    """A static tokens file: one `<name> sha256:<hex>` line per token (name -> token)."""
    lines = ["# name  hash of the token"] + [token_line(name, token) for name, token in tokens.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def auth_platform(
    postgres,
    redis_server,
    base: Path,
    issuer: TestIssuer | Keycloak,
    tokens: Mapping[str, str],
    global_roles: Mapping[str, str],
    ca: TestCA | None = None,
    **core: Any,
) -> Iterator[dict[str, Any]]:
    """Core (with a JobService port of its own) and Serving with authentication on; Serving calls Core with a
    service token of its own, reader everywhere. Yields the addresses (core, jobs, serving), `tokens` (the file
    of static tokens, which the test may rewrite) and `core_running`."""
    base.mkdir(parents=True, exist_ok=True)
    serving_token = f"serving-{os.urandom(16).hex()}"
    tokens_file = write_tokens(base / "tokens", {**tokens, SERVING_TOKEN_NAME: serving_token})
    (base / "serving-token").write_text(serving_token + "\n")
    tls: dict[str, str] = {}
    core_tls: dict[str, str] = {}
    if ca is not None:
        pair = ca.issue(f"auth-server-{next(_counter)}")
        tls = {"tls_cert": str(pair.cert), "tls_key": str(pair.key)}
        core_tls = {"core_tls_ca": str(ca.path)}
    auth = {
        "auth_oidc_issuer": issuer.url,
        "auth_oidc_audience": issuer.audience,
        "auth_tokens_file": [str(tokens_file)],
    }
    running = start_core(
        CoreSettings(
            postgres_url=postgres.create_database(f"auth_{os.getpid()}_{next(_counter)}"),
            port=0,
            job_port=(job_port := free_port()),
            host="127.0.0.1",
            staging_location=(base / "staging").as_uri(),
            launcher_work_dir=str(base / "launcher"),
            redis_url=redis_server.url,
            auth_global_roles={**global_roles, f"token:{SERVING_TOKEN_NAME}": "reader"},
            **auth,
            **tls,
            **core,
        )
    )
    serving = None
    try:
        serving = start_serving(
            ServingSettings(
                redis_url=redis_server.url,
                core_url=f"127.0.0.1:{running.port}",
                port=0,
                host="127.0.0.1",
                spec_refresh_seconds=0.2,
                auth_refresh_seconds=0.2,
                core_token_file=str(base / "serving-token"),
                **auth,
                **tls,
                **core_tls,
            ),
            registry=CollectorRegistry(),
        )
        yield {
            "core": f"127.0.0.1:{running.port}",
            "jobs": f"127.0.0.1:{job_port}",
            "serving": f"127.0.0.1:{serving.running.port}",
            "tokens": tokens_file,
            "core_running": running,
        }
    finally:
        if serving is not None:
            serving.running.stop(grace=1)
        running.stop(grace=1)
