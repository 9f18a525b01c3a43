"""Print the wire schema (packages, messages, fields, enums, services) of a set of proto files as JSON.

Runs under either interpreter: ours (protobuf 7) or the Feast 0.9 venv (protobuf 3.20), so that
tests/compat/test_wire_schema.py can compare what goes on the wire, field by field, without sharing a process.
Only what decides the bytes on the wire (or the method paths) is dumped: names, numbers, types, labels,
packing, oneofs, enum values, service methods and their streaming kinds.

Usage: python dump_descriptors.py MODULE [MODULE ...]   (generated *_pb2 module names)
Output: {"MODULE": {"package": ..., "messages": {...}, "enums": {...}, "services": {...}}, ...}
Messages and enums are keyed by full name and flattened (nested ones included).
"""

import importlib
import json
import sys

_LABELS = {1: "optional", 2: "required", 3: "repeated"}
# Scalar types that proto3 packs by default when repeated (not string, bytes, message or group).
_PACKABLE = {1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 15, 16, 17, 18}


def _label(f) -> str:
    # protobuf 3.20 has FieldDescriptor.label; protobuf 7 dropped it for is_repeated / is_required.
    if hasattr(f, "label"):
        return _LABELS[f.label]
    if f.is_repeated:
        return "repeated"
    return "required" if f.is_required else "optional"


def _packed(f, syntax: str) -> bool:
    if hasattr(f, "is_packed"):
        return bool(f.is_packed)
    if _label(f) != "repeated" or f.type not in _PACKABLE:
        return False
    options = f.GetOptions()
    if options.HasField("packed"):
        return options.packed
    return syntax == "proto3"


def _collect(desc, syntax: str, messages: dict, enums: dict) -> None:
    messages[desc.full_name] = {
        f.name: {
            "number": f.number,
            "type": f.type,
            "label": _label(f),
            "packed": _packed(f, syntax),
            "type_name": (f.message_type.full_name if f.message_type else None)
            or (f.enum_type.full_name if f.enum_type else None),
            "oneof": f.containing_oneof.name if f.containing_oneof else None,
        }
        for f in desc.fields
    }
    for e in desc.enum_types:
        enums[e.full_name] = {v.name: v.number for v in e.values}
    for m in desc.nested_types:
        _collect(m, syntax, messages, enums)


def dump_module(name: str) -> dict:
    fd = importlib.import_module(name).DESCRIPTOR
    syntax = getattr(fd, "syntax", None) or "proto3"
    messages: dict = {}
    enums: dict = {}
    for m in fd.message_types_by_name.values():
        _collect(m, syntax, messages, enums)
    for e in fd.enum_types_by_name.values():
        enums[e.full_name] = {v.name: v.number for v in e.values}
    services = {
        s.full_name: {
            m.name: {
                "input": m.input_type.full_name,
                "output": m.output_type.full_name,
                "client_streaming": m.client_streaming,
                "server_streaming": m.server_streaming,
            }
            for m in s.methods
        }
        for s in fd.services_by_name.values()
    }
    return {"package": fd.package, "messages": messages, "enums": enums, "services": services}


def dump(modules: list[str]) -> dict:
    return {name: dump_module(name) for name in modules}


if __name__ == "__main__":
    json.dump(dump(sys.argv[1:]), sys.stdout, indent=1, sort_keys=True)
