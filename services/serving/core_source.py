"""What Serving reads from Core over gRPC: feature table specs (ListProjects, ListFeatureTables,
GetFeatureTable) and, with authentication on, the access bindings (ListAccessBindings).

The transport adapter of the spec cache and the access rules: gRPC errors become provender.kernel.errors here,
nowhere else in Serving. With a token file, every call carries its token (re-read when the file changes, as a
mounted Secret is rotated).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc

from provender.kernel.errors import InvalidArgument, Unavailable
from provender.kernel.timestamps import from_timestamp
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc
from provender.proto.provender.core import Access_pb2 as access_pb2
from provender.proto.provender.core import Access_pb2_grpc as access_grpc
from provender.proto.provender.core import ClientSupport_pb2 as support_pb2
from provender.proto.provender.core import ClientSupport_pb2_grpc as support_grpc
from provender.server.access import Binding, Role
from provender.server.runner import MAX_MESSAGE_BYTES
from provender.serving.specs import ServingTable

log = logging.getLogger(__name__)


class TokenFile:
    """A bearer token kept in a file, read again when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._metadata: tuple[tuple[str, str], ...] = ()
        self.metadata()  # readable now, or Serving does not start

    def metadata(self) -> tuple[tuple[str, str], ...]:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp:
                token = self.path.read_text().strip()
                if not token:
                    raise InvalidArgument("core_token_file", str(self.path), "a file holding a bearer token")
                self._metadata, self._stamp = (("authorization", f"Bearer {token}"),), stamp
        except OSError as e:
            if self._stamp is None:
                raise InvalidArgument(
                    "core_token_file", str(self.path), f"a readable file ({e.strerror})"
                ) from None
        return self._metadata


class CoreSpecSource:
    def __init__(
        self,
        core_url: str,
        timeout_seconds: float = 5.0,
        credentials: grpc.ChannelCredentials | None = None,
        token: TokenFile | None = None,
    ) -> None:
        """`credentials`: TLS to Core (None: plaintext); `token`: the bearer token Serving presents."""
        self._url = core_url
        self._token = token
        self._timeout = timeout_seconds
        # Reconnect quickly once Core is back (gRPC's default backoff grows to two minutes); take listings as
        # large as Core sends (gRPC's default is 4 MB: a project of many large tables would exceed it).
        options = [
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self._last_listed: dict[
            str, list[ServingTable]
        ] = {}  # project -> its tables at the last good listing
        self._channel = (
            grpc.secure_channel(core_url, credentials, options=options)
            if credentials is not None
            else grpc.insecure_channel(core_url, options=options)
        )
        self._tls = credentials is not None
        self._stub = core_grpc.CoreServiceStub(self._channel)
        self._access = access_grpc.AccessServiceStub(self._channel)
        self._support = support_grpc.ClientSupportServiceStub(self._channel)
        self._has_revision = True

    def _call(self, method: grpc.UnaryUnaryMultiCallable, request: object) -> object:
        metadata = self._token.metadata() if self._token is not None else ()
        # wait_for_ready: a call made while the channel is between reconnection attempts (Core restarting, or
        # started after Serving) waits for the connection, up to its timeout, instead of failing at once.
        return method(request, timeout=self._timeout, metadata=metadata, wait_for_ready=True)

    def describe(self) -> str:
        return self._url + (" (TLS)" if self._tls else "")

    def close(self) -> None:
        self._channel.close()

    def list_tables(self) -> list[ServingTable]:
        """Every table of every project. A project whose listing fails (while Core answers for the others) keeps
        the tables of its last good listing, so that one bad project cannot stop Serving seeing the rest."""
        try:
            projects = list(self._call(self._stub.ListProjects, core_pb2.ListProjectsRequest()).projects)
        except grpc.RpcError as e:
            raise self._error("ListProjects", e) from None
        out: list[ServingTable] = []
        listed: dict[str, list[ServingTable]] = {}
        for project in projects:
            request = core_pb2.ListFeatureTablesRequest(
                filter=core_pb2.ListFeatureTablesRequest.Filter(project=project)
            )
            try:
                tables = self._call(self._stub.ListFeatureTables, request).tables
                listed[project] = [ServingTable.from_proto(project, t) for t in tables]
            except grpc.RpcError as e:
                if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise self._error("ListFeatureTables", e) from None
                log.warning(
                    "cannot list the tables of one project; keeping its last listing",
                    extra={"project": project, "code": e.code().name, "error": (e.details() or "")[:200]},
                )
                listed[project] = self._last_listed.get(project, [])
            out.extend(listed[project])
        self._last_listed = listed
        return out

    def get_table(self, project: str, name: str) -> ServingTable | None:
        try:
            response = self._call(
                self._stub.GetFeatureTable, core_pb2.GetFeatureTableRequest(project=project, name=name)
            )
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise self._error("GetFeatureTable", e) from None
        return ServingTable.from_proto(project, response.table)

    def revision(self) -> int | None:
        """Core's registry revision; None from a Core without it (an older release: only periodic reloads)."""
        if not self._has_revision:
            return None
        try:
            return self._call(
                self._support.GetRegistryRevision, support_pb2.GetRegistryRevisionRequest()
            ).revision
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._has_revision = False
                return None
            raise self._error("GetRegistryRevision", e) from None

    def list_access_bindings(self) -> list[Binding]:
        try:
            response = self._call(self._access.ListAccessBindings, access_pb2.ListAccessBindingsRequest())
        except grpc.RpcError as e:
            raise self._error("ListAccessBindings", e) from None
        return [
            Binding(
                b.project,
                b.principal,
                Role.parse("role", b.role),
                b.source,
                b.granted_by,
                from_timestamp(b.granted_at) if b.HasField("granted_at") else None,
            )
            for b in response.bindings
        ]

    def _error(self, method: str, e: grpc.RpcError) -> Unavailable:
        return Unavailable(f"Core at {self._url}: {method} failed with {e.code().name}: {e.details()}")
