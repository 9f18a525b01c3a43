"""The user commands of the `provender` CLI: registry, jobs, ingestion, online lookups and retrieval."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provender.access import ROLES
from provender.client import Client
from provender.kernel.errors import ProvenderError
from provender.kernel.service_tokens import new_token, token_line
from provender.remote_job import JobInfo

# Never wrap a line: ids, URLs and paths are copied from this output. When it goes to a file or a pipe, tables
# are as wide as their content (rich would otherwise fold them at 80 columns).
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
# Options that take a time, which may be relative and so start with "-" (-2d): argparse would read it as a flag.
_TIME_OPTIONS = ("--start", "--end")


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title)
    for i, column in enumerate(columns):
        # The first column is what people copy (ids, names): never cut it short.
        table.add_column(column, no_wrap=True, min_width=len(column)) if i == 0 else table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _time(text: str) -> datetime:
    """ISO 8601 (UTC unless it says otherwise), or relative: now, -2d, -6h, -30m."""
    if text == "now":
        return datetime.now(UTC)
    if text.startswith("-") and text[-1] in "dhm" and text[1:-1].isdigit():
        unit = {"d": "days", "h": "hours", "m": "minutes"}[text[-1]]
        return datetime.now(UTC) - timedelta(**{unit: int(text[1:-1])})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected ISO 8601 (2026-11-20T10:00), now, or -2d/-6h/-30m"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _entity_value(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE, e.g. driver_id=1001")
    for cast in (int, float):
        try:
            return name, cast(value)
        except ValueError:
            pass
    return name, value


# handlers -------------------------------------------------------------------------------------------------


def apply(client: Client, args: argparse.Namespace) -> None:
    from provender.manifests import load

    objects = [o for path in args.file for o in load(path)]
    for obj in client.apply(objects, project=args.project):
        detail = f"revision {obj.revision}" if hasattr(obj, "revision") else obj.value_type.name
        console.print(f"applied {type(obj).__name__} [bold]{obj.name}[/bold] ({detail})")


def entities(client: Client, args: argparse.Namespace) -> None:
    if args.verb == "describe":
        console.print(client.get_entity(args.name, project=args.project).to_yaml())
        return
    found = client.list_entities(project=args.project, labels=dict(args.label or []))
    _table("entities", ["name", "type", "description", "labels"],
           [(e.name, e.value_type.name, e.description, _labels(e.labels)) for e in found])  # fmt: skip


def tables(client: Client, args: argparse.Namespace) -> None:
    if args.verb == "describe":
        console.print(client.get_feature_table(args.name, project=args.project).to_yaml())
        return
    found = client.list_feature_tables(project=args.project, labels=dict(args.label or []))
    _table("feature tables", ["name", "entities", "features", "max age", "revision", "labels"],
           [(t.name, ", ".join(t.entities), len(t.features), t.max_age or "", t.revision, _labels(t.labels))
            for t in found])  # fmt: skip


def projects(client: Client, args: argparse.Namespace) -> None:
    if args.verb == "create":
        client.create_project(args.name)
        console.print(f"created project {args.name}")
    elif args.verb == "archive":
        client.archive_project(args.name)
        console.print(f"archived project {args.name}")
    else:
        _table("projects", ["name"], [(p,) for p in client.list_projects()])


def access(client: Client, args: argparse.Namespace) -> None:
    if args.verb == "grant":
        b = client.grant_access(args.principal, args.role, project=args.project_name)
        console.print(f"granted {b.role} in {b.project} to {b.principal}")
    elif args.verb == "revoke":
        client.revoke_access(args.principal, project=args.project_name)
        console.print(f"revoked the role of {args.principal} in {args.project_name}")
    elif args.verb == "whoami":
        who = client.whoami()
        state = "" if who.authenticated else " (Core checks no credential: every caller may do everything)"
        console.print(f"{who.principal}{state}")
        for identity in who.identities[1:]:
            console.print(f"  through {identity}")
    else:
        rows = [
            (b.project, b.principal, b.role, b.source, b.granted_by, b.granted_at or "")
            for b in client.list_access(project=args.project_name or "*")
        ]
        _table("access", ["project", "principal", "role", "source", "granted by", "granted at"], rows)


def _new_token(args: argparse.Namespace) -> int:
    """Make a service token locally: nothing is sent anywhere."""
    try:
        line = token_line(args.project_name, token := new_token())
    except ValueError as e:
        print(f"provender access new-token: {e}", file=sys.stderr)
        return 2
    print(f"token (give it to the service; it is not stored anywhere):\n  {token}")
    print(f"line for the tokens file of Core and Serving (--auth-tokens-file):\n  {line}")
    print(f"its principal, to grant roles to: token:{args.project_name}")
    return 0


def jobs(client: Client, args: argparse.Namespace) -> None:
    if args.verb == "cancel":
        client.cancel_job(args.id)
        console.print(f"cancelled {args.id}")
        return
    if args.verb == "describe":
        job = client.get_job(args.id)
        stream = job.type == "STREAM_INGESTION_JOB"
        for key, value in vars(job).items():
            if not (stream and key == "report"):  # a stream's report is its latest micro-batch: tables below
                console.print(f"[bold]{key}[/bold]: {escape(str(value))}")
        if stream:
            _micro_batch(job)
        return
    found = client.list_jobs(
        include_terminated=not args.active,
        table_name=args.table or "",
        project=args.project,
        job_type=args.type,
    )
    _table(f"{args.type} jobs" if args.type else "jobs", ["id", "type", "status", "table", "started", "error"],
           [(j.id, j.type.removesuffix("_JOB"), j.status, j.table_name,
             j.start_time.strftime("%Y-%m-%d %H:%M:%S") if j.start_time else "", j.error_message[:60])
            for j in found])  # fmt: skip


def _micro_batch(job: JobInfo) -> None:
    """A running stream job's latest micro-batch: its rows, event-time lag, and last offset per partition."""
    r = job.report
    if not r:
        why = (
            "Spark is starting, or no message has arrived"
            if job.status in ("PENDING", "RUNNING")
            else "the job is not running"
        )
        console.print(f"[bold]latest micro-batch[/bold]: none ({why})")
        return
    lag = r.get("event_time_lag_seconds")
    newest = r.get("max_kafka_timestamp")
    _table(f"latest micro-batch (#{r.get('batch', '?')})", ["", "value"], [
        ("at", r.get("time", "")),
        ("rows read", r.get("rows_read")),
        ("rows written", r.get("rows_written")),
        ("rows skipped (older than stored)", r.get("rows_skipped_stale")),
        ("rows dead-lettered", r.get("rows_dead_lettered")),
        ("event-time lag", f"{lag:,.1f} s" if lag is not None else ""),
        ("newest Kafka timestamp", datetime.fromtimestamp(newest, UTC).isoformat() if newest is not None else ""),
        ("took", f"{r['duration_seconds']:,.1f} s" if r.get("duration_seconds") is not None else ""),
    ])  # fmt: skip
    offsets = r.get("offsets") or {}
    _table("last offsets", ["partition", "offset"],
           sorted(offsets.items(), key=lambda item: int(item[0]) if str(item[0]).isdigit() else -1))  # fmt: skip


def ingest(client: Client, args: argparse.Namespace) -> None:
    job = client.start_offline_to_online_ingestion(args.table, args.start, args.end, project=args.project)
    console.print(f"started {job.id}")
    if args.wait:
        info = job.wait(timeout=args.timeout)
        console.print(f"{job.id} {info.outcome()}")


def online(client: Client, args: argparse.Namespace) -> None:
    rows: dict[int, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for name, value in args.entity:
        index = counts.get(name, 0)
        rows.setdefault(index, {})[name] = value
        counts[name] = index + 1
    response = client.get_online_features(args.features.split(","), list(rows.values()), project=args.project)
    values, statuses = response.to_dict(), response.statuses()
    names = list(values)
    _table("online features", names,
           [[f"{values[n][i]} ({statuses[n][i]})" if statuses[n][i] != "PRESENT" else values[n][i] for n in names]
            for i in range(len(response))])  # fmt: skip


def retrieve(client: Client, args: argparse.Namespace) -> None:
    job = client.get_historical_features(args.features.split(","), args.entities, project=args.project,
                                         output_location=args.output)  # fmt: skip
    console.print(f"started {job.id}")
    console.print(f"output: {job.get_output_file_uri(timeout=args.timeout)}")


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


# the parser -----------------------------------------------------------------------------------------------

COMMANDS: dict[str, tuple[Callable[[Client, argparse.Namespace], None], str]] = {
    "apply": (apply, "create or update entities and feature tables from YAML files"),
    "entities": (entities, "list or describe entities"),
    "tables": (tables, "list or describe feature tables"),
    "projects": (projects, "list, create or archive projects"),
    "jobs": (jobs, "list, describe or cancel jobs"),
    "ingest": (ingest, "load a table's batch data for a time window into the online store"),
    "online": (online, "look up online features: online get --features t:f --entity driver_id=1001"),
    "retrieve": (retrieve, "build a point-in-time training set from an entity file"),
    "access": (access, "roles per project: access grant|revoke|list|whoami, or access new-token NAME"),
}


def parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"provender {command}", description=COMMANDS[command][1])
    p.add_argument("--core-url", help="Core host:port (PROVENDER_CORE_URL, ~/.provender/config)")
    p.add_argument("--serving-url", help="Serving host:port (PROVENDER_SERVING_URL)")
    p.add_argument("--project", help="project (PROVENDER_PROJECT; default 'default')")
    if command == "apply":
        p.add_argument("-f", "--file", action="append", required=True, help="YAML file (repeatable)")
    elif command in ("entities", "tables"):
        p.add_argument("verb", choices=["list", "describe"])
        p.add_argument("name", nargs="?", help="for describe")
        p.add_argument("--label", action="append", type=_label, help="KEY=VALUE filter (repeatable)")
    elif command == "projects":
        p.add_argument("verb", choices=["list", "create", "archive"])
        p.add_argument("name", nargs="?")
    elif command == "access":
        p.add_argument("verb", choices=["grant", "revoke", "list", "whoami", "new-token"])
        p.add_argument(
            "project_name",
            nargs="?",
            metavar="PROJECT",
            help="the project ('*': every project); for new-token, the token's NAME",
        )
        p.add_argument("principal", nargs="?", help="user:SUBJECT, group:NAME, token:NAME or cert:NAME")
        p.add_argument("role", nargs="?", choices=ROLES, help="for grant")
    elif command == "jobs":
        p.add_argument("verb", choices=["list", "describe", "cancel"])
        p.add_argument("id", nargs="?")
        p.add_argument("--table", help="only this table's jobs")
        p.add_argument("--active", action="store_true", help="only pending and running jobs")
        p.add_argument("--type", choices=["batch", "stream", "retrieval"], help="only jobs of this type")
    elif command == "ingest":
        p.add_argument("--table", required=True)
        p.add_argument(
            "--start", type=_time, default=_time("-1d"), help="ISO time, now, or -2d (default -1d)"
        )
        p.add_argument("--end", type=_time, default=None, help="ISO time, now or -1h (default now)")
        p.add_argument("--wait", action="store_true", help="wait until the job ends")
        p.add_argument("--timeout", type=float, default=1800)
    elif command == "online":
        p.add_argument("verb", choices=["get"])
        p.add_argument("--features", required=True, help="table:feature[,table:feature...]")
        p.add_argument("--entity", action="append", required=True, type=_entity_value,
                       help="NAME=VALUE; repeat a name for more rows")  # fmt: skip
    elif command == "retrieve":
        p.add_argument("--features", required=True, help="table:feature[,table:feature...]")
        p.add_argument(
            "--entities", required=True, help="parquet or CSV with the entity columns and event_timestamp"
        )
        p.add_argument("--output", help="where the output goes (default: Core's staging location)")
        p.add_argument("--timeout", type=float, default=1800)
    return p


def _attach_time_values(argv: list[str]) -> list[str]:
    """["--start", "-2d"] as ["--start=-2d"], so that argparse takes -2d as the value it is."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _TIME_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(command: str, argv: list[str]) -> int:
    args = parser(command).parse_args(_attach_time_values(argv))
    if getattr(args, "verb", None) in ("describe", "create", "archive", "cancel") and not (
        getattr(args, "name", None) or getattr(args, "id", None)
    ):
        print(f"provender {command} {args.verb}: a name is required", file=sys.stderr)
        return 2
    if command == "ingest" and args.end is None:
        args.end = datetime.now(UTC)
    if command == "access":
        needed = {"grant": ("project_name", "principal", "role"), "revoke": ("project_name", "principal"),
                  "new-token": ("project_name",)}.get(args.verb, ())  # fmt: skip
        shown = "NAME" if args.verb == "new-token" else "PROJECT"
        missing = [name.replace("project_name", shown).upper() for name in needed if not getattr(args, name)]
        if missing:
            print(f"provender access {args.verb}: {' and '.join(missing)} required", file=sys.stderr)
            return 2
        if args.verb == "new-token":
            return _new_token(args)
    try:
        with Client(core_url=args.core_url, serving_url=args.serving_url, project=args.project) as client:
            COMMANDS[command][0](client, args)
    except (ProvenderError, ValueError) as e:  # ValueError: a config file that is not valid
        print(f"provender {command}: {e}", file=sys.stderr)
        return 1
    return 0
