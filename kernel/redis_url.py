"""The `--redis-url` grammar every process shares: redis://, rediss:// (TLS), and Redis Cluster seed lists."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

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


def has_credentials(url: str) -> bool:
    target = parse_redis_url(url)
    return target.password is not None or bool(target.username)


def without_credentials(url: str) -> str:
    """`url` with the user and password of every seed removed: what may be written down (job records, job
    arguments, logs). The password reaches jobs through their environment (kernel.jobs.args.REDIS_URL_ENV)."""
    if not url.strip():
        return url
    parse_redis_url(url)  # a URL of the grammar, or InvalidArgument
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        scheme, rest = "", url.strip()
    seeds = []
    for seed in rest.split(","):
        seed_scheme, seed_sep, body = seed.strip().partition("://")
        if not seed_sep:
            seed_scheme, body = "", seed.strip()
        netloc, slash, path = body.partition("/")
        host = netloc.rpartition("@")[2]  # urlsplit's rule: the userinfo ends at the last @
        seeds.append((f"{seed_scheme}://" if seed_sep else "") + host + slash + path)
    return (f"{scheme}://" if sep else "") + ",".join(seeds)


def with_credentials(url: str, credentials_from: str) -> str:
    """`url` with the user and password of `credentials_from` (a URL of the same grammar), unless `url` has its
    own or `credentials_from` has none."""
    if not credentials_from.strip() or has_credentials(url):
        return url
    source = parse_redis_url(credentials_from)
    if source.password is None and not source.username:
        return url
    userinfo = quote(source.username or "", safe="")
    if source.password is not None:
        userinfo += ":" + quote(source.password, safe="")
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        scheme, rest = ("rediss" if source.tls else "redis"), url.strip()
    return f"{scheme}://{userinfo}@{rest}"
