"""What the grader finds in code it read (``source_reading``): the suspects that can still
change the questioned code (``suspects``, ``evasions``), Python loops (``python_loops``),
in-place operations and the calls the code makes.

The second of three layers, between reading the notebook (``source_reading``) and the checks
(``source_checks``). STANDARD LIBRARY ONLY: ``mnistkit build`` joins the three into the
students' ``grader_reads.py``, leaving out the ``mnistkit`` imports between them.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from mnistkit.grading.source_reading import (_dotted, _known_module, DYNAMIC_ATTRIBUTES,
                                             DYNAMIC_MODULES, DYNAMIC_NAMES, DYNAMIC_TYPES,
                                             FunctionCode, ITERATING_BUILTINS, LOOPING_METHODS,
                                             Notebook, SELF)

# ---- suspects ------------------------------------------------------------------------------

@dataclass
class Suspect:
    """Something in the student's cells that can change or hide questioned code: ``names``
    (top-level names it rebinds) or ``attributes`` (library attributes it patches) say whose;
    neither means any code."""
    text: str
    names: set = field(default_factory=set)
    attributes: set = field(default_factory=set)

    def reaches(self, code: FunctionCode) -> bool:
        if not self.names and not self.attributes:
            return True
        reached = set(code.nodes) | set(code.values) | {code.name}
        used = {n.attr for node in list(code.nodes.values()) + list(code.values.values())
                for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        used |= {n.id for node in code.nodes.values() for n in ast.walk(node) if isinstance(n, ast.Name)}
        return bool(self.names & reached or self.attributes & used)


def _where(grade_id: str | None) -> str:
    return f"the answer cell of {grade_id.removesuffix('-answer')}" if grade_id else "a cell you added"


def _is_library_root(node, book: Notebook, local: frozenset = frozenset()) -> bool:
    """Whether an attribute target's object is a module or class (not a value of the notebook,
    nor a function's local)."""
    root = node
    while isinstance(root, (ast.Attribute, ast.Subscript, ast.Call)):
        root = root.value if not isinstance(root, ast.Call) else root.func
    if not isinstance(root, ast.Name) or root.id == SELF or root.id in local:
        return False
    binding = book.bindings.get(root.id)
    return binding is None or binding.kind in ("import", "class", "alias")


def _may_be_code(value, book: Notebook) -> bool:
    """A value assigned to a library attribute that can be code: a lambda, a function or class
    of the notebook (or one wrapped by a call), anything not plainly data."""
    if isinstance(value, ast.Lambda):
        return True
    if isinstance(value, ast.Constant) or isinstance(value, (ast.List, ast.Tuple, ast.Dict, ast.Set)) \
            and not any(isinstance(n, (ast.Name, ast.Lambda)) for n in ast.walk(value)):
        return False
    names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    if any(book.bindings.get(n) is not None and book.bindings[n].kind in ("def", "class", "lambda", "alias")
           for n in names):
        return True
    root = _dotted(value)
    if root is None:
        return False
    binding = book.bindings.get(root.split(".")[0])       # a library's function, or a value
    return binding is None or binding.kind in ("import", "def", "class", "lambda", "alias")


def suspects(book: Notebook) -> list[Suspect]:
    """Every ``Suspect`` in the student's cells (answer cells and cells they added)."""
    found = []
    for grade_id, tree in book.student_trees():
        where, harmless = _where(grade_id), _harmless_reads(tree)
        for node, local in _walk_with_locals(tree, frozenset()):
            if id(node) not in harmless:
                found += _node_suspects(node, where, book, local)
    unique = {}
    for suspect in found:
        unique.setdefault((suspect.text, frozenset(suspect.names), frozenset(suspect.attributes)), suspect)
    return list(unique.values())


def _walk_with_locals(node, local: frozenset):
    """ast.walk, with the names local to the enclosing function (its arguments and stores)."""
    yield node, local
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        names = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
        names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        declared = {n for s in ast.walk(node) if isinstance(s, ast.Global) for n in s.names}
        names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)} - declared
        local = local | names
    for child in ast.iter_child_nodes(node):
        yield from _walk_with_locals(child, local)


def _harmless_reads(tree) -> set[int]:
    """Reads that only look: ``'google.colab' in sys.modules``, ``str(get_ipython())`` (the
    usual Colab and Kaggle checks)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and all(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            found |= {id(c) for c in node.comparators if _dotted(c) == "sys.modules"}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("str", "type", "repr", "print", "isinstance") and node.args:
            inner = node.args[0]
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) \
                    and inner.func.id == "get_ipython" and not inner.args:
                found.add(id(inner.func))
    return found


def _node_suspects(node, where: str, book: Notebook, local: frozenset) -> list[Suspect]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in DYNAMIC_NAMES:
        return [Suspect(f"`{node.id}` (in {where})")]
    if isinstance(node, ast.Name) and node.id in DYNAMIC_ATTRIBUTES and node.id.startswith("__"):
        return [Suspect(f"`{node.id}` (in {where})")]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                   else [f"{node.module or ''}.{a.name}" for a in node.names])
        bad = [m for m in modules if m.split(".")[0] in DYNAMIC_MODULES
               and m not in ("inspect.signature", "pickle.dump", "pickle.dumps")
               or m.split(".")[-1] in DYNAMIC_TYPES
               or m.endswith(".*") and not _known_module(m)]
        return [Suspect(f"`import {bad[0]}` (in {where})")] if bad else []
    if isinstance(node, ast.Attribute) and node.attr in DYNAMIC_TYPES:
        return [Suspect(f"`.{node.attr}` (in {where})")]
    if isinstance(node, ast.Attribute) and node.attr in DYNAMIC_ATTRIBUTES:
        if node.attr == "__dict__" and isinstance(node.value, ast.Name) and node.value.id == SELF:
            return []
        if node.attr == "modules" and _dotted(node) != "sys.modules":
            return []
        return [Suspect(f"`.{node.attr}` (in {where})")]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) \
            and node.value.strip() in DYNAMIC_ATTRIBUTES and node.value.strip().startswith("__"):
        return [Suspect(f"the name {node.value.strip()!r} in a string (in {where})")]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        declared = {n for s in ast.walk(node) if isinstance(s, ast.Global) for n in s.names}
        stored = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, (ast.Store, ast.Del))} & declared
        found = [Suspect(f"`global {', '.join(sorted(stored))}` in `{node.name}` (in {where})",
                         names=stored)] if stored else []
        for deco in node.decorator_list:
            if (_dotted(deco.func if isinstance(deco, ast.Call) else deco) or "").split(".")[-1] \
                    in ("patch", "patch_to"):
                found.append(Suspect(f"`@patch` on `{node.name}` (in {where})", attributes={node.name}))
        return found
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
        targets = (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target])
        value = getattr(node, "value", None)
        return [Suspect(f"a change to `{_dotted(t) or t.attr}` (in {where})", attributes={t.attr})
                for t in targets if isinstance(t, ast.Attribute) and _is_library_root(t, book, local)
                and (value is None or _may_be_code(value, book))]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" \
            and node.args and _is_library_root(ast.Attribute(node.args[0], "x", ast.Load()), book, local):
        name = node.args[1] if len(node.args) > 1 else None
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            return [Suspect(f"`setattr(..., {name.value!r}, ...)` (in {where})", attributes={name.value})]
        return [Suspect(f"`setattr` (in {where})")]
    return []


# ---- loops ---------------------------------------------------------------------------------

def _fixed(node, local: dict) -> bool:
    """Whether iterating ``node`` goes over a fixed handful written in the code (a literal tuple,
    ``range(3)``, a tensor's axes, a model's layers), not over data."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return not any(isinstance(e, ast.Starred) and not _fixed(e.value, local) for e in node.elts)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes))
    if isinstance(node, ast.Attribute):
        return node.attr in ("shape", "ndim") or _dotted(node.value) == SELF \
            or isinstance(node.value, ast.Name) and node.value.id == SELF
    if isinstance(node, ast.Subscript):
        return _fixed(node.value, local)
    if isinstance(node, ast.Name):
        return node.id in local and _fixed(local[node.id], {})
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            return func.attr in ("size", "stride", "parameters", "named_parameters", "children",
                                 "named_children", "modules", "named_modules", "buffers",
                                 "dim") and not node.args
        if isinstance(func, ast.Name) and func.id == "range":
            return all(_small_number(a) for a in node.args)
        if isinstance(func, ast.Name) and func.id in ("enumerate", "zip", "reversed", "sorted",
                                                      "tuple", "list"):
            return bool(node.args) and all(_fixed(a, local) for a in node.args)
    return False


def _small_number(node) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int) and abs(node.value) <= 64
    if isinstance(node, ast.UnaryOp):
        return _small_number(node.operand)
    if isinstance(node, ast.Attribute):
        return node.attr == "ndim"
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Attribute) and node.func.attr == "dim") or (
            isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1
            and (_fixed(node.args[0], {}) or isinstance(node.args[0], ast.Attribute)
                 and node.args[0].attr == "shape"))
    return False


def _locals(fn) -> dict:
    found: dict = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value if node.targets[0].id not in found else ast.Name("?", ast.Load())
    return found


def python_loops(code: FunctionCode) -> list[str]:
    """What in the questioned code loops in Python (module docstring)."""
    found = list(code.loops)
    for fname, fn in code.nodes.items():
        local = _locals(fn)
        for node in ast.walk(fn):
            if isinstance(node, (ast.For, ast.AsyncFor)) and not _fixed(node.iter, local):
                found.append("a `for` loop")
            elif isinstance(node, ast.While):
                found.append("a `while` loop")
            elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)) \
                    and not all(_fixed(g.iter, local) for g in node.generators):
                found.append("a comprehension")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name, args = node.func.id, [a for a in node.args]
                if name == fname:
                    found.append("recursion")
                elif name in ITERATING_BUILTINS and args and not (name in ("min", "max") and len(args) > 1):
                    iterables = args[1:] if name in ("map", "filter") else args
                    if name in ("map", "filter") or not all(_fixed(a, local) for a in iterables):
                        found.append(f"`{name}(...)`")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in LOOPING_METHODS:
                found.append(f"`.{node.func.attr}()`")
    return sorted(set(found))


def evasions(code: FunctionCode) -> list[str]:
    """What can change or hide the questioned code (``Suspect``s that reach it), and within it,
    a ``getattr`` whose attribute is not written out."""
    found = list(code.elsewhere)
    for fn in code.nodes.values():
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "getattr" and not (
                        len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
                found.append(f"`getattr` with a computed name (in `{code.name}`)")
    return sorted(set(found))


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
    found = set()
    for fn in code.nodes.values():
        for node in ast.walk(fn):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name):
                    found.add(node.func.id)
                elif isinstance(node.func, ast.Attribute):
                    found.add(node.func.attr)
    return found


def known_suspects(book: Notebook) -> list[Suspect]:
    """``suspects(book)``, found once per notebook read: every exercise's questioned code is
    checked against the same list, several times a grading."""
    if not hasattr(book, "_suspects"):
        book._suspects = suspects(book)
    return book._suspects
