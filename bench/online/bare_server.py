"""The gRPC floor: a bare server of the same kind as Serving (grpcio sync server, same thread pool and options,
startup objects frozen out of the garbage collector's sight as `provender serving` does) with one empty unary
method and nothing else: no interceptor, no health, no protobuf.

Usage: python bench/online/bare_server.py PORT [WORKERS]   (prints "ready" when listening; stops on SIGTERM)
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "bench.Bare"
METHOD = f"/{SERVICE}/Empty"


def _identity(data: bytes) -> bytes:
    return data


def main() -> int:
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.so_reuseport", 0),
        ],
    )
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: b"", request_deserializer=_identity, response_serializer=_identity
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Empty": handler}),))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    server.start()
    gc.freeze()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
