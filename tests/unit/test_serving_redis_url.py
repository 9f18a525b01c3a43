"""`--redis-url`: redis://, rediss:// and Redis Cluster seed lists."""

from __future__ import annotations

import pytest

from provender.kernel.errors import InvalidArgument
from provender.kernel.redis_url import RedisTarget, parse_redis_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379", RedisTarget(False, (("localhost", 6379),))),
        ("redis://r.example", RedisTarget(False, (("r.example", 6379),))),
        ("redis://:s3cret@r:6380/2", RedisTarget(False, (("r", 6380),), password="s3cret", db=2)),
        (
            "rediss://user:pw@r:6390",
            RedisTarget(False, (("r", 6390),), tls=True, username="user", password="pw"),
        ),
        ("127.0.0.1:7000", RedisTarget(False, (("127.0.0.1", 7000),))),
        ("127.0.0.1:7000,127.0.0.1:7001", RedisTarget(True, (("127.0.0.1", 7000), ("127.0.0.1", 7001)))),
        ("redis://a:1,b:2,c:3", RedisTarget(True, (("a", 1), ("b", 2), ("c", 3)))),
        ("rediss://a:1,rediss://b:2", RedisTarget(True, (("a", 1), ("b", 2)), tls=True)),
        ("redis+cluster://a:7000", RedisTarget(True, (("a", 7000),))),
    ],
)
def test_accepted_urls(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    "url", ["", "http://r:6379", "redis://", "redis://r:port", "redis://r/x", "a:1/2,b:2"]
)
def test_rejected_urls_name_the_flag_and_what_is_accepted(url: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_redis_url(url)
    assert "redis_url" in str(e.value) and "rediss://" in str(e.value)


def test_describe_hides_the_password() -> None:
    target = parse_redis_url("redis://:s3cret@r:6380/2")
    assert "s3cret" not in target.describe() and "r:6380" in target.describe()
