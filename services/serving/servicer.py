"""gRPC transport of Serving: feast.serving.ServingService and provender.serving.ColumnarServingService.

Thin: request proto → domain request → OnlineLookup → response wire bytes. The lookup responses are already
serialized (response_wire) and requests are parsed here (so that bad bytes are INVALID_ARGUMENT, not grpc's
INTERNAL), so these methods are registered with identity (de)serializers; errors are
provender.kernel.errors, mapped to status codes by the shared interceptor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from provender.kernel.errors import InvalidArgument
from provender.kernel.value_types import VALUE_FIELD, to_value, value_type_of
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2
from provender.proto.provender.serving import ColumnarServing_pb2 as columnar_pb2
from provender.serving.limits import RequestLimits
from provender.serving.lookup import EntityRow, OnlineLookup, OnlineRequest
from provender.serving.response_wire import columnar_response, estimated_size, online_response

M = TypeVar("M", bound=Message)

SERVING_SERVICE = "feast.serving.ServingService"
COLUMNAR_SERVICE = "provender.serving.ColumnarServingService"
LOOKUP_METHODS = (f"/{SERVING_SERVICE}/GetOnlineFeaturesV2", f"/{COLUMNAR_SERVICE}/GetOnlineFeaturesColumnar")


def _identity(data: bytes) -> bytes:
    return data


def _timestamp_ns(ts) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


def _anyone(project: str) -> None:
    pass


class ServingServicer:
    def __init__(
        self,
        lookup: OnlineLookup,
        version: str,
        limits: RequestLimits,
        require_reader: Callable[[str], None] = _anyone,
    ) -> None:
        """`limits`: how much one lookup may ask; `require_reader(project)`: raises unless the caller may read the
        project (authentication on)."""
        self._lookup = lookup
        self._version = version
        self._limits = limits
        self._require_reader = require_reader

    def GetFeastServingInfo(
        self, data: bytes, context: grpc.ServicerContext
    ) -> serving_pb2.GetFeastServingInfoResponse:
        _parse(serving_pb2.GetFeastServingInfoRequest, data)
        return serving_pb2.GetFeastServingInfoResponse(
            version=self._version, type=serving_pb2.FEAST_SERVING_TYPE_ONLINE
        )

    def GetOnlineFeaturesV2(self, data: bytes, context: grpc.ServicerContext) -> bytes:
        request = _parse(serving_pb2.GetOnlineFeaturesRequestV2, data)
        self._require_reader(request.project)
        with self._limits.admit(len(request.entity_rows), len(request.features), "entity_rows"):
            rows = [
                EntityRow(
                    {name: fields[name].SerializeToString() for name in fields},
                    _timestamp_ns(row.timestamp) if row.HasField("timestamp") else 0,
                )
                for row in request.entity_rows
                for fields in (row.fields,)  # iterating a map's keys is faster than its items()
            ]
            features = [(f.feature_table, f.name) for f in request.features]
            result = self._lookup.lookup(OnlineRequest(request.project, features, rows), api="feast")
            self._limits.check_response(estimated_size(result), len(rows))
            return online_response(result)

    def GetOnlineFeaturesColumnar(self, data: bytes, context: grpc.ServicerContext) -> bytes:
        request = _parse(columnar_pb2.GetOnlineFeaturesColumnarRequest, data)
        self._require_reader(request.project)
        n_rows = _column_length(request)
        with self._limits.admit(n_rows, len(request.features), "entities[0].values"):
            rows = _rows_of_columns(request)
            features = [(f.feature_table, f.name) for f in request.features]
            result = self._lookup.lookup(OnlineRequest(request.project, features, rows), api="columnar")
            self._limits.check_response(estimated_size(result), len(rows))
            return columnar_response(result)


def _parse(message_class: type[M], data: bytes) -> M:
    """Requests are parsed here rather than by grpc, so that undecodable bytes get INVALID_ARGUMENT."""
    try:
        return message_class.FromString(data)
    except DecodeError:
        raise InvalidArgument(
            "request", f"{len(data)} bytes", f"a serialized {message_class.DESCRIPTOR.full_name}"
        ) from None


def _column_length(request: columnar_pb2.GetOnlineFeaturesColumnarRequest) -> int:
    """The rows a columnar request asks for, before it is decoded (its first column's length)."""
    if not request.entities:
        return 0
    values = request.entities[0].values
    kind = values.WhichOneof("val")
    return len(getattr(values, kind).val) if kind and kind.endswith("_list_val") else 0


def _rows_of_columns(request: columnar_pb2.GetOnlineFeaturesColumnarRequest) -> list[EntityRow]:
    if not request.entities:
        raise InvalidArgument("entities", [], "one column per entity of the requested tables")
    columns: list[tuple[str, list[bytes]]] = []
    n_rows: int | None = None
    for i, column in enumerate(request.entities):
        list_type = value_type_of(column.values)
        if list_type is None or not list_type.is_list:
            raise InvalidArgument(
                f"entities[{i}].values",
                column.values.WhichOneof("val") or "an unset Value",
                "a list Value (int64_list_val, string_list_val, ...) holding one entity value per row",
            )
        element = list_type.element_type
        items = getattr(column.values, VALUE_FIELD[list_type]).val
        encoded = [to_value(x, element).SerializeToString() for x in items]
        if n_rows is None:
            n_rows = len(encoded)
        elif len(encoded) != n_rows:
            raise InvalidArgument(
                f"entities[{i}].values", f"{len(encoded)} values", f"{n_rows} values, as many as entities[0]"
            )
        columns.append((column.name, encoded))
    n = n_rows or 0
    if n == 0:
        raise InvalidArgument("entities[0].values", "0 values", "at least one row")
    times = [_timestamp_ns(t) for t in request.reference_times]
    if times and len(times) != n:
        raise InvalidArgument(
            "reference_times", f"{len(times)} timestamps", f"none, or one per row ({n} rows)"
        )
    return [
        EntityRow({name: encoded[r] for name, encoded in columns}, times[r] if times else 0) for r in range(n)
    ]


def _method(
    behaviour: Callable, deserializer: Callable[[bytes], object], serializer: Callable[[object], bytes]
) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=deserializer, response_serializer=serializer
    )


def serving_registration(servicer: ServingServicer) -> Callable[[grpc.Server], str]:
    def register(server: grpc.Server) -> str:
        handlers = {
            "GetFeastServingInfo": _method(
                servicer.GetFeastServingInfo,
                _identity,
                serving_pb2.GetFeastServingInfoResponse.SerializeToString,
            ),
            "GetOnlineFeaturesV2": _method(servicer.GetOnlineFeaturesV2, _identity, _identity),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVING_SERVICE, handlers),))
        return SERVING_SERVICE

    return register


def columnar_registration(servicer: ServingServicer) -> Callable[[grpc.Server], str]:
    def register(server: grpc.Server) -> str:
        handlers = {
            "GetOnlineFeaturesColumnar": _method(
                servicer.GetOnlineFeaturesColumnar,
                _identity,
                _identity,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(COLUMNAR_SERVICE, handlers),))
        return COLUMNAR_SERVICE

    return register
