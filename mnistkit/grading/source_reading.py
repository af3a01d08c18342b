"""Reading a notebook's source the way the grader does, for the technique checks
(``source_checks``): the code cells with IPython's magics stripped, every top-level binding
(``Notebook``), the names a definition reads and calls, and the vocabulary of the rules (which
calls loop, which names and modules run dynamic code).

The first of three layers: ``source_findings`` finds suspects, loops and in-place operations
in code read here, and ``source_checks`` builds the questioned code and the checks on both.
STANDARD LIBRARY ONLY, like them: ``mnistkit build`` joins the three into the students'
``grader_reads.py``, leaving out the ``mnistkit`` imports between them.
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
