"""Technique checks decided in the grader, from the submitted notebook's source.

Whether an answer loops over a batch cannot be measured inside the sandbox: the student's code
owns that process and can patch whatever counts. The grader has the notebook, so it reads the
answer's syntax tree instead, and makes sure that what it read is what it questions:

* ``function_code(notebook, name)`` is the *questioned code*: the last top-level binding of
  ``name`` (a ``def``, ``class``, ``lambda`` or an alias ``name = other``) and every top-level
  binding it reaches, through ``def``s, aliases and values built from the notebook's own
  functions (``impl = _looped``, ``model = MyModel()``). ``rebind_source(code)`` is that code
  as the grader read it; the hidden tests send it back into the student's namespace right
  before they question the exercise (``plugin.rebind_read_code``), so an ``exec`` or a
  namespace write that swapped in other code after the clean ``def`` no longer matters.
* What can still change or hide the questioned code is suspect (``SUSPECTS``): dynamic code
  and namespace writes under any name (``exec``, ``run = exec``, ``globals()``,
  ``get_ipython().user_ns``, ``sys.modules``, frames, ``gc``), a function that rebinds one of
  the questioned names (``global f``), and a patch of a library attribute the questioned code
  uses (``torch.Tensor.mean = ...``). Each costs only the exercises whose code it can reach.
  Everything else a notebook holds costs nothing: imports of any module, files, prints,
  warnings, ``!pip``, ``%matplotlib``, plots, helper and scratch cells.
* ``python_loops(code)``: ``for``/``while``, comprehensions, recursion, and calls that apply a
  function element by element, builtin or from a module (``map``, ``functools.reduce``,
  ``itertools``, ``np.vectorize``, ``torch.vmap``, ``.apply_``). A loop over a fixed handful
  (a literal tuple, ``range(3)``, a tensor's axes, a model's layers) is not one.

STANDARD LIBRARY ONLY: ``mnistkit build`` embeds this file in the students' error-hint cell, so
that a self-check can say, before the student hands in, when the grader cannot read an answer
(``cannot_read``), by the very rules the grader applies.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

# ---- the vocabulary ------------------------------------------------------------------------
# Builtins that iterate in Python over an argument (a tensor: its first axis).
ITERATING_BUILTINS = {"map", "filter", "sum", "min", "max", "sorted", "list", "tuple", "set",
                      "frozenset", "dict", "enumerate", "zip", "reversed", "any", "all"}
# Functions of modules that apply a function element by element; any of ``itertools``.
LOOPING_FUNCTIONS = {"functools.reduce", "numpy.vectorize", "numpy.frompyfunc",
                     "numpy.apply_along_axis", "numpy.apply_over_axes", "numpy.fromiter",
                     "numpy.fromfunction", "torch.vmap", "torch.func.vmap", "functorch.vmap",
                     "builtins.map", "builtins.filter", "fastcore.basics.map_ex"}
LOOPING_MODULES = {"itertools"}
LOOPING_METHODS = {"apply_", "map_", "map", "apply", "applymap", "starmap"}
MODULE_ALIASES = {"np": "numpy", "pd": "pandas", "plt": "matplotlib.pyplot", "F": "torch.nn.functional",
                  "nn": "torch.nn"}
# Calls and names that run code the grader cannot read, or write any namespace.
DYNAMIC_NAMES = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars",
                 "__builtins__", "get_ipython", "breakpoint", "delattr"}
DYNAMIC_MODULES = {"gc", "ctypes", "importlib", "inspect", "builtins", "marshal", "runpy", "code",
                   "codeop", "__main__", "dill", "cloudpickle", "pickle"}
# Names that build functions from code objects (``types.FunctionType``), wherever they come from.
DYNAMIC_TYPES = {"FunctionType", "CodeType", "LambdaType", "MethodType", "new_class"}
# Attributes that reach a namespace, a frame or a function's code.
DYNAMIC_ATTRIBUTES = {"__dict__", "__code__", "__globals__", "__closure__", "__builtins__",
                      "__subclasses__", "__bases__", "__base__", "__mro__", "__getattribute__",
                      "__setattr__", "__delattr__", "__func__", "__self__", "__defaults__",
                      "__kwdefaults__", "__import__", "__loader__", "__spec__", "__reduce__",
                      "__reduce_ex__", "__set_name__", "__init_subclass__", "f_globals",
                      "f_locals", "f_back", "f_builtins", "f_code", "tb_frame", "gi_frame",
                      "cr_frame", "user_ns", "user_global_ns", "run_cell", "run_code", "events",
                      "_getframe", "settrace", "setprofile", "addaudithook", "meta_path",
                      "path_hooks", "displayhook", "excepthook", "modules"}
# Magics that only configure, print or time (their code, if any, is read as code).
CODE_MAGICS = {"time", "timeit", "prun", "capture"}
DYNAMIC_MAGICS = {"run", "load", "macro", "rerun", "recall", "paste", "cpaste", "edit",
                  "writefile", "file", "store"}
SELF = "self"


class CannotRead(Exception):
    """The grader cannot read the questioned code; ``str(exc)`` says why, for the student."""


# ---- cells ---------------------------------------------------------------------------------

def code_cells(notebook) -> list[tuple[str | None, str]]:
    from pathlib import Path
    from mnistkit.grading.student import code_cells as cells
    return cells(Path(notebook))


def _kit_cell(grade_id: str | None) -> bool:
    """The kit's own cells (setup, demonstrations, self-checks, hints): restored from the release
    before grading, never the student's code. Answer cells end in ``-answer``."""
    return grade_id is not None and not grade_id.endswith("-answer")


class _Magics(ast.NodeTransformer):
    """IPython turns ``%time f(x)`` into ``get_ipython().run_line_magic('time', 'f(x)')``: read
    the code such magics run as code, others that configure or print as nothing, and keep the
    magics that run other code (``%run``) as the dynamic code they are."""

    def __init__(self):
        self.extra: list[ast.stmt] = []

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"
                and not func.value.args):
            return node
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
                for a in node.args]
        if func.attr in ("system", "getoutput"):
            return ast.Constant(None)
        if func.attr not in ("run_line_magic", "run_cell_magic") or not args or None in args:
            return node
        magic = args[0].split()[0] if args[0].split() else ""
        if magic in DYNAMIC_MAGICS or (magic == "load_ext" and not _known_module(args[1])):
            return ast.Call(ast.Name("exec", ast.Load()), [], [])      # read as `exec`
        if magic in CODE_MAGICS:
            code = args[-1] if func.attr == "run_cell_magic" else _strip_options(args[1])
            parsed = _parse_python(code)
            if parsed is None:
                return ast.Call(ast.Name("exec", ast.Load()), [], [])
            self.extra += parsed.body
        return ast.Constant(None)


def _strip_options(line: str) -> str:
    words = line.split()
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] in ("-n", "-r", "-p", "-l", "-s", "-T", "-D") else words[1:]
    return " ".join(words)


def _parse_python(source: str):
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def parse_cell(source: str):
    """A notebook cell as a Python syntax tree, its magics read as described in ``_Magics``, or
    None when it is not valid Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        source = TransformerManager().transform_cell(source)
    except Exception:
        pass
    tree = _parse_python(source)
    if tree is None:
        return None
    body = []
    for statement in tree.body:
        magics = _Magics()
        body.append(magics.visit(statement))
        body += magics.extra
    tree.body = body
    return ast.fix_missing_locations(tree)


def _known_module(name: str) -> bool:
    """Python's own modules and the libraries a learner imports: their code is not the
    student's. A module of the student's own (written to disk by the notebook) is unknown."""
    import sys
    top = (name or "").strip().split(".")[0]
    return top in getattr(sys, "stdlib_module_names", ()) or top in {
        "torch", "torchvision", "numpy", "fastai", "fastcore", "fastbook", "fastprogress",
        "fastdownload", "PIL", "matplotlib", "pandas", "sklearn", "scipy", "seaborn", "IPython",
        "ipywidgets", "tqdm", "google", "kaggle", "cv2", "skimage", "plotly", "autoreload",
        "tensorboard", "timm", "nbgrader", "mnistkit_hints"}


# ---- bindings ------------------------------------------------------------------------------

@dataclass
class Binding:
    """The statement that last binds a top-level name: ``kind`` is def, class, lambda, alias
    (``a = b`` or ``a = b.c``), import, value (anything computed) or block (bound inside an
    ``if``/``for``/``try``/``with``, which the grader does not read as code)."""
    name: str
    kind: str
    node: ast.AST
    target: str = ""        # alias: the dotted name it copies; import: the dotted name bound
    cell: int = -1


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts[::-1])
    return None


def _statement_bindings(statement, cell: int) -> list[Binding]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [Binding(statement.name, "def", statement, cell=cell)]
    if isinstance(statement, ast.ClassDef):
        return [Binding(statement.name, "class", statement, cell=cell)]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        found = []
        for alias in statement.names:
            if isinstance(statement, ast.Import):
                bound = alias.asname or alias.name.split(".")[0]
                target = alias.name if alias.asname else bound
            else:
                bound, target = alias.asname or alias.name, f"{statement.module or ''}.{alias.name}"
            found.append(Binding(bound, "import", statement, target=target, cell=cell))
        return found
    if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        value = statement.value
        kind = ("lambda" if isinstance(value, ast.Lambda) else
                "alias" if _dotted(value) is not None else "value")
        found = []
        for target in targets:
            if isinstance(target, ast.Name):
                found.append(Binding(target.id, kind, statement, target=_dotted(value) or "", cell=cell))
            else:
                found += [Binding(n.id, "value", statement, cell=cell) for n in ast.walk(target)
                          if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        return found
    found = []
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            found.append(Binding(node.id, "value" if isinstance(statement, (ast.AugAssign, ast.Expr))
                                 else "block", statement, cell=cell))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node is not statement:
            found.append(Binding(node.name, "block", statement, cell=cell))
        elif isinstance(node, ast.alias):
            found.append(Binding((node.asname or node.name).split(".")[0], "block", statement, cell=cell))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)) \
                and node is not statement:
            break
    return found


@dataclass
class Notebook:
    """The notebook as the grader reads it: each cell's tree, whether it is the student's, and
    the last binding of every top-level name."""
    cells: list                   # (grade_id, source, tree or None)
    bindings: dict = field(default_factory=dict)

    @classmethod
    def read(cls, cells: list[tuple[str | None, str]]) -> "Notebook":
        book = cls([(gid, src, parse_cell(src)) for gid, src in cells])
        for index, (_, _, tree) in enumerate(book.cells):
            for statement in getattr(tree, "body", []):
                for binding in _statement_bindings(statement, index):
                    book.bindings[binding.name] = binding
        return book

    def suspects(self) -> list:
        """``suspects(self)``, found once: every exercise's questioned code is checked against
        the same list, several times a grading."""
        if not hasattr(self, "_suspects"):
            self._suspects = suspects(self)
        return self._suspects

    def student_trees(self):
        return [(gid, tree) for gid, _, tree in self.cells if tree is not None and not _kit_cell(gid)]


# ---- the questioned code -------------------------------------------------------------------

@dataclass
class FunctionCode:
    name: str
    nodes: dict                   # name -> def/lambda/class node: code that runs when called
    elsewhere: list = field(default_factory=list)   # suspects outside that reach this code
    values: dict = field(default_factory=dict)      # name -> value statements it reaches
    statements: list = field(default_factory=list)  # (cell, statement) to rebind, in order
    loops: list = field(default_factory=list)       # looping functions reached through names


def _qualified(node, book: Notebook) -> str | None:
    """``ft.reduce`` -> ``functools.reduce`` when ``ft`` is ``import functools as ft``."""
    dotted = _dotted(node)
    if dotted is None:
        return None
    root, _, rest = dotted.partition(".")
    binding = book.bindings.get(root)
    if binding is not None and binding.kind in ("import", "alias"):
        base = binding.target.lstrip(".")
    elif binding is None:
        base = MODULE_ALIASES.get(root, root)
    else:
        return None
    return f"{base}.{rest}" if rest else base


def _looping(qualified: str | None) -> bool:
    if not qualified:
        return False
    name = qualified.replace("np.", "numpy.", 1) if qualified.startswith("np.") else qualified
    return name in LOOPING_FUNCTIONS or name.split(".")[0] in LOOPING_MODULES


def _global_reads(node) -> set[str]:
    """The module-level names a definition or statement reads, scoped as Python scopes them
    (``symtable``): a parameter or local that shadows a top-level name is not that name."""
    import symtable
    try:
        table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    found, todo = set(), [table]
    while todo:
        scope = todo.pop()
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and (scope is table or symbol.is_global()):
                found.add(symbol.get_name())
        todo += scope.get_children()
    return found


def _called_names(node) -> set[str]:
    called = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            called |= {d.id for d in n.decorator_list if isinstance(d, ast.Name)}
    return called


def _carries_code(statement, book: Notebook) -> bool:
    """A value built from the notebook's own functions or lambdas carries their code."""
    return any(isinstance(n, ast.Lambda) for n in ast.walk(statement)) or any(
        book.bindings.get(n.id) is not None and book.bindings[n.id].kind in ("def", "class", "lambda")
        for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))


_READ: dict = {}


def read_notebook(notebook) -> Notebook:
    """The notebook read once per grading (hidden tests ask about it many times)."""
    import os
    key = (str(notebook), os.stat(notebook).st_mtime_ns)
    if key not in _READ:
        _READ.clear()
        _READ[key] = Notebook.read(code_cells(notebook))
    return _READ[key]


def function_code(notebook, name: str) -> FunctionCode:
    """The questioned code of ``name`` (module docstring); raises ``Mismatch`` (``CannotRead``
    outside the grader) with the reason when the grader cannot read it."""
    book = read_notebook(notebook)
    try:
        return _function_code(book, name)
    except CannotRead as exc:
        raise _mismatch(str(exc)) from None


def _function_code(book: Notebook, name: str) -> FunctionCode:
    first = book.bindings.get(name)
    if first is None:
        raise CannotRead(f"could not find a `def {name}(...)` in your notebook")
    if first.kind not in ("def", "class", "lambda", "alias"):
        how = ("inside an `if`, `for`, `try` or `with` block" if first.kind == "block"
               else "by an import" if first.kind == "import" else "by a computed value")
        raise CannotRead(f"`{name}` is last bound {how}, so the grader cannot read its code: "
                         "define it with `def` at the top level of a cell")
    code = FunctionCode(name, {})
    todo, seen = [(name, True)], set()
    while todo:
        current, called = todo.pop()
        if current in seen:
            continue
        binding = book.bindings.get(current)
        if binding is None:
            continue                                   # a builtin or a library name
        seen.add(current)
        if binding.kind in ("def", "class", "lambda"):
            node = binding.node.value if binding.kind == "lambda" else binding.node
            code.nodes[current] = node
            code.statements.append((binding.cell, binding.node))
            calls = _called_names(node)
            for read in _global_reads(binding.node):
                todo.append((read, read in calls))
            decorators = [d for n in ast.walk(binding.node) if isinstance(n, (
                ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for d in n.decorator_list]
            for n in [n.func for n in ast.walk(node) if isinstance(n, ast.Call)] + decorators:
                if _looping(_qualified(n, book)):
                    code.loops.append(f"`{_qualified(n, book)}`")
        elif binding.kind == "alias":
            if _looping(_qualified(binding.node.value, book)):
                code.loops.append(f"`{_qualified(binding.node.value, book)}`")
            code.statements.append((binding.cell, binding.node))
            root = binding.target.split(".")[0]
            todo.append((root, called))
            if current == name and book.bindings.get(root) is not None \
                    and book.bindings[root].kind in ("def", "lambda", "class"):
                target = book.bindings[root]
                code.nodes[name] = target.node.value if target.kind == "lambda" else target.node
        elif binding.kind == "import":
            if called and not _known_module(binding.target.lstrip(".")):
                raise CannotRead(f"`{current}` comes from `{binding.target}`, a module of your own "
                                 "that the grader cannot read: define it in the notebook")
        elif binding.kind == "block":
            if called:
                raise CannotRead(f"`{current}` is defined inside an `if`, `for`, `try` or `with` "
                                 "block, which the grader does not read: define it at the top "
                                 "level of a cell")
        elif binding.kind == "value" and (called or _carries_code(binding.node, book)):
            code.values[current] = binding.node
            for n in ast.walk(binding.node):
                if isinstance(n, ast.Call) and _looping(_qualified(n.func, book)):
                    code.loops.append(f"`{_qualified(n.func, book)}`")
            calls = _called_names(binding.node)
            for read in _global_reads(binding.node.value if hasattr(binding.node, "value")
                                      and binding.node.value is not None else binding.node):
                todo.append((read, read in calls))
    code.statements.sort(key=lambda pair: pair[0])
    code.elsewhere = [s.text for s in book.suspects() if s.reaches(code)]
    return code


def rebind_source(code: FunctionCode) -> str:
    """The questioned definitions as the grader read them, in notebook order: sent back into the
    student's namespace before the exercise is questioned (values are not run again)."""
    seen, parts = set(), []
    for _, statement in code.statements:
        if id(statement) not in seen:
            seen.add(id(statement))
            parts.append(ast.unparse(statement))
    return "\n\n".join(parts) + "\n"


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


# ---- what students read, and the checks ----------------------------------------------------

RULES_MARKDOWN = """### What the grader reads in your code

Some exercises are graded on *how* you compute, not only on what: broadcasting instead of a
loop, your own softmax instead of PyTorch's. For those, the grader reads the code it is about
to test: the function the exercise names, and everything of the notebook that function uses
(your helpers, in any cell). Right before it tests the exercise, it defines that code again
from what it read, so the function it tests is the code it read.

- **A loop** is a `for` or `while`, a comprehension, recursion, or a call that applies a
  function element by element (`map`, `filter`, `sum(...)` over a tensor, `functools.reduce`,
  `itertools`, `np.vectorize`, `torch.vmap`, `.apply_()`, `.map()`). Going over a fixed
  handful written in your code (`(-1, -2)`, `range(3)`, a tensor's `.shape`, a model's layers)
  is not a loop.
- **Code the grader cannot read** costs the technique point of each exercise it can reach:
  running code from text (`exec`, `eval`, `compile`, `%run`, under any name), writing a
  namespace (`globals()`, `vars()`, `get_ipython().user_ns`, `sys.modules`, a frame's
  `f_globals`, `gc`, `__dict__` of anything but `self`), a function that rebinds one of the
  exercise's names with `global`, and replacing a library function the exercise uses
  (`torch.Tensor.mean = ...`).
- Everything else is yours to write and costs nothing: imports of any module, reading files,
  prints, `!pip`, `%matplotlib`, warnings, plots, and cells of your own.

The self-check of such an exercise tells you when the grader cannot read your answer, and why.
"""


def _mismatch(message: str) -> Exception:
    try:
        from mnistkit.grading.expect import Mismatch
    except ImportError:             # in a student's kernel (the self-checks): a plain assertion
        return AssertionError(message)
    return Mismatch(message)


def cannot_read(cells: list[tuple[str | None, str]], name: str) -> list[str]:
    """Why the grader cannot read ``name``'s code, or nothing: for the self-checks."""
    try:
        code = _function_code(Notebook.read(cells), name)
    except CannotRead as exc:
        return [str(exc)]
    return evasions(code)


# Hashes of the course's own code cells (``mnistkit build`` sets them in the students' copy of
# this file): a self-check reads the kernel's history, where those cells are not the student's.
KIT_CELLS: set = set()


def cell_hash(source: str) -> str:
    import hashlib
    return hashlib.sha256(source.strip().encode("utf-8", "replace")).hexdigest()[:16]


def check(name: str, history) -> None:
    """A self-check's last line: fail, saying why, when the grader could not read ``name``'s
    code from the cells run so far (``history``: the kernel's ``In``, oldest first)."""
    cells = [("setup" if cell_hash(src) in KIT_CELLS else None, src)
             for src in list(history)[1:] if isinstance(src, str)]
    problems = cannot_read(cells, name)
    if problems:
        raise AssertionError(f"the grader cannot read {name}'s code: " + "; ".join(problems)
                             + " (see \"What the grader reads in your code\")")
    print(f"{name}: the grader can read your code")


def expect_no_python_loop(notebook, name: str, advice: str) -> None:
    loops = python_loops(function_code(notebook, name))
    if loops:
        raise _mismatch(f"{name} uses {', '.join(loops)}: {advice}")


def expect_no_evasion(notebook, name: str) -> None:
    found = evasions(function_code(notebook, name))
    if found:
        raise _mismatch(f"{name}: the grader cannot rely on what it read, because of "
                        f"{', '.join(found)} (see \"What the grader reads in your code\")")
