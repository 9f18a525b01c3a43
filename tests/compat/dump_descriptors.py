"""Print the wire schema (packages, messages, fields, enums, services) of a set of proto files as JSON.

Runs under either interpreter: ours (protobuf 6+) or the Feast 0.9 venv (protobuf 3.20), so that
tests/compat/test_wire_schema.py can compare what goes on the wire, field by field, without sharing a process.
Usage: python dump_descriptors.py MODULE [MODULE ...]   (generated *_pb2 module names)
"""

import importlib
import json
import sys


def _message(desc) -> dict:
    return {
        "fields": {
            f.name: {
                "number": f.number,
                "type": f.type,
                "repeated": f.label == 3,
                "type_name": (f.message_type.full_name if f.message_type else None)
                or (f.enum_type.full_name if f.enum_type else None),
                "oneof": f.containing_oneof.name if f.containing_oneof else None,
            }
            for f in desc.fields
        },
        "nested": {m.full_name: _message(m) for m in desc.nested_types},
        "enums": {e.full_name: {v.name: v.number for v in e.values} for e in desc.enum_types},
    }


def dump(modules: list[str]) -> dict:
    out: dict = {"messages": {}, "enums": {}, "services": {}}
    for name in modules:
        fd = importlib.import_module(name).DESCRIPTOR
        for m in fd.message_types_by_name.values():
            out["messages"][m.full_name] = _message(m)
        for e in fd.enum_types_by_name.values():
            out["enums"][e.full_name] = {v.name: v.number for v in e.values}
        for s in fd.services_by_name.values():
            out["services"][s.full_name] = {
                m.name: [m.input_type.full_name, m.output_type.full_name] for m in s.methods
            }
    return out


if __name__ == "__main__":
    json.dump(dump(sys.argv[1:]), sys.stdout, indent=1, sort_keys=True)
