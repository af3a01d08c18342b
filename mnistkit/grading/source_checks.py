"""Technique checks decided in the grader, from the submitted notebook's source.

Whether an answer loops over a batch, uses a forbidden shortcut or hides from the grader cannot
be measured inside the sandbox: the student's code owns that process and can patch whatever
counts or inspects it (``gc.get_objects()``, ``torch._C.DisableTorchFunction()``). The grader
has the notebook, so it reads the answer's syntax tree instead. The notebooks state the rules
this module enforces (section "What the grader reads in your code").

``function_code(notebook, name)`` is the ``def name`` (or ``name = lambda``) of the student's
answer, plus every function of the notebook it calls, transitively, so a loop moved into a
helper is still seen. ``python_loops`` and ``evasions`` list what is found there.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from mnistkit.grading.expect import Mismatch

# Builtins that iterate in Python over what they are given (a tensor: its first axis).
ITERATING_BUILTINS = {"map", "filter", "sum", "min", "max", "sorted", "list", "tuple", "set",
                      "dict", "enumerate", "zip", "iter", "next", "range", "reversed", "any",
                      "all", "reduce"}
# Calls that run or reach code the grader cannot read, or reach the runner's own objects.
HIDDEN_CODE_CALLS = {"exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr",
                     "globals", "locals", "vars", "breakpoint", "open", "input"}
HIDDEN_CODE_MODULES = {"gc", "inspect", "sys", "ctypes", "importlib", "builtins", "types", "os",
                       "subprocess", "pickle", "marshal", "threading", "multiprocessing", "signal"}
ALLOWED_DUNDERS = {"__init__", "__call__", "__len__", "__getitem__", "__iter__", "__repr__",
                   "__name__"}


def code_cells(notebook: Path | str) -> list[tuple[str | None, str]]:
    from mnistkit.grading.student import code_cells as cells
    return cells(Path(notebook))


def parse_cell(source: str):
    """A notebook cell as a Python syntax tree (IPython magics turned into Python first), or
    None when it is not valid Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        source = TransformerManager().transform_cell(source)
    except Exception:
        pass
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _definitions(tree) -> dict[str, ast.AST]:
    """Top-level functions (and ``name = lambda``) defined in a cell, by name."""
    found = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value
    return found


@dataclass
class FunctionCode:
    name: str
    nodes: dict          # function name -> its syntax tree node (the answer and its helpers)
    cell_source: str     # the source of the cell that defines ``name``
    # evasions in the cells that could rebind this answer at run time (`_cells_that_can_tamper`)
    elsewhere: list = field(default_factory=list)


def _cells_that_can_tamper(notebook, name: str):
    """Cells whose top-level code counts against ``name``'s technique: the cells the student
    added (no grade id: they belong to no exercise, and an `exec` there could rebind any
    answer after its clean definition) and ``name``'s own answer cell. Locked and self-check
    cells are restored from the release before grading; another exercise's answer cell counts
    for that exercise only, so a forged answer never costs another exercise anything."""
    return [(grade_id, source) for grade_id, source in code_cells(notebook)
            if grade_id is None or grade_id == f"{name}-answer"]


def _bindings(tree) -> dict[str, ast.AST | None]:
    """Top-level names a cell binds, in order: a readable function (def, ``name = lambda``) or
    None for any other binding (an assignment, an import, a loop variable, ``del``)."""
    found: dict[str, ast.AST | None] = {}
    for node in getattr(tree, "body", []):
        readable = _definitions(ast.Module(body=[node], type_ignores=[]))
        found.update(readable)
        if readable:
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                found[sub.id] = None
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[sub.name] = None       # a def inside an `if`/`try`/`with`: not read
            elif isinstance(sub, ast.alias):
                found[(sub.asname or sub.name).split(".")[0]] = None
    return found


def _notebook_definitions(notebook) -> tuple[dict[str, ast.AST | None], dict[str, str]]:
    """What each top-level name is bound to after the notebook runs top to bottom: the *last*
    binding wins, as in the namespace the grader questions (a clean answer cell followed by a
    cell that redefines the function is graded on the redefinition)."""
    defs, sources = {}, {}
    for _, source in code_cells(notebook):
        tree = parse_cell(source)
        if tree is None:
            continue
        for name, node in _bindings(tree).items():
            defs[name], sources[name] = node, source
    return defs, sources


def _cell_evasions(notebook, name: str) -> list[str]:
    found = []
    for grade_id, source in _cells_that_can_tamper(notebook, name):
        tree = parse_cell(source)
        if tree is None:
            continue
        where = f"the cell {grade_id}" if grade_id else "a cell you added"
        found += [f"{what} (in {where})" for what in
                  evasions(FunctionCode("cell", {"cell": tree}, source))]
    return found


def function_code(notebook, name: str) -> FunctionCode:
    defs, sources = _notebook_definitions(notebook)
    if name not in defs:
        raise Mismatch(f"could not find a `def {name}(...)` in your notebook")
    if defs[name] is None:
        raise Mismatch(f"`{name}` is last bound by something other than a `def` (an assignment, "
                       "an import or a loop), so the grader cannot read its code")
    nodes, todo = {}, [name]
    while todo:
        current = todo.pop()
        if current in nodes or defs.get(current) is None:
            continue
        nodes[current] = defs[current]
        for node in ast.walk(defs[current]):
            if isinstance(node, ast.Name) and defs.get(node.id) is not None and node.id not in nodes:
                todo.append(node.id)
    return FunctionCode(name, nodes, sources[name], _cell_evasions(notebook, name))


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def python_loops(code: FunctionCode) -> list[str]:
    """What in the answer (or a helper it calls) loops in Python: for/while, comprehensions,
    recursion, iterating builtins."""
    found = []
    for fname, fn in code.nodes.items():
        for node in ast.walk(fn):
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
                found.append(f"a `{'while' if isinstance(node, ast.While) else 'for'}` loop")
            elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                found.append("a comprehension")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in ITERATING_BUILTINS:
                    found.append(f"`{node.func.id}(...)`")
                elif node.func.id == fname:
                    found.append("recursion")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in {"apply_", "map_", "unbind"}):
                found.append(f"`.{node.func.attr}()`")
    return sorted(set(found))


def evasions(code: FunctionCode) -> list[str]:
    """What in the answer hides code from the grader or reaches its machinery: exec/eval-like
    calls, imports of introspection modules, private (underscore) attributes such as
    ``torch._C``."""
    found = []
    for fn in code.nodes.values():
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in HIDDEN_CODE_CALLS:
                found.append(f"`{node.func.id}(...)`")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""])
                for module in modules:
                    if module.split(".")[0] in HIDDEN_CODE_MODULES or "._" in module:
                        found.append(f"`import {module}`")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and node.attr not in ALLOWED_DUNDERS:
                found.append(f"`.{node.attr}`")
            elif isinstance(node, ast.Name) and node.id.startswith("__") \
                    and node.id not in ALLOWED_DUNDERS:
                found.append(f"`{node.id}`")
    return sorted(set(found) | set(code.elsewhere))


def in_place_operations(code: FunctionCode, arguments_only: bool = True) -> list[str]:
    """In-place changes: methods ending in ``_`` (``clamp_``), ``out=``, item or slice
    assignment and augmented assignment (``x[...] = ``, ``x += ``) -- on the function's
    arguments when ``arguments_only``."""
    found = []
    for fn in code.nodes.values():
        args = set()
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = fn.args
            args = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            args |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}

        def on_argument(target) -> bool:
            while isinstance(target, (ast.Attribute, ast.Subscript)):
                target = target.value
            return not arguments_only or (isinstance(target, ast.Name) and target.id in args)

        for node in ast.walk(fn):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_") \
                        and not node.func.attr.startswith("_") and on_argument(node.func.value):
                    found.append(f"`.{node.func.attr}(...)`")
                if any(k.arg == "out" for k in node.keywords):
                    found.append("`out=`")
            elif isinstance(node, ast.AugAssign) and on_argument(node.target):
                found.append("an augmented assignment (`+=`, ...)")
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, (ast.Subscript, ast.Attribute)) and on_argument(target):
                        found.append("an assignment into a tensor (`x[...] = ...`)")
    return sorted(set(found))


def calls(code: FunctionCode) -> set[str]:
    """Names of the functions and methods the answer calls (``torch.where`` -> ``where``)."""
    return {name for fn in code.nodes.values() for node in ast.walk(fn)
            if isinstance(node, ast.Call) and (name := _call_name(node))}


RULES_MARKDOWN = """### What the grader reads in your code

The hidden grader runs your functions on new inputs *and* reads the code of your answer cells
(the functions you define there and the notebook functions they call). Where an exercise asks
for broadcasting or a single matrix product, a Python loop (`for`, `while`, a comprehension,
`map`, `sum(...)` over a tensor, recursion) in that code costs the technique check. In every
answer cell, code the grader cannot read earns no technique point: `exec`, `eval`, `compile`,
`__import__`, `getattr`/`setattr`, `globals()`, imports of `gc`, `inspect`, `sys`, `ctypes`,
`importlib`, and private attributes such as `torch._C`. Write plain, readable PyTorch: that is
all any exercise needs.
"""


def expect_no_python_loop(notebook, name: str, advice: str) -> None:
    code = function_code(notebook, name)
    loops = python_loops(code)
    if loops:
        raise Mismatch(f"{name} uses {', '.join(loops)}: {advice}")


def expect_no_evasion(notebook, name: str) -> None:
    code = function_code(notebook, name)
    found = evasions(code)
    if found:
        raise Mismatch(f"{name} uses {', '.join(found)}, which answers may not use (see "
                       "\"What the grader reads in your code\" in the notebook)")
