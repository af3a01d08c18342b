"""What an assignment's hidden test module says about each exercise, read from its syntax.

``mnistkit check`` must answer in seconds and must not import the module (that imports torch,
the references and the engine), so this reads ``autograder/test_<assignment>.py`` with ``ast``:
which checks each exercise has (its ``exercise("id")`` marker, or those of a
``pytest.param(n, marks=ex(n)) for n in TABLE`` parameter), the forms they compare answers in,
and the literals they pass.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from mnistkit.paths import AUTOGRADER


@dataclass
class ExerciseChecks:
    names: list[str] = field(default_factory=list)        # test function names, in order
    forms: set[str] = field(default_factory=set)          # "tensor", "number"
    nodes: list[ast.FunctionDef] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)   # test name -> line


def module_path(assignment: str, autograder: Path = AUTOGRADER) -> Path:
    return autograder / f"test_{assignment}.py"


def _marked_exercises(fn: ast.FunctionDef, tree: ast.Module) -> list[str]:
    ids = []
    for deco in fn.decorator_list:
        text = ast.unparse(deco)
        ids += re.findall(r"^(?:ex|pytest\.mark\.exercise)\('(\w+)'", text)
        if "marks=ex(" in text:
            table = re.search(r"for \w+ in (\w+)", text).group(1)
            assigned = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                            and ast.unparse(node.targets[0]) == table)
            ids += re.findall(r"'(\w+)':", ast.unparse(assigned))
    return ids


def _forms(helpers: list[ast.FunctionDef]) -> set[str]:
    """"tensor" (``expect_close``, ``expect_shape``, ``expect_dtype`` without ``number=True``)
    and "number" (``expect_number`` or ``number=True``)."""
    forms = set()
    for fn in helpers:
        for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
            called = ast.unparse(call.func)
            number = any(k.arg == "number" and ast.unparse(k.value) == "True" for k in call.keywords)
            if called in ("expect_close", "expect_close_any", "expect_shape", "expect_dtype") \
                    and not number:
                forms.add("tensor")
            if called == "expect_number" or number:
                forms.add("number")
    return forms


def read(assignment: str, autograder: Path = AUTOGRADER) -> dict[str, ExerciseChecks]:
    """Exercise id -> its checks. Helpers a check calls (module functions, followed) count for
    its forms."""
    tree = ast.parse(module_path(assignment, autograder).read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}

    def reached(name, seen):
        if name in functions and name not in seen:
            seen.add(name)
            for node in ast.walk(functions[name]):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    reached(node.func.id, seen)
        return seen

    found: dict[str, ExerciseChecks] = {}
    for name, fn in functions.items():
        ids = _marked_exercises(fn, tree)
        if not ids:
            continue
        helpers = [functions[h] for h in reached(name, set())]
        for ex_id in ids:
            checks = found.setdefault(ex_id, ExerciseChecks())
            checks.names.append(name)
            checks.nodes += helpers
            checks.lines[name] = fn.lineno
            checks.forms |= _forms(helpers)
    return found
