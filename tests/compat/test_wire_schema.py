"""Our generated protos describe the same wire as the real Feast 0.9 SDK's, module by module.

dump_descriptors.py runs once under each interpreter (the SDK's protobuf 3.20 and ours) over all modules;
every message, field (name, number, type, label, packing, type name, oneof), enum value and service method
of theirs must exist identically in ours, and the feast.* messages must carry no fields of our own
(docs/protocol.md: our additions live in provender.* packages).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

MODULES = [
    "feast.types.Value_pb2",
    "feast.types.Field_pb2",
    "feast.core.DataFormat_pb2",
    "feast.core.DataSource_pb2",
    "feast.core.Entity_pb2",
    "feast.core.Feature_pb2",
    "feast.core.FeatureTable_pb2",
    "feast.core.Store_pb2",
    "feast.core.CoreService_pb2",
    "feast.core.JobService_pb2",
    "feast.serving.ServingService_pb2",
    "feast.storage.Redis_pb2",
    "feast_spark.api.JobService_pb2",
]
OURS = "provender.proto."
DUMP = str(Path(__file__).with_name("dump_descriptors.py"))


@pytest.fixture(scope="module")
def theirs(feast09) -> dict:
    proc = feast09.run([str(feast09.python), DUMP, *MODULES], timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def ours() -> dict:
    proc = subprocess.run(
        [sys.executable, DUMP, *(OURS + m for m in MODULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return {name.removeprefix(OURS): schema for name, schema in json.loads(proc.stdout).items()}


def _missing_or_different(theirs: dict, ours: dict) -> list[str]:
    """Everything of theirs that ours lacks or describes differently, one readable line each."""
    problems = []
    if theirs["package"] != ours["package"]:
        problems.append(f"proto package: theirs {theirs['package']!r}, ours {ours['package']!r}")
    for kind in ("messages", "enums", "services"):
        for name, their_members in theirs[kind].items():
            our_members = ours[kind].get(name)
            if our_members is None:
                problems.append(f"{kind[:-1]} {name}: missing")
                continue
            for member, spec in their_members.items():
                if member not in our_members:
                    problems.append(f"{kind[:-1]} {name}: {member} missing (theirs {spec})")
                elif our_members[member] != spec:
                    problems.append(f"{kind[:-1]} {name}: {member} theirs {spec}, ours {our_members[member]}")
    return problems


@pytest.mark.parametrize("module", MODULES)
def test_their_schema_exists_identically_in_ours(module: str, theirs: dict, ours: dict) -> None:
    # The dump must have found something, or the comparison below proves nothing.
    assert theirs[module]["messages"] or theirs[module]["enums"], f"nothing dumped for {module}"
    problems = _missing_or_different(theirs[module], ours[module])
    assert not problems, f"{module} differs from Feast 0.9:\n" + "\n".join(problems)


@pytest.mark.parametrize("module", MODULES)
def test_feast_messages_have_no_fields_of_our_own(module: str, theirs: dict, ours: dict) -> None:
    extra = [
        f"{kind[:-1]} {name}: {member}"
        for kind in ("messages", "enums", "services")
        for name, our_members in ours[module][kind].items()
        if name.startswith(("feast.", "feast_spark.")) and name in theirs[module][kind]
        for member in our_members
        if member not in theirs[module][kind][name]
    ]
    assert not extra, f"{module} adds to Feast 0.9's messages (put additions in provender.*):\n" + "\n".join(
        extra
    )


def test_schema_comparison_detects_a_renumbered_field(theirs: dict, ours: dict) -> None:
    """The comparison itself: a field moved to another number, or a dropped enum value, is reported."""
    mutated = json.loads(json.dumps(ours["feast.types.Value_pb2"]))
    mutated["messages"]["feast.types.Value"]["int64_val"]["number"] = 40
    del mutated["enums"]["feast.types.ValueType.Enum"]["BOOL_LIST"]
    problems = _missing_or_different(theirs["feast.types.Value_pb2"], mutated)
    assert any("int64_val" in p and "'number': 4," in p for p in problems), problems
    assert any("BOOL_LIST missing" in p for p in problems), problems
