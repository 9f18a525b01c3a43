"""The real Feast 0.9 SDK with its own SSL and auth options (enable_auth, auth_provider="oauth" and the oauth_*
client-credentials settings) against Core, its JobService port and Serving with TLS and authentication on: it
fetches its token from the issuer, applies, lists tables and jobs, and looks up as a writer of its project; a
client without credentials is refused UNAUTHENTICATED."""

from __future__ import annotations

from tests.auth import auth_platform
from tests.oidc import OAuthClient, test_issuer
from tests.tls import TestCA


def test_feast09_sdk_with_oauth_over_tls(feast09, postgres, redis_server, tmp_path):
    ca = TestCA(tmp_path / "ca")
    with test_issuer() as issuer:
        issuer.clients["notebook"] = OAuthClient("s3cret", groups=["fraud-team"])
        with auth_platform(
            postgres,
            redis_server,
            tmp_path / "platform",
            issuer,
            tokens={},
            global_roles={"group:fraud-team": "writer"},
            ca=ca,
        ) as urls:
            out = feast09.driver(
                "auth_scenario.py",
                urls["core"],
                urls["jobs"],
                urls["serving"],
                str(ca.path),
                issuer.url + "/token",
                "notebook",
                "s3cret",
                issuer.audience,
                (tmp_path / "riders").as_uri(),
                timeout=120,
            )
    assert out["tables"] == ["rider_auth"], out
    assert out["jobs"] == [], out
    assert out.get("online") == {"rider_id": [7], "rider_auth:rides": [None]}, out
    # Feast's Serving client re-raises the status as a plain RpcError with the server's message.
    assert out["anonymous_list"].startswith("UNAUTHENTICATED: this server requires a credential"), out
    assert "this server requires a credential" in out["anonymous_online"], out
    # Feast's oauth provider asked the issuer for a token with its client credentials and audience.
    assert {(r["client_id"], r["audience"], r["grant_type"]) for r in issuer.token_requests} == {
        ("notebook", issuer.audience, "client_credentials")
    }
