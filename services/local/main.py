"""`provender local up | down | status`: the whole platform on this machine."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from provender.local.platform import (
    DEFAULT_CORE_PORT,
    DEFAULT_SERVING_PORT,
    NOT_INSTALLED,
    LocalPlatform,
    LocalPlatformError,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="provender local", description="Run the whole platform on this machine.")
    p.add_argument("verb", choices=["up", "down", "status"])
    p.add_argument(
        "--dir", default=".provender", help="where data, logs and state live (default .provender/)"
    )
    for part, flag, default in (("Core", "--core-port", DEFAULT_CORE_PORT),
                                ("Serving", "--serving-port", DEFAULT_SERVING_PORT)):  # fmt: skip
        p.add_argument(flag, type=int, default=None, metavar="PORT",
                       help=f"{part}'s port: 0 picks a free one; an explicit port that is taken is an error "
                            f"(default {default}, or a free one when {default} is taken)")  # fmt: skip
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON instead of key=value lines")
    out.add_argument("--env", action="store_true",
                     help='print `export PROVENDER_...` lines for the SDK: eval "$(provender local up --env)"')  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    platform = LocalPlatform(args.dir, core_port=args.core_port, serving_port=args.serving_port)
    try:
        if args.verb == "up":
            out = platform.describe(platform.up())
        elif args.verb == "down":
            out = {"stopped": "yes" if platform.down() else "nothing was running"}
        else:
            out = platform.status() or {"status": "not running"}
    except LocalPlatformError as e:
        print(f"provender local {args.verb}: {e}", file=sys.stderr)
        return 1
    for notice in platform.notices:
        print(f"provender local {args.verb}: {notice}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    elif args.env and args.verb == "up":
        names = {"core": "CORE_URL", "serving": "SERVING_URL", "staging": "STAGING_LOCATION",
                 "kafka": "KAFKA_BOOTSTRAP_SERVERS"}  # fmt: skip
        for key, name in names.items():
            if key in out:  # kafka: when streaming is on
                print(f"export PROVENDER_{name}={shlex.quote(out[key])}")
    else:
        for key, value in out.items():
            print(f"{key}={value}")
    if args.verb == "status" and out.get("status") == "not running":
        return 3
    if args.verb == "status" and any(v != "up" and not v.startswith(NOT_INSTALLED) for v in out.values()):
        return 1
    return 0
