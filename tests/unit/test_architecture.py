"""The folder tree is the architecture, and its dependencies point one way (docs/architecture.md): every import
between Provender's parts is checked against the allowed edges, and the facts that live in the kernel are not
written again elsewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Folder -> the part its modules belong to (the generated protos, sdk/provender/proto, are a leaf all may use).
PARTS = {
    "kernel": ROOT / "kernel",
    "sdk": ROOT / "sdk" / "provender",
    "server": ROOT / "services" / "server",
    "core": ROOT / "services" / "core",
    "serving": ROOT / "services" / "serving",
    "jobs": ROOT / "services" / "jobs",
    "local": ROOT / "services" / "local",
}
ALLOWED = {
    "kernel": set(),
    "sdk": {"kernel"},
    "server": {"kernel"},
    "core": {"kernel", "server"},
    "serving": {"kernel", "server"},
    "jobs": {"kernel"},
    "local": {"kernel"},  # and the other parts only as processes (provender core, provender serving)
}
# The SDK's CLI dispatches `provender core|serving|local` to those parts' main modules by name, on demand: the one
# place the SDK names a part, and not an import of it.
DISPATCH = ROOT / "sdk" / "provender" / "cli.py"


def part_of_module(name: str) -> str | None:
    """The part an import name belongs to ("provender.core.app" -> "core"; "provender.client" -> "sdk")."""
    if name == "provender" or not name.startswith("provender."):
        return "sdk" if name == "provender" else None
    second = name.split(".")[1]
    if second == "proto":
        return None
    return second if second in PARTS and second != "sdk" else "sdk"


def modules(part: str) -> list[Path]:
    files = sorted(PARTS[part].rglob("*.py"))
    return [
        f
        for f in files
        if "proto" not in f.relative_to(PARTS[part]).parts[:1] and "migrations" not in f.parts
    ]


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            if node.module == "provender":
                found += [(node.lineno, f"provender.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("part", sorted(PARTS))
def test_imports_point_one_way(part):
    wrong = []
    for path in modules(part):
        for line, name in imports(path):
            target = part_of_module(name)
            if target is None or target == part:
                continue
            if target not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name} ({part} -> {target})")
    assert not wrong, "\n".join(wrong)


def test_the_sdk_names_parts_only_in_the_cli_dispatch():
    for path in modules("sdk"):
        if path == DISPATCH:
            continue
        text = path.read_text()
        assert not re.search(r"(?<!proto\.)provender\.(core|serving|jobs|server|local)\b", text), path


def test_the_kernel_needs_only_the_base_install():
    """Kernel modules import pyspark, pandas or pyarrow only inside the functions that need them (pyarrow: the
    columnar encoders, which only the jobs and Serving's writers use)."""
    heavy = {
        "pyspark",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "kubernetes",
        "redis",
        "prometheus_client",
        "grpc",
    }
    for path in modules("kernel"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in heavy, f"{path.relative_to(ROOT)} imports {name} at the top"


# Facts that live in one kernel module: written as literals anywhere else, they would drift.
ONE_PLACE = {
    "the job folder's files": (r'/ "(driver\.log|exit_code|cancelled|claimed|args\.json|command\.json)"', "kernel/jobs/folder.py"),
    "the warm driver's files": (r'/ "(inbox|ready|owner|lock)"', "kernel/jobs/folder.py"),
    "Spark conf keys": (r'"spark\.provender\.', "kernel/jobs/conf.py"),
    "the report lines": (r'"PROVENDER_JOB_(SUMMARY|ERROR)', "kernel/jobs/report.py"),
    "Redis field prefixes": (r'b"_(ts|ex):"', "kernel/online/layout.py"),
    "the write rule": (r"redis\.call\(", "kernel/online/write_rows.lua"),
}  # fmt: skip


@pytest.mark.parametrize("fact", sorted(ONE_PLACE))
def test_a_fact_is_written_in_one_place(fact):
    pattern, home = ONE_PLACE[fact]
    found = []
    for folder in ("kernel", "sdk", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() != home and re.search(pattern, path.read_text()):
                found.append(path.relative_to(ROOT).as_posix())
    assert not found, f"{fact} belong in {home}, and are also written in {found}"


def test_no_comment_points_outside_the_repository():
    outside = re.compile(r"\b(PROTOCOL|TARGETS|ARCHITECTURE)\.md\b")
    found = [
        path.relative_to(ROOT).as_posix()
        for folder in ("kernel", "sdk", "services", "tests", "bench", "protos", "docs")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".py", ".proto", ".md", ".lua") and "proto" not in path.relative_to(ROOT).parts[2:3]
        and path != Path(__file__) and outside.search(path.read_text(errors="replace"))
    ]  # fmt: skip
    assert not found, found
