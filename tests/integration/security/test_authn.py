"""The authenticator's own promises, against a test issuer on loopback: a verified token is remembered but never
past its expiry; settings that cannot work stop the server at start with a message naming the setting; health
checks and reflection can be put behind authentication too."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from provender.kernel.errors import InvalidArgument, Unauthenticated
from provender.server.authn import Authenticator, AuthSettings, OidcVerifier
from provender.serving.app import ServingSettings, start_serving
from tests.auth import write_tokens
from tests.oidc import test_issuer


def test_a_remembered_token_stops_working_when_it_expires():
    with test_issuer() as issuer:
        auth = Authenticator(OidcVerifier(issuer.url, issuer.audience, "groups"), None)
        token = issuer.mint("alice", groups=["ml"], expires_in=2 - 30)  # within the 30 s clock-skew leeway
        principal = auth.authenticate(f"Bearer {token}")
        assert (principal.id, principal.groups) == ("user:alice", ("ml",))
        fetched = issuer.jwks_requests
        assert auth.authenticate(f"Bearer {token}") == principal  # remembered: no second check
        assert issuer.jwks_requests == fetched
        time.sleep(2.2)
        with pytest.raises(Unauthenticated, match="expired at"):
            auth.authenticate(f"Bearer {token}")


def test_settings_that_cannot_work_stop_the_server_at_start(tmp_path):
    with pytest.raises(InvalidArgument, match="auth_oidc_audience"):
        AuthSettings(auth_oidc_issuer="https://login.example.com").authenticator()
    bad = tmp_path / "tokens"
    bad.write_text("ci the-token-itself-not-its-hash\n")
    with pytest.raises(InvalidArgument, match=r"line 1.*provender access new-token"):
        AuthSettings(auth_tokens_file=[str(bad)]).authenticator()
    with pytest.raises(InvalidArgument, match="readable file"):
        AuthSettings(auth_tokens_file=[str(tmp_path / "missing")]).authenticator()
    assert AuthSettings().authenticator() is None  # nothing configured: authentication off


def test_a_broken_tokens_file_keeps_the_previous_tokens(tmp_path):
    path = write_tokens(tmp_path / "tokens", {"ci": "ci-token"})
    auth = AuthSettings(auth_tokens_file=[str(path)]).authenticator()
    assert auth is not None and auth.authenticate("Bearer ci-token").id == "token:ci"
    path.write_text("half-written")
    time.sleep(1.1)
    assert auth.authenticate("Bearer ci-token").id == "token:ci"


def test_health_and_reflection_can_require_a_credential(redis_server, tmp_path):
    tokens = write_tokens(tmp_path / "tokens", {"prober": "prober-token"})
    app = start_serving(
        ServingSettings(
            redis_url=redis_server.url,
            core_url="127.0.0.1:1",  # no Core: health does not need it
            port=0,
            host="127.0.0.1",
            auth_tokens_file=[str(tokens)],
            auth_protect_health=True,
        ),
        registry=CollectorRegistry(),
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.RpcError) as e:
                health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as e:  # a streaming method: Watch
                next(iter(health.Watch(health_pb2.HealthCheckRequest(), timeout=5)))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = health.Check(
                health_pb2.HealthCheckRequest(),
                metadata=(("authorization", "Bearer prober-token"),),
                timeout=5,
            )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        app.stop(grace=1)
