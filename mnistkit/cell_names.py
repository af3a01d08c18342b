"""The names a notebook cell binds and the names it reads, from its syntax alone.

Two users: the release's error hints (``selfcheck_hints``: which cell makes a missing name) and
grading (``grading.left_out.cells_left_out``: a demonstration or a self-check is skipped only
when no cell still run reads what it binds). Plain ``ast`` and ``symtable`` after IPython's own
transformation of magics; no nbgrader, so the grader imports it cheaply.
"""
from __future__ import annotations

import ast
import symtable


class _Scan(ast.NodeVisitor):
    """Top-level names a cell binds (``defines``), names it reads before binding them
    (``needs``), every name it reads anywhere (``mentions``), and its star imports."""

    def __init__(self):
        self.defines, self.needs, self.mentions, self.stars = [], [], set(), []

    def _define(self, name):
        if name not in self.defines:
            self.defines.append(name)

    def _need(self, name):
        if name not in self.defines and name not in self.needs:
            self.needs.append(name)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self._need(node.id)
        else:
            self._define(node.id)

    def visit_Assign(self, node):            # the value runs before the names are bound
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Name):
            self._need(node.target.id)
        self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node):
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node):
        self.visit(node.iter)
        self.visit(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def _signature(self, node):
        for expr in node.decorator_list if hasattr(node, "decorator_list") else ():
            self.visit(expr)
        args = node.args
        for expr in args.defaults + [d for d in args.kw_defaults if d is not None]:
            self.visit(expr)

    def visit_FunctionDef(self, node):       # the body runs when called, not here
        self._signature(node)
        self._define(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._signature(node)

    def visit_ClassDef(self, node):
        for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            self.visit(expr)
        self._define(node.name)

    def _comprehension(self, node):          # its loop variables are its own
        inner = _Scan()
        for generator in node.generators:    # the loops first, then what they produce
            inner.visit(generator)
        for part in (getattr(node, f, None) for f in ("elt", "key", "value")):
            if part is not None:
                inner.visit(part)
        for name in inner.needs:
            self._need(name)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Import(self, node):
        for alias in node.names:
            self._define(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node):
        for alias in node.names:
            if alias.name == "*":
                self.stars.append(node.module or "")
            else:
                self._define(alias.asname or alias.name)

    def visit_ExceptHandler(self, node):
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._define(node.name)
        for stmt in node.body:
            self.visit(stmt)


def scan(source: str) -> _Scan:
    """The names of one code cell (IPython syntax: magics are transformed first). A cell that
    does not parse defines and needs nothing."""
    from IPython.core.inputtransformer2 import TransformerManager
    result = _Scan()
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return result
    for stmt in tree.body:
        result.visit(stmt)
    result.mentions = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                       and isinstance(n.ctx, ast.Load)}
    return result


COMPREHENSIONS = {"listcomp", "setcomp", "dictcomp", "genexpr"}   # run where they stand


def reads(source: str, scanned: _Scan | None = None) -> tuple[set[str], set[str]]:
    """The names the cell takes from the notebook's namespace: ``(now, later)``. ``now``: read
    as the cell runs, before it binds them (``scan``'s needs, and class bodies'). ``later``: read by the functions
    and lambdas it defines (``symtable``: names those scopes look up globally), whenever they are
    called, after any cell, as hidden tests call a student's functions at the end. ``scanned``:
    the cell's ``scan``, when the caller has it already."""
    from IPython.core.inputtransformer2 import TransformerManager
    now, later = set((scanned or scan(source)).needs), set()
    try:
        table = symtable.symtable(TransformerManager().transform_cell(source), "<cell>", "exec")
    except (SyntaxError, ValueError):
        return now, later
    scopes = list(table.get_children())
    while scopes:
        scope = scopes.pop()
        looked_up = {s.get_name() for s in scope.get_symbols()
                     if s.is_referenced() and s.is_global()}
        if scope.get_type() == "function" and scope.get_name() not in COMPREHENSIONS:
            later |= looked_up
        else:   # a class body or a comprehension runs where it stands
            now |= looked_up
        scopes += scope.get_children()
    return now, later
