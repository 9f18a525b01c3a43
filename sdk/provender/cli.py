"""The `provender` command: servers (core, serving) and, as they arrive, the user commands."""

from __future__ import annotations

import importlib
import sys

# Subcommand -> module with a `main(argv) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "core": ("provender.core.main", "run Core (registry + jobs), or `core migrate`"),
    "serving": ("provender.serving.main", "run Serving (online lookups from Redis)"),
    "local": ("provender.local.main", "the whole platform on this machine: local up | down | status"),
}


def usage() -> str:
    from provender.commands import COMMANDS as USER_COMMANDS

    lines = ["usage: provender COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in USER_COMMANDS.items()]
    lines += ["", "servers:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`provender COMMAND --help` describes each."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    if args[0] in {"--version", "version"}:
        import provender

        print(f"provender {provender.__version__}")
        return 0
    from provender.commands import COMMANDS as USER_COMMANDS
    from provender.commands import main as user_main

    if args[0] in USER_COMMANDS:
        return user_main(args[0], args[1:])
    if args[0] not in COMMANDS:
        print(f"provender: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from provender.kernel.extras import MissingExtra

    try:
        module = importlib.import_module(COMMANDS[args[0]][0])
    except MissingExtra as e:
        print(f"provender {args[0]}: {e}", file=sys.stderr)
        return 2
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
