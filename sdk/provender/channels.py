"""gRPC channels from the SDK to Provender's services: plain or TLS, and the call metadata that carries a bearer
token when authentication is enabled (a static `auth_token`, or one fetched with OAuth client credentials)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import grpc

from provender.config import Config
from provender.kernel.errors import InvalidArgument, Unauthenticated


def open_channel(url: str, enable_ssl: bool, server_cert: str) -> grpc.Channel:
    if not enable_ssl:
        return grpc.insecure_channel(url)
    roots = None
    if server_cert:
        try:
            roots = Path(server_cert).expanduser().read_bytes()
        except OSError as e:
            raise InvalidArgument(
                "server_ssl_cert", server_cert, f"a readable PEM file of the CA to trust ({e.strerror})"
            ) from None
    return grpc.secure_channel(url, grpc.ssl_channel_credentials(root_certificates=roots))


class BearerToken:
    """The `authorization` metadata of every call when `enable_auth` is set; fetched tokens are reused until a
    minute before they expire."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._token = config.auth_token
        self._expires = float("inf") if config.auth_token else 0.0

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if not (
            self.config.enable_auth or self.config.auth_token
        ):  # a token given is a token meant to be sent
            return ()
        if time.monotonic() >= self._expires:
            self._token, lifetime = self._fetch()
            self._expires = time.monotonic() + max(lifetime - 60, 0)
        return (("authorization", f"Bearer {self._token}"),)

    def _fetch(self) -> tuple[str, float]:
        c = self.config
        if c.auth_provider != "oauth":
            raise InvalidArgument(
                "auth_provider",
                c.auth_provider,
                "'oauth' (with the oauth_* options), or an auth_token to send as it is",
            )
        needed = ("oauth_token_request_url", "oauth_client_id", "oauth_client_secret")
        missing = [name for name in needed if not getattr(c, name)]
        if missing:
            raise InvalidArgument("oauth options", missing, "all of " + ", ".join(needed))
        body = {
            "grant_type": c.oauth_grant_type or "client_credentials",
            "client_id": c.oauth_client_id,
            "client_secret": c.oauth_client_secret,
        }
        if c.oauth_audience:
            body["audience"] = c.oauth_audience
        # The client-credentials grant as RFC 6749 (4.4) sends it: a form. Keycloak, Okta and Entra ID take only
        # this; Auth0 takes it too. (Feast 0.9's SDK sends JSON, which Auth0 alone accepts.)
        request = urllib.request.Request(
            c.oauth_token_request_url,
            data=urllib.parse.urlencode(body).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=c.timeout) as answer:
                reply = json.loads(answer.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise Unauthenticated(f"could not get a token from {c.oauth_token_request_url}: {e}") from None
        if "access_token" not in reply:
            raise Unauthenticated(f"{c.oauth_token_request_url} answered without an access_token")
        return str(reply["access_token"]), float(reply.get("expires_in", 3600))
