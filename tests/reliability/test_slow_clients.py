"""Clients that open calls and never finish sending them cannot stop a server: Serving, as users start it, keeps
answering lookups and health checks while many such calls are open (more than it has worker threads), and ends
each of them with DEADLINE_EXCEEDED once --request-receive-seconds has passed; Core keeps answering too.

A stalled call is a real gRPC call whose request is withheld: the client sends the call's headers and waits before
its first message (a stream-unary call whose request iterator blocks), which is what a client on a dead network
or a hostile one looks like to the server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from provender.local.ports import free_port
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.integration.serving.online_store import as_rows, request, seed_one_driver

WORKERS = 4
STALLED = 40  # ten times the workers
RECEIVE_SECONDS = 3.0


class Stalled:
    """`count` calls to `method` at `target`, each on a connection of its own, whose request never comes."""

    def __init__(self, target: str, method: str, count: int) -> None:
        self._release = threading.Event()
        self.channels = [
            grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(count)
        ]
        self.calls = [
            channel.stream_unary(method).future(self._withheld(), timeout=60) for channel in self.channels
        ]

    def _withheld(self) -> Iterator[bytes]:
        self._release.wait()
        return
        yield b""

    def outcomes(self, timeout: float) -> list[grpc.StatusCode]:
        codes = []
        for call in self.calls:
            try:
                call.result(timeout=timeout)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
        return codes

    def close(self) -> None:
        self._release.set()
        for call in self.calls:
            call.cancel()
        for channel in self.channels:
            channel.close()


@pytest.fixture
def serving_process(core_server, core_stub, redis_server, redis) -> Iterator[str]:
    seed_one_driver(core_stub, redis)
    port = free_port()
    env = {**os.environ, "PROVENDER_CORE_URL": core_server.url, "PROVENDER_REDIS_URL": redis_server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "provender.serving.main", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(WORKERS), "--request-receive-seconds", str(RECEIVE_SECONDS), "--log-level", "WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    target = f"127.0.0.1:{port}"
    try:
        channel = grpc.insecure_channel(target)
        grpc.channel_ready_future(channel).result(timeout=30)
        channel.close()
        yield target
        assert proc.poll() is None, "Serving died under slow clients"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert b"Traceback" not in err, err.decode()[-3000:]


def _serving_answers(target: str) -> None:
    with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = ServingService_pb2_grpc.ServingServiceStub(channel)
        for _ in range(3 * WORKERS):
            response = stub.GetOnlineFeaturesV2(
                request("", ["driver_hourly:trips"], [{"driver_id": 1}]), timeout=2
            )
            assert as_rows(response)[0]["driver_hourly:trips"] == (5, "PRESENT")


def test_serving_answers_while_clients_stall_and_ends_their_calls(serving_process) -> None:
    stalled = Stalled(serving_process, "/feast.serving.ServingService/GetOnlineFeaturesV2", STALLED)
    try:
        time.sleep(0.5)  # every stalled call has reached the server
        _serving_answers(serving_process)
        codes = stalled.outcomes(timeout=RECEIVE_SECONDS + 10)
        assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * STALLED
        _serving_answers(serving_process)
    finally:
        stalled.close()


def test_one_connection_cannot_hold_more_than_its_streams(serving_process) -> None:
    """Hundreds of stalled calls on one connection: the server takes 100 at a time (--max-streams-per-connection)
    and keeps answering others."""
    stalled = Stalled(serving_process, "/feast.serving.ServingService/GetOnlineFeaturesV2", 1)
    many = [stalled.channels[0].stream_unary("/feast.serving.ServingService/GetOnlineFeaturesV2").future(
        stalled._withheld(), timeout=60) for _ in range(300)]  # fmt: skip
    try:
        time.sleep(0.5)
        _serving_answers(serving_process)
    finally:
        stalled.close()
        for call in many:
            call.cancel()


def test_core_answers_while_clients_stall(core_server) -> None:
    stalled = Stalled(core_server.url, "/feast.core.CoreService/ListProjects", STALLED)
    try:
        time.sleep(0.5)
        with grpc.insecure_channel(
            core_server.url, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            projects = channel.unary_unary(
                "/feast.core.CoreService/ListProjects",
                request_serializer=core_pb2.ListProjectsRequest.SerializeToString,
                response_deserializer=core_pb2.ListProjectsResponse.FromString,
            )
            for _ in range(40):
                assert "default" in projects(core_pb2.ListProjectsRequest(), timeout=2).projects
    finally:
        stalled.close()
