"""Authentication of callers: who sent a call, from its bearer token (or its client certificate).

Two kinds of credential, either or both configured (`AuthSettings`); with neither, authentication is off and
every caller is served, as on a laptop:
- **OIDC tokens**: JWTs from the issuer named by `--auth-oidc-issuer`, checked with PyJWT against the issuer's
  JWKS (found through its discovery document, cached, fetched again for an unknown key id at most once per
  cooldown); signature, issuer, audience (`--auth-oidc-audience`) and expiry are checked. The principal is
  `user:<sub>`, its groups come from the `--auth-groups-claim` claim.
- **Static service tokens**: lines `<name> sha256:<hex digest of the token>` in the files of `--auth-tokens-file`
  (a Kubernetes Secret mounted as files). The files are read again when they change, so a token is added or
  revoked without a restart; the tokens themselves are never stored. The principal is `token:<name>`.
Under mutual TLS, a verified client certificate is a credential too: `cert:<common name>`.

A verified token is remembered for up to a minute (never past its expiry), so a busy client costs one signature
check a minute, not one a call. Every refusal is `Unauthenticated` with a message that says what is expected.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from provender.kernel.errors import InvalidArgument, Unauthenticated
from provender.kernel.service_tokens import LINE, hash_token
from provender.server.inline import before_blocking
from provender.server.principal import Principal
from provender.server.settings import setting

log = logging.getLogger(__name__)

BEARER = "bearer "
# The signature algorithms an OIDC token may use: asymmetric only, so a token cannot be signed with a public key.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
CLOCK_SKEW_SECONDS = 30
_SHOWN = 80  # the most characters of a caller's value echoed in a message


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[: _SHOWN - 3] + "...")


@dataclass
class AuthSettings:
    """Authentication settings shared by Core and Serving (a mixin of their settings)."""

    auth_oidc_issuer: str = setting(
        "",
        flag="--auth-oidc-issuer",
        env="AUTH_OIDC_ISSUER",
        group="auth",
        help="accept OIDC bearer tokens (JWT) from this issuer, e.g. https://login.example.com/realms/ml; its keys "
        "come from <issuer>/.well-known/openid-configuration",
    )
    auth_oidc_audience: str = setting(
        "",
        flag="--auth-oidc-audience",
        env="AUTH_OIDC_AUDIENCE",
        group="auth",
        help="the audience (aud) an OIDC token must be issued for (required with --auth-oidc-issuer)",
    )
    auth_groups_claim: str = setting(
        "groups",
        flag="--auth-groups-claim",
        env="AUTH_GROUPS_CLAIM",
        group="auth",
        help="the OIDC token claim that lists the caller's groups",
    )
    auth_tokens_file: list[str] = setting(
        [],
        flag="--auth-tokens-file",
        env="AUTH_TOKENS_FILE",
        group="auth",
        help="comma-separated files of static service tokens, one `<name> sha256:<hex>` line each (re-read when "
        "they change)",
    )
    auth_protect_health: bool = setting(
        False,
        flag="--auth-protect-health",
        env="AUTH_PROTECT_HEALTH",
        group="auth",
        help="require a credential for health checks and reflection too (open by default)",
    )

    def authenticator(self) -> Authenticator | None:
        """None when no credential is configured (authentication off); else one checked now."""
        if not (self.auth_oidc_issuer or self.auth_tokens_file):
            return None
        oidc = None
        if self.auth_oidc_issuer:
            if not self.auth_oidc_audience:
                raise InvalidArgument(
                    "auth_oidc_audience", "", "the audience your issuer puts in tokens for Provender"
                )
            oidc = OidcVerifier(self.auth_oidc_issuer, self.auth_oidc_audience, self.auth_groups_claim)
        tokens = StaticTokens([Path(p) for p in self.auth_tokens_file]) if self.auth_tokens_file else None
        return Authenticator(oidc, tokens, protect_health=self.auth_protect_health)


class StaticTokens:
    """The static service tokens of some files, by the hash of each token; re-read when a file changes."""

    RECHECK_SECONDS = 1.0

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp: tuple[Any, ...] = ()
        self._names: dict[str, str] = {}
        self.refresh(force=True)

    def _stamp_now(self) -> tuple[Any, ...]:
        out = []
        for path in self.files:
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def _read(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for path in self.files:
            try:
                text = path.read_text()
            except OSError as e:
                raise InvalidArgument(
                    "auth_tokens_file", str(path), f"a readable file ({e.strerror})"
                ) from None
            for number, line in enumerate(text.splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                match = LINE.match(line)
                if match is None:
                    raise InvalidArgument(
                        f"auth_tokens_file {path} line {number}",
                        line[:40],
                        "`<name> sha256:<64 hex digits>`, the hash of the token (`provender access new-token "
                        "NAME` makes a token and prints its line)",
                    )
                names[match["digest"]] = match["name"]
        return names

    def refresh(self, force: bool = False) -> bool:
        """Read the files again if they changed (checked at most once a second); True when the tokens changed."""
        now = time.monotonic()
        if not force and now - self._checked < self.RECHECK_SECONDS:
            return False
        with self._lock:
            self._checked = now
            stamp = self._stamp_now()
            if stamp == self._stamp and not force:
                return False
            try:
                names = self._read()
            except InvalidArgument as e:
                if force:
                    raise
                log.warning(
                    "static token files changed but cannot be read; keeping the previous tokens: %s", e
                )
                return False
            changed = names != self._names
            self._names, self._stamp = names, stamp
            if changed and not force:
                log.info("static tokens reloaded", extra={"tokens": len(names)})
            return changed

    def name_of(self, token: str) -> str | None:
        return self._names.get(hash_token(token))


class OidcVerifier:
    """Checks JWTs of one issuer and audience against the issuer's published keys."""

    def __init__(self, issuer: str, audience: str, groups_claim: str, timeout: float = 5.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self.groups_claim = groups_claim
        self.timeout = timeout
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _discover(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                try:
                    with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                        jwks_uri = json.loads(answer.read())["jwks_uri"]
                except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                    log.warning(
                        "cannot read the issuer's discovery document", extra={"url": url, "error": str(e)}
                    )
                    raise Unauthenticated(
                        f"cannot check tokens now: the issuer's discovery document {url} is unreachable "
                        "or has no jwks_uri; try again"
                    ) from None
                self._keys = jwt.PyJWKClient(
                    jwks_uri, lifespan=300, timeout=self.timeout, cooldown_duration=10
                )
            return self._keys

    def verify(self, token: str) -> tuple[Principal, float]:
        """The token's principal and its expiry (epoch seconds); Unauthenticated saying what is wrong."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated(
                "the bearer token is neither a known service token nor a JWT; send an OIDC token from "
                f"{self.issuer} or a service token"
            ) from None
        issuer = str(unverified.get("iss", ""))
        if issuer != self.issuer:
            raise Unauthenticated(
                f"the bearer token was issued by {_shown(issuer)}; this server accepts tokens of {self.issuer!r}"
            )
        try:
            key = self._discover().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise Unauthenticated(
                f"cannot check tokens now: the keys of {self.issuer} are unreachable"
            ) from None
        except jwt.PyJWKClientError:
            raise Unauthenticated(
                f"the bearer token was not signed by a current key of {self.issuer}"
            ) from None
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token's header is not valid") from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(unverified.get("exp", 0))))
            raise Unauthenticated(
                f"the bearer token expired at {expired}; get a new one from {self.issuer}"
            ) from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"the bearer token is for audience {_shown(str(unverified.get('aud', '')))}; this server is "
                f"{self.audience!r}"
            ) from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthenticated(f"the bearer token has no {e.claim!r} claim") from None
        except jwt.PyJWTError as e:
            raise Unauthenticated(f"the bearer token is not valid: {e}") from None
        groups = claims.get(self.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return Principal("user", str(claims["sub"]), tuple(str(g) for g in groups)), float(claims["exp"])


class Authenticator:
    """The principal of a call from its `authorization` value (and its client certificate's name, if any)."""

    CACHE_SECONDS = 60.0
    CACHE_ENTRIES = 4096

    def __init__(
        self, oidc: OidcVerifier | None, tokens: StaticTokens | None, protect_health: bool = False
    ) -> None:
        self.oidc = oidc
        self.tokens = tokens
        self.protect_health = protect_health
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def expected(self) -> str:
        kinds = []
        if self.oidc is not None:
            kinds.append(f"an OIDC token of {self.oidc.issuer}")
        if self.tokens is not None:
            kinds.append("a service token")
        return "`authorization: Bearer <token>` metadata with " + " or ".join(kinds)

    def authenticate(self, authorization: str | None, cert_name: str | None = None) -> Principal:
        if self.tokens is not None and self.tokens.refresh():
            with self._lock:
                self._cache.clear()  # a revoked token stops working now
        if not authorization:
            if cert_name:
                return Principal("cert", cert_name)
            raise Unauthenticated(f"this server requires a credential: {self.expected()}")
        if authorization[: len(BEARER)].lower() != BEARER:
            raise Unauthenticated(
                f"the authorization metadata is not a bearer token; expected {self.expected()}"
            )
        token = authorization[len(BEARER) :].strip()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None and cached[1] > now:
                self._cache.move_to_end(token)
                return cached[0]
        before_blocking()  # an OIDC token may need the issuer's keys, fetched over the network
        principal, valid_until = self._verify(token, now)
        with self._lock:
            self._cache[token] = (principal, valid_until)
            while len(self._cache) > self.CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return principal

    def _verify(self, token: str, now: float) -> tuple[Principal, float]:
        if self.tokens is not None:
            name = self.tokens.name_of(token)
            if name is not None:
                return Principal("token", name), now + self.CACHE_SECONDS
        if self.oidc is None:
            raise Unauthenticated("the bearer token is not a known service token")
        principal, expires = self.oidc.verify(token)
        return principal, now + min(self.CACHE_SECONDS, max(expires - time.time(), 0.0))
