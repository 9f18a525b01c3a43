"""The `--redis-url` grammar every process shares: redis://, rediss:// (TLS), and Redis Cluster seed lists."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from provender.kernel.errors import InvalidArgument

ACCEPTED_URLS = (
    "redis://[user:password@]host[:port][/db], rediss://... (TLS), or a Redis Cluster seed list "
    "host:port,host:port (optionally prefixed with redis:// or rediss://; redis+cluster://host:port for one seed)"
)


@dataclass(frozen=True)
class RedisTarget:
    cluster: bool
    nodes: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0

    def describe(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        hosts = ",".join(f"{h}:{p}" for h, p in self.nodes)
        return f"{scheme}://{hosts}" + (" (cluster)" if self.cluster else f"/{self.db}")


def parse_redis_url(url: str) -> RedisTarget:
    """Parse `--redis-url`; raises InvalidArgument naming what is accepted."""
    text = url.strip()
    if not text:
        raise InvalidArgument("redis_url", url, ACCEPTED_URLS)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "redis", text
    scheme = scheme.lower()
    if scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        raise InvalidArgument("redis_url", url, ACCEPTED_URLS)
    tls = scheme.startswith("rediss")
    seeds = [s.strip() for s in rest.split(",")]
    cluster = scheme.endswith("+cluster") or len(seeds) > 1
    nodes: list[tuple[str, int]] = []
    username = password = None
    db = 0
    for i, seed in enumerate(seeds):
        if "://" in seed:  # "redis://a:1,redis://b:2"
            seed = seed.partition("://")[2]
        try:
            parts = urlsplit(f"//{seed}")
            host, port = parts.hostname, parts.port or 6379
        except ValueError:
            raise InvalidArgument("redis_url", url, ACCEPTED_URLS) from None
        if not host or (parts.path not in ("", "/") and (cluster or i > 0)):
            raise InvalidArgument("redis_url", url, ACCEPTED_URLS)
        if parts.path not in ("", "/"):
            try:
                db = int(parts.path.strip("/"))
            except ValueError:
                raise InvalidArgument("redis_url", url, ACCEPTED_URLS + "; the db is a number") from None
        if parts.password is not None or parts.username:
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password is not None else None
        nodes.append((host, port))
    return RedisTarget(
        cluster=cluster, nodes=tuple(nodes), tls=tls, username=username, password=password, db=db
    )
