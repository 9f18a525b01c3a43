"""An OIDC issuer of the test's own: real discovery, JWKS and OAuth client-credentials token documents served
over HTTP on loopback (Python's http.server), with RSA keys the test generates and signs with PyJWT.

`mint(...)` makes any token a test needs (expired, another audience, unknown key); `/token` answers the OAuth
client-credentials grant as Feast 0.9's and our SDK's `oauth` provider call it, for the clients it was given.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class OAuthClient:
    secret: str
    groups: list[str] = field(default_factory=list)


class TestIssuer:
    __test__ = False  # not a pytest class

    def __init__(self, audience: str = "provender", lifetime: float = 300.0) -> None:
        self.audience = audience
        self.lifetime = lifetime
        self.clients: dict[str, OAuthClient] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.jwks_requests = 0
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._json(
                        200,
                        {
                            "issuer": issuer.url,
                            "jwks_uri": issuer.url + "/jwks",
                            "token_endpoint": issuer.url + "/token",
                            "id_token_signing_alg_values_supported": ["RS256"],
                        },
                    )
                elif self.path == "/jwks":
                    issuer.jwks_requests += 1
                    self._json(200, issuer.jwks())
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if self.path != "/token":
                    return self._json(404, {"error": "not_found"})
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    body = json.loads(raw or b"{}")  # as Feast 0.9's SDK sends it (Auth0 accepts it)
                else:
                    body = dict(urllib.parse.parse_qsl(raw.decode()))  # RFC 6749's form
                body["content_type"] = self.headers.get("Content-Type", "")
                issuer.token_requests.append(body)
                client = issuer.clients.get(body.get("client_id", ""))
                if body.get("grant_type") != "client_credentials":
                    return self._json(400, {"error": "unsupported_grant_type"})
                if client is None or client.secret != body.get("client_secret"):
                    return self._json(401, {"error": "invalid_client"})
                token = issuer.mint(body["client_id"], groups=client.groups, audience=body.get("audience"))
                self._json(
                    200,
                    {"access_token": token, "token_type": "Bearer", "expires_in": int(issuer.lifetime)},
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def rotate(self) -> str:
        """A new signing key (published beside the old ones); returns its key id."""
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def mint(
        self,
        subject: str,
        groups: list[str] | None = None,
        audience: str | None = None,
        expires_in: float | None = None,
        issuer: str | None = None,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        now = time.time()
        payload = {
            "iss": issuer or self.url,
            "sub": subject,
            "aud": audience or self.audience,
            "iat": int(now),
            "exp": int(now + (self.lifetime if expires_in is None else expires_in)),
            "groups": groups or [],
            **claims,
        }
        kid = kid or self.kid
        return jwt.encode(payload, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def start(self) -> TestIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def test_issuer(**kwargs: Any) -> Iterator[TestIssuer]:
    issuer = TestIssuer(**kwargs).start()
    try:
        yield issuer
    finally:
        issuer.stop()


test_issuer.__test__ = False  # type: ignore[attr-defined]
