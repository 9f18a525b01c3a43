"""An in-process stand-in of the Kubernetes API for custom objects: enough of it for the real `kubernetes` client
(pointed at it with Configuration.host) to create, get, list by label selector, patch and delete namespaced
custom objects such as SparkApplications. It only stores objects: no controller acts on them. A test plays the
Spark operator by setting an object's `.status` (`set_status`), and can make the next requests fail.

What it does as the API server does:
- POST of an existing name: 409 AlreadyExists; GET/PATCH/DELETE of a missing one: 404 NotFound; errors are
  `Status` objects with `reason` and `code`.
- metadata.name must be a DNS-1123 subdomain and label keys and values must be valid (422 Invalid otherwise);
  uid, resourceVersion, generation and creationTimestamp are set; `status` in a POST or in a PATCH of the main
  resource is ignored (the status subresource is enabled), PATCH of `/status` changes only the status.
- LIST takes labelSelector (=, ==, !=, in, notin, exists, !exists) and limit/continue.
- An optional `validate(obj) -> list[str]` (e.g. the CRD's openAPIV3Schema) turns a bad POST into a 422.

Every request is recorded in `requests` (method, path, query) so tests can count API calls.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?P<status>/status)?/?$"
)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_problems(labels: dict[str, Any]) -> list[str]:
    """What the API server would say about these labels (empty: valid)."""
    problems = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            problems.append(f"label key {key!r}: prefix must be a DNS-1123 subdomain")
        if not name or len(name) > 63 or not _LABEL_NAME.match(name):
            problems.append(
                f"label key {key!r}: name must be 63 characters or less, alphanumeric at both ends"
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"label {key}={value!r}: value must be 63 characters or less, valid characters")
    return problems


def name_problems(name: Any) -> list[str]:
    if not isinstance(name, str) or not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [f"metadata.name {name!r}: a lowercase RFC 1123 subdomain is required"]
    return []


# Label selectors -----------------------------------------------------------------------------------------------


def _split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (equality- and set-based)."""
    for term in _split_selector(selector or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in" and labels.get(key) not in values:
                return False
            if op == "notin" and key in labels and labels[key] in values:
                return False
            continue
        m = re.fullmatch(r"([^!=\s]+)\s*(==|!=|=)\s*(\S*)", term)
        if m:
            key, op, value = m.groups()
            if op == "!=" and labels.get(key) == value:
                return False
            if op in ("=", "==") and labels.get(key) != value:
                return False
            continue
        if term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _json_patch(target: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 JSON patch: add, replace, remove (enough for the client's uses)."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ValueError(f"unsupported JSON patch op {op['op']}")
    return doc


# The server --------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]


@dataclass
class K8sStandIn:
    """Start with `start()` (or as a context manager); `url` is the API server's address for the client."""

    validate: Callable[[dict[str, Any]], list[str]] | None = None
    requests: list[Request] = field(default_factory=list)
    _objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    _failures: list[tuple[str | None, int, str]] = field(default_factory=list)
    _versions: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- life cycle ---

    def start(self) -> K8sStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between headers and body

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                if standin._server is None:  # stopped: drop kept-alive connections as a dead server would
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                code, payload = standin._dispatch(
                    self.command, self.path, body, self.headers.get("Content-Type", "")
                )
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="k8s-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> K8sStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- what tests use ---

    def objects(
        self, namespace: str, plural: str = "sparkapplications", group: str = "sparkoperator.k8s.io"
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(o)
                for (g, ns, p, _), o in sorted(self._objects.items())
                if (g, ns, p) == (group, namespace, plural)
            ]

    def get(
        self,
        namespace: str,
        name: str,
        plural: str = "sparkapplications",
        group: str = "sparkoperator.k8s.io",
    ) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects.get((group, namespace, plural, name))
            return copy.deepcopy(obj) if obj is not None else None

    def set_status(
        self,
        namespace: str,
        name: str,
        state: str | None = None,
        error_message: str | None = None,
        pod_name: str | None = None,
        plural: str = "sparkapplications",
        group: str = "sparkoperator.k8s.io",
        **fields: Any,
    ) -> dict[str, Any]:
        """Play the operator: merge into the object's status (applicationState.state/errorMessage,
        driverInfo.podName, and any other status fields given)."""
        with self._lock:
            obj = self._objects.get((group, namespace, plural, name))
            if obj is None:
                raise KeyError(f"{plural} {namespace}/{name} does not exist")
            status = obj.setdefault("status", {})
            if state is not None:
                app_state = status.setdefault("applicationState", {})
                app_state["state"] = state
                if error_message is None:
                    app_state.pop("errorMessage", None)
            if error_message is not None:
                status.setdefault("applicationState", {"state": ""})["errorMessage"] = error_message
            if pod_name is not None:
                status.setdefault("driverInfo", {})["podName"] = pod_name
            status.update(fields)
            obj["metadata"]["resourceVersion"] = str(next(self._versions))
            return copy.deepcopy(obj)

    def delete(
        self,
        namespace: str,
        name: str,
        plural: str = "sparkapplications",
        group: str = "sparkoperator.k8s.io",
    ) -> None:
        """Remove an object behind the client's back (e.g. the operator's timeToLiveSeconds)."""
        with self._lock:
            self._objects.pop((group, namespace, plural, name), None)

    def fail_next(self, code: int, method: str | None = None, times: int = 1, reason: str = "") -> None:
        """Answer the next `times` requests (of `method`, or any) with this HTTP error code."""
        with self._lock:
            self._failures.extend([(method, code, reason or "InternalError")] * times)

    def count(self, method: str, collection: bool | None = None) -> int:
        """Requests made with `method`; collection=True: on the collection (LIST/POST), False: on one object."""
        out = 0
        for r in self.requests:
            m = _PATH.match(r.path)
            if r.method != method or m is None:
                continue
            if collection is None or collection == (m.group("name") is None):
                out += 1
        return out

    # --- the API ---

    def _dispatch(self, method: str, raw_path: str, body: bytes, content_type: str) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        with self._lock:
            self.requests.append(Request(method, url.path, query))
            for i, (only, code, reason) in enumerate(self._failures):
                if only is None or only == method:
                    del self._failures[i]
                    return code, ApiError(code, reason, f"injected failure {code}").status()
        m = _PATH.match(url.path)
        if m is None:
            return 404, ApiError(404, "NotFound", f"the server could not find {url.path}").status()
        try:
            payload = json.loads(body) if body else None
            with self._lock:
                return self._handle(method, m, query, payload, content_type)
        except ApiError as e:
            return e.code, e.status()
        except (ValueError, KeyError, TypeError, IndexError) as e:
            return 400, ApiError(400, "BadRequest", f"bad request: {e}").status()

    def _handle(
        self, method: str, m: re.Match[str], query: dict[str, list[str]], payload: Any, content_type: str
    ) -> tuple[int, Any]:
        group, version, ns, plural, name = (m.group(k) for k in ("group", "version", "ns", "plural", "name"))
        subresource = bool(m.group("status"))
        what = f'{plural}.{group} "{name}"'
        if name is None:
            if method == "GET":
                return 200, self._list(group, version, ns, plural, query)
            if method == "POST":
                return 201, self._create(group, ns, plural, payload)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
        key = (group, ns, plural, name)
        current = self._objects.get(key)
        if current is None:
            raise ApiError(404, "NotFound", f"{what} not found")
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "DELETE":
            del self._objects[key]
            return 200, copy.deepcopy(current)
        if method == "PATCH":
            if isinstance(payload, list) or "json-patch" in content_type:
                patched = _json_patch(current, payload)
            else:
                patched = _merge_patch(current, payload)
            if subresource:
                updated = copy.deepcopy(current)
                updated["status"] = patched.get("status", {})
            else:
                updated = patched
                updated["status"] = copy.deepcopy(current.get("status", {}))
                updated["metadata"]["name"] = name
                problems = label_problems((updated.get("metadata") or {}).get("labels") or {})
                if problems:
                    raise ApiError(422, "Invalid", f"{what} is invalid: {'; '.join(problems)}")
                updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            updated["metadata"]["resourceVersion"] = str(next(self._versions))
            self._objects[key] = updated
            return 200, copy.deepcopy(updated)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported by the stand-in")

    def _create(self, group: str, ns: str, plural: str, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        obj = copy.deepcopy(payload)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        problems = name_problems(name) + label_problems(meta.get("labels") or {})
        if meta.get("namespace") not in (None, ns):
            problems.append(
                f"metadata.namespace {meta.get('namespace')!r} does not match the request's {ns!r}"
            )
        if self.validate is not None and not problems:
            problems = self.validate(obj)
        if problems:
            raise ApiError(422, "Invalid", f'{plural}.{group} "{name}" is invalid: {"; ".join(problems)}')
        key = (group, ns, plural, name)
        if key in self._objects:
            raise ApiError(409, "AlreadyExists", f'{plural}.{group} "{name}" already exists')
        obj.pop("status", None)  # the status subresource: only the operator sets it
        meta.update(
            namespace=ns,
            uid=str(uuid.uuid4()),
            resourceVersion=str(next(self._versions)),
            generation=1,
            creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self._objects[key] = obj
        return copy.deepcopy(obj)

    def _list(
        self, group: str, version: str, ns: str, plural: str, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        selector = (query.get("labelSelector") or [""])[0]
        matching = [
            o
            for (g, n, p, _), o in sorted(self._objects.items())
            if (g, n, p) == (group, ns, plural)
            and selector_matches(selector, (o.get("metadata") or {}).get("labels") or {})
        ]
        start = int((query.get("continue") or ["0"])[0] or 0)
        limit = int((query.get("limit") or ["0"])[0] or 0)
        page = matching[start : start + limit] if limit else matching[start:]
        more = bool(limit) and start + limit < len(matching)
        kind = next((o.get("kind") for o in matching if o.get("kind")), "Object")
        return {
            "apiVersion": f"{group}/{version}",
            "kind": f"{kind}List",
            "metadata": {
                "resourceVersion": str(next(self._versions)),
                **({"continue": str(start + limit)} if more else {}),
            },
            "items": copy.deepcopy(page),
        }
