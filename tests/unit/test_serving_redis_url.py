"""`--redis-url`: redis://, rediss:// and Redis Cluster seed lists, and its credentials kept out of job arguments."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provender.kernel.errors import InvalidArgument
from provender.kernel.redis_url import (
    RedisTarget,
    has_credentials,
    parse_redis_url,
    with_credentials,
    without_credentials,
)


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


PASSWORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
USERS = st.one_of(st.just(""), st.text(alphabet="abcdefghij_-.", min_size=1, max_size=10))
BASES = st.sampled_from(
    [
        "redis://r:6380/2",
        "rediss://r:6390",
        "r:7000,s:7001",
        "redis+cluster://a:7000",
        "rediss://a:1,rediss://b:2",
    ]
)


@given(base=BASES, user=USERS, password=PASSWORDS)
def test_credentials_leave_the_url_and_come_back_unchanged(base: str, user: str, password: str) -> None:
    """Job arguments carry `without_credentials(url)`; the job's driver puts back those of its environment's URL:
    the same Redis target, with no trace of the password in what is written down."""
    with_them = with_credentials(base, f"redis://{quote(user, safe='')}:{quote(password, safe='')}@x:1")
    assert parse_redis_url(with_them).password == password
    assert (parse_redis_url(with_them).username or "") == user
    bare = without_credentials(with_them)
    assert "@" not in bare and not has_credentials(bare)
    assert parse_redis_url(bare) == parse_redis_url(base)
    assert parse_redis_url(with_credentials(bare, with_them)) == parse_redis_url(with_them)


def test_a_url_keeps_its_own_credentials_and_none_are_invented() -> None:
    assert with_credentials("redis://:mine@r:1", "redis://:other@r:1") == "redis://:mine@r:1"
    assert with_credentials("redis://r:1", "redis://r:1") == "redis://r:1"
    assert with_credentials("redis://r:1", "") == "redis://r:1"
