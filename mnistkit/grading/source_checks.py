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

The checks are the last of three layers: ``source_reading`` reads the notebook (cells,
bindings), ``source_findings`` finds suspects, loops and in-place operations; the kit imports
every name from here. STANDARD LIBRARY ONLY: ``mnistkit build`` joins the three into the
students' ``grader_reads.py`` (one file, without the ``mnistkit`` imports between them), so
that a self-check can say, before the student hands in, when the grader cannot read an answer
(``cannot_read``), by the very rules the grader applies.
"""
from __future__ import annotations

import ast

from mnistkit.grading.source_findings import (calls, evasions, in_place_operations, known_suspects,
                                              python_loops, Suspect, suspects)
from mnistkit.grading.source_reading import (_called_names, _carries_code, _global_reads,
                                             _known_module, _looping, _qualified, Binding,
                                             CannotRead, code_cells, FunctionCode, Notebook,
                                             parse_cell)

# ---- the questioned code -------------------------------------------------------------------

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
            called_here = _called_names(node)
            for read in _global_reads(binding.node):
                todo.append((read, read in called_here))
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
            called_here = _called_names(binding.node)
            for read in _global_reads(binding.node.value if hasattr(binding.node, "value")
                                      and binding.node.value is not None else binding.node):
                todo.append((read, read in called_here))
    code.statements.sort(key=lambda pair: pair[0])
    code.elsewhere = [s.text for s in known_suspects(book) if s.reaches(code)]
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
