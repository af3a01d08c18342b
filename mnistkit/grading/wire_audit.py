"""A record of every request the grader sends into a sandbox, for the kit's own tests.

The trust rule says nothing derived from ``solutions/`` crosses into the sandbox. The kit test
``tests/test_grade_assignments.py::test_no_reference_code_crosses_the_wire`` proves it: with
``MNISTKIT_WIRE_AUDIT=FILE`` set, every request (cells, calls, probe code and its inputs) is
appended to FILE as one JSON line of the strings it carries, and the test looks there for
lines of the reference solutions. Off unless the setting is (``mnistkit.settings``:
``wire_audit``).
"""
from __future__ import annotations

import json

from mnistkit.settings import settings

VARIABLE = "MNISTKIT_WIRE_AUDIT"


def strings_in(value, found: list[str] | None = None) -> list[str]:
    """Every string in a plain-data request (dict keys included)."""
    found = [] if found is None else found
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            strings_in(key, found)
            strings_in(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            strings_in(item, found)
    return found


def record(request: dict) -> None:
    path = settings().wire_audit
    if not path:
        return
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"op": request.get("op"), "strings": strings_in(request)}) + "\n")
