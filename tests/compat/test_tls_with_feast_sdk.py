"""The real Feast 0.9 SDK, configured with its own SSL options (core_enable_ssl, core_server_ssl_cert,
serving_enable_ssl, serving_server_ssl_cert), against Core and Serving serving TLS: it applies, lists and looks
up as it does in plaintext; without SSL it is refused."""

from __future__ import annotations

from tests.tls import TestCA, tls_platform


def test_feast09_sdk_over_tls(feast09, postgres, redis_server, tmp_path):
    ca = TestCA(tmp_path / "ca")
    with tls_platform(postgres, redis_server, tmp_path, ca) as urls:
        out = feast09.driver(
            "tls_scenario.py",
            urls["core"],
            urls["serving"],
            str(ca.path),
            (tmp_path / "riders").as_uri(),
            timeout=120,
        )
    assert out["tables"] == ["rider_tls"], out
    assert out.get("online") == {"rider_id": [7], "rider_tls:rides": [None]}, out
    assert out["plaintext"].startswith("ConnectionError") and "Connection timed out" in out["plaintext"], out
