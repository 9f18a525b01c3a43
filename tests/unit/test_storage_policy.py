"""Where jobs may read and write: a URL is allowed only when, normalised, it lies under an allowed prefix (whole
segments), whatever `..`, `.`, percent-escapes or `s3a://` it is written with."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provender.core.jobs.storage import StoragePolicy
from provender.kernel.errors import InvalidArgument

POLICY = StoragePolicy(["file:///srv/features", "s3://lake/fraud"], "file:///srv/staging")


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/features/driver.parquet",
        "file:///srv/features",
        "file:///srv/features/./a/../b.parquet",
        "file:///srv/staging/historical/x",
        "s3://lake/fraud/2026/part-0.parquet",
        "s3a://lake/fraud/x",
        "s3://LAKE/fraud/x",
    ],
)
def test_locations_under_a_prefix_are_allowed(url):
    assert POLICY.check("file_url", url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "under one of"),
        ("file:///srv/features/../../etc/passwd", "under one of"),
        ("file:///srv/features/%2e%2e/secrets", "under one of"),
        ("file:///srv/features-evil/x", "under one of"),
        ("file:///../../etc", "climb above its root"),
        ("s3://lake/fraud-archive/x", "under one of"),
        ("s3://lake/fraud/../payments/x", "under one of"),
        ("s3://other/fraud/x", "under one of"),
        ("s3:///fraud/x", "with a bucket"),
        ("file://elsewhere/srv/features/x", "of this machine"),
        ("http://srv/features/x", "file://, s3:// or s3a://"),
        ("file:///srv/features/x?version=2", "without ?query"),
    ],
)
def test_other_locations_are_refused_naming_the_field_and_the_prefixes(url, why):
    with pytest.raises(InvalidArgument) as e:
        POLICY.check("output_location", url)
    assert e.value.message.startswith("output_location: ") and why in e.value.message
    if why == "under one of":
        assert (
            "file:///srv/features, s3://lake/fraud, file:///srv/staging (Core's --allowed-storage"
            in e.value.message
        )


def test_without_prefixes_any_job_location_is_allowed():
    open_policy = StoragePolicy([], "file:///srv/staging")
    assert open_policy.check("file_url", "file:///anywhere/x.parquet") == "file:///anywhere/x.parquet"
    with pytest.raises(InvalidArgument):  # still a location a job can use
        open_policy.check("file_url", "ftp://host/x")


SEGMENTS = st.sampled_from(
    ["features", "..", ".", "%2e%2e", "%2E%2e", "etc", "", "features-evil", "x", "%2F"]
)


@given(st.lists(SEGMENTS, max_size=8))
def test_a_path_is_allowed_exactly_when_its_resolved_form_is_under_the_prefix(segments):
    """Oracle: the path with escapes decoded and `..` resolved by posixpath, and no climb above the root."""
    policy = StoragePolicy(["file:///srv/features"], "file:///srv/staging")
    path = "/srv/" + "/".join(segments)
    decoded = unquote(path)
    depth, climbs = 0, False
    for segment in decoded.split("/"):
        depth = depth - 1 if segment == ".." else depth + (segment not in ("", "."))
        climbs = climbs or depth < 0
    resolved = posixpath.normpath(decoded)
    expected = not climbs and (resolved == "/srv/features" or resolved.startswith("/srv/features/"))
    try:
        policy.check("file_url", "file://" + path)
        allowed = True
    except InvalidArgument:
        allowed = False
    assert allowed == expected, (path, resolved)


def test_restricted_without_prefixes_only_the_staging_location_is_allowed():
    staging_only = StoragePolicy([], "s3://lake/staging", restrict=True)
    assert staging_only.check("output_location", "s3://lake/staging/out") == "s3://lake/staging/out"
    with pytest.raises(InvalidArgument, match="under one of s3://lake/staging"):
        staging_only.check("file_url", "s3://lake/features/x")
