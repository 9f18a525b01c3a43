"""The per-method observer of the gRPC metrics (children bound once per status code) counts every call, under
threads, exactly as the labelled metrics would."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from provender.server.metrics import RpcMetrics


def test_per_method_observer_counts_every_call_under_threads() -> None:
    registry = CollectorRegistry()
    rpc = RpcMetrics(registry)
    observe = rpc.for_method("svc", "Get")

    def work() -> None:
        for i in range(2000):
            observe("OK" if i % 4 else "NOT_FOUND", 0.0002)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = {"grpc_service": "svc", "grpc_method": "Get", "grpc_code": "OK"}
    missed = {**ok, "grpc_code": "NOT_FOUND"}
    assert registry.get_sample_value("provender_grpc_requests_total", ok) == 6000
    assert registry.get_sample_value("provender_grpc_requests_total", missed) == 2000
    assert registry.get_sample_value("provender_grpc_request_duration_seconds_count", ok) == 6000
    bucket = registry.get_sample_value(
        "provender_grpc_request_duration_seconds_bucket", {**ok, "le": "0.00025"}
    )
    assert bucket == 6000
    rpc.observe("svc", "Get", "OK", 0.5)  # the labelled path lands on the same series
    assert registry.get_sample_value("provender_grpc_requests_total", ok) == 6001
