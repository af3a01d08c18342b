"""nbgrader preprocessor: a release cell that makes errors say which exercise to finish first.

A student who leaves `stack_images` blank sees its self-check fail, and then every later cell
that uses what that exercise makes fails too, with ``NameError: name 'a_3' is not defined`` and
no word about the cause. The release therefore gets one more cell just before the notebook's
first code cell, a few locked lines that import ``error_hints.py`` (shipped beside the notebook,
written by this preprocessor) and call its ``install``, which sets an IPython handler for
NameError and NotImplementedError (``set_custom_exc``). The cause is said in full once, at its first error (in nbgrader's Validate
list, the first failing cell); the later errors it causes name it in a line or two::

    NotImplementedError:
    Hint: `stack_images` is not written yet: its answer cell (section "2. A first
    idea: pixel similarity") still raises NotImplementedError. Write your code
    there in place of `raise NotImplementedError()`, run it, then run this cell
    again.
    ...
    NameError: name 'a_3' is not defined
    Hint: `a_3` needs `stacked_threes`, which is made by the cells of exercise
    `stack_images`: finish that exercise first.

Why this design (and not another):
- *At build time, from the notebook's syntax* (``ast``, after IPython's own transformation of
  magics), each code cell is reduced to the names it defines at top level and the names it
  needs to run (loads before any local binding; function bodies count only when called). The
  table goes into ``error_hints.py`` as plain literals, by notebook name: the module imports
  nothing of the kit, and `mnistkit build` and `nbgrader generate_assignment` produce the same
  file (``resources["outputs"]``, written beside the notebook by nbconvert's writer).
- *Out of the students' way*: the first screen shows a short locked cell, not the ~150 lines
  of the handler. nbgrader's release, fetch, submit, collect and autograde copy every file of
  the assignment folder, ``.py`` files included, and a Jupyter kernel imports from the
  notebook's folder. Where the module cannot be imported (a notebook copied on its own; the
  grading sandbox, whose runner does not import from the submission's folder), the cell binds
  a ``_grader_can_read`` that only says so and errors stay plain: the cell never fails. Graded
  (``NBGRADER_EXECUTION=autograde``), ``install`` installs nothing.
  Names defined only inside a solution block (helpers of the reference answer) are left out:
  the table lists only names a released cell reads or defines, or its text quotes in backticks.
- *At run time, the kernel's namespace decides*: the handler follows the missing name back
  through the cells that make it to the first link that is missing for real (``a_3`` →
  ``stacked_threes`` → the self-check of ``stack_images``), so a student who has fixed the
  exercise but not yet re-run the cell after it is sent to that cell, not back to the
  exercise. A name from ``from fastai.vision.all import *`` that has not run yet points at
  that setup cell (it has not run while none of the other names it defines exist). Other
  unknown names (a typo) get no hint: a wrong hint is worse than none.
  A student who skips the hint cell gets plain errors, nothing worse.
- *A blank answer is read from the traceback*: a bare ``NotImplementedError`` (the stub's; a
  library's carries a message) raised in a function of the notebook's own code (its frame's
  globals are the kernel's namespace) whose name an answer cell defines names that exercise;
  raised in a notebook helper, the nearest answer function around it does. When the raising
  frame is not notebook code, its function's name alone decides; raised anywhere else (a
  library, a cell's own ``raise``), there is no hint. A plain cell that stopped this way makes
  its names' NameErrors count as that exercise's, while the same blank function is bound.
- *Repeats are short*: a cause (an exercise, or one cell) is explained in full the first time
  in a kernel, and from then on in one or two lines that still name it.
- *The error stays the same error*: the hint is a PEP 678 note on the exception (Python
  3.11+), and the handler then calls IPython's own ``showtraceback``: the same ``error``
  output (ename, evalue unchanged), the cell's status is still an error, ``%debug`` works.
  ``nbgrader validate`` still reports the failure. The hidden autograder is unaffected: the
  sandbox's runner (mnistkit/grading/runner.py) judges a cell by ``run_cell``'s result, which
  the handler does not change, and reports ``str(exc)``, which a note does not change; calls
  the grader makes into student functions do not go through IPython's handler at all.
- *A locked nbgrader cell* (grade id ``setup-error-hints``), like the setup cells: graders
  restore it from the release, and the grader's technique checks (grading/source_checks.py)
  count the code of unlocked cells as the student's: a first version's ``getattr``,
  ``import sys`` and ``import builtins`` there cost ``odd_doubled`` and ``mnist_distance``
  their technique points (28 -> 26.9 on the a1 reference). The cell's code also avoids
  everything those checks flag, so it costs nothing even where it loses its lock (an old
  gradebook that lacks it makes nbgrader's OverwriteCells drop its grade id).
- Rejected alternatives: rewriting the exception's message (``args``) would change what
  nbgrader and the grader record; a ``sys.excepthook`` is not used by IPython kernels; a
  post-run event cannot add to an output that is already sent.
"""
from __future__ import annotations

import copy
import re

from nbgrader.preprocessors import ClearMarkScheme, ClearSolutions, NbGraderPreprocessor

from mnistkit.cell_names import scan
from mnistkit.cells import locked_code

HINTS_MARK = "mnistkit-error-hints"       # the cell's id, and a key in its metadata
HINTS_GRADE_ID = "setup-error-hints"       # its nbgrader grade id (a locked cell)
HINTS_MODULE = "error_hints.py"            # shipped beside the notebook: the cell imports it
SECTION = re.compile(r"^##\s+(.+?)\s*$", re.M)     # "## 2. A first idea: ..." (level 2 only)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SNIPPET_CHARS = 40

RUNTIME = '''\
def _install_error_hints(sections, cells, stars):
    import textwrap
    made_by, answers, told, blank, last = {}, {}, set(), {}, [None]
    for at, cell in enumerate(cells):
        for name in cell[3].split():
            made_by.setdefault(name, at)
            if cell[0] == "answer":
                answers.setdefault(name, at)
    makers = {"answer": "your answer to exercise `%s`", "check": "the cells of exercise `%s`",
              "setup": "the setup cell `%s`", "cell": "the cell `%s`"}
    todos = {"answer": "write that answer and run its cell",
             "check": "finish that exercise and run its cells"}
    shorts = {"answer": "write that answer first", "check": "finish that exercise first"}
    after = (", then the cells below it down to this one (Run > Run All Above Selected Cell), "
             "then run this one again.")

    def where(at):
        section = cells[at][2]
        return ' (section "%s")' % sections[section] if section else " (near the top)"

    def explain(name, ns):
        at, via, seen = made_by.get(name), name, {name}
        while at is not None:       # back to the first cell that has all it needs
            dep = next((d for d in cells[at][4].split()
                        if d not in seen and d in made_by and d not in ns), None)
            if dep is None:
                break
            seen.add(dep)
            at, via = made_by[dep], dep
        for star_at, module in stars:   # a star import that has not run explains the rest
            names = cells[star_at][3].split()
            if names and not any(n in ns for n in names) and (at is None or star_at < at):
                head = "`%s` %s the setup cell with `from %s import *`" % (
                    name, "needs" if name in made_by else "comes from", module)
                return (("cell", star_at), head + where(star_at) + ", which has not run: run it"
                        + after, head + ", which has not run: run it first.")
        if at is None:
            return None
        kind, what = cells[at][:2]
        made = ("`%s` is made by " % name if via == name
                else "`%s` needs `%s`, which is made by " % (name, via))
        head = made + makers[kind] % what
        if kind in todos:
            return ("exercise", what), head + where(at) + ": " + todos[kind] + after, \\
                head + ": " + shorts[kind] + "."
        needs = [cells[made_by[d]] for d in cells[at][4].split() if d in made_by]
        uses = sorted({cell[1] for cell in needs if cell[0] == "answer"})
        todo = "run it"
        if uses:                    # a plain cell that calls answers: they may stop it
            todo += "; if it stops there, finish exercise %s first" % ", ".join(
                "`%s`" % u for u in uses)
        stuck = [u for u in uses if u in blank and ns.get(blank[u][0]) is blank[u][1]]
        if stuck:                   # it stopped on an answer still blank: that is the cause
            return ("exercise", stuck[0]), head + where(at) + ": " + todo + after, \\
                made + "a cell that cannot run until exercise `%s` is written." % stuck[0]
        return ("cell", at), head + where(at) + ": " + todo + after, head + ": run it first."

    def unwritten(value, tb, user, ns):
        if str(value):              # the blank answer raises it bare; a library's says why
            return None
        frames = []
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        if not frames:
            return None
        pick = frames[-1]           # where it was raised: an answer's function, or ...
        if pick.f_code.co_name not in answers:
            if pick.f_globals is not user:      # ... raised outside the notebook: no hint
                return None
            pick = next((f for f in reversed(frames) if f.f_globals is user
                         and f.f_code.co_name in answers), None)   # ... a helper of one
            if pick is None:
                return None
        function = pick.f_code.co_name
        at = answers[function]
        what = cells[at][1]
        if function in ns:          # still blank while the same function is bound there
            blank[what] = (function, ns[function])
        head = "`%s` is not written yet: its answer cell" % function
        if function != what:
            head = "`%s` (exercise `%s`) is not written yet: its answer cell" % (function, what)
        return (("exercise", what), head + where(at) + " still raises NotImplementedError. "
                "Write your code there in place of `raise NotImplementedError()`, run it, then "
                "run this cell again.", head + " still raises NotImplementedError.")

    def handler(shell, etype, value, tb, tb_offset=None):
        try:
            found = None
            if value is not last[0]:
                last[0] = value
                if type(value) is NameError and value.name and value.name not in shell.user_ns:
                    found = explain(value.name, shell.user_ns)
                elif type(value) is NotImplementedError:
                    found = unwritten(value, tb, shell.user_global_ns, shell.user_ns)
            if found:
                cause, full, short = found
                text = short if cause in told else full   # once in full, then one line or two
                told.add(cause)
                value.add_note(textwrap.fill("Hint: " + text, 78, break_on_hyphens=False,
                                             break_long_words=False))   # the error is unchanged
        except Exception:
            pass
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)

    from IPython import get_ipython
    get_ipython().set_custom_exc((NameError, NotImplementedError), handler)
'''


# --- the table ---------------------------------------------------------------------------------

def _role(cell) -> tuple[str, str]:
    meta = cell.metadata.get("nbgrader", {})
    grade_id = meta.get("grade_id") or ""
    if meta.get("solution"):
        return "answer", grade_id.removesuffix("-answer")
    if meta.get("grade"):
        return "check", grade_id
    if meta.get("locked"):
        return "setup", _snippet(cell.source)
    return "cell", _snippet(cell.source)


def _snippet(source: str) -> str:
    lines = [ln.strip() for ln in source.splitlines()]
    text = next((ln for ln in lines if ln and not ln.startswith("#")), "…")
    text = text.replace("`", "'")
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS - 1] + "…"


def hint_table(full_nb, public_nb) -> tuple[list[str], list[tuple], list[tuple]]:
    """(sections, cells, stars) for the hint cell. ``full_nb`` is the source notebook (answers
    in place: what each answer cell defines), ``public_nb`` the same notebook as released
    (what each cell needs, and which names students can see at all)."""
    sections, section_of = [""], []
    for full in full_nb.cells:
        if full.cell_type == "markdown":
            match = SECTION.search(full.source)
            if match:
                sections.append(match.group(1).replace('"', "'"))
        section_of.append(len(sections) - 1)
    # Names students can see: read or defined by a released code cell, or quoted in its text.
    # A name only a solution block defines (a helper of the reference answer) stays out.
    visible = set()
    for public in public_nb.cells:
        if public.cell_type == "code":
            seen = scan(public.source)
            visible |= seen.mentions | set(seen.defines)
        else:
            for span in CODE_SPAN.findall(public.source):
                visible |= set(IDENTIFIER.findall(span))
    first, kept = {}, []            # name -> index of the first cell that defines it
    for index, (full, public) in enumerate(zip(full_nb.cells, public_nb.cells)):
        if full.cell_type != "code":
            continue
        seen_public, seen_full = scan(public.source), scan(full.source)
        defines = [n for n in seen_full.defines + seen_public.defines   # `_x`: IPython's own
                   if n in visible and n not in first and not n.startswith("_")]
        for name in defines:
            first[name] = index
        needs = [n for n in seen_public.needs if n in first and first[n] < index]
        kind, what = _role(full)
        if defines or seen_public.stars:
            kept.append((kind, what, section_of[index], list(dict.fromkeys(defines)),
                         needs, seen_public.stars))
    used = sorted({0} | {row[2] for row in kept})      # sections a kept cell is in ("" first)
    cells, stars = [], []
    for at, (kind, what, section, defines, needs, star_modules) in enumerate(kept):
        cells.append((kind, what, used.index(section), " ".join(defines), " ".join(needs)))
        stars += [(at, module) for module in star_modules]
    return [sections[i] for i in used], cells, stars


# What the self-check of an exercise whose code the grader reads calls last: the grader's own
# rules, shipped with the assignment as grader_reads.py (mnistkit build), say whether it can read
# the answer. Graded, it does nothing (the grader reads the code itself, and the sandbox has no
# such file); a folder without the file gets a note, not an error.
GRADER_CAN_READ = '''\
def grader_can_read(name):
    """A technique self-check's last line: can the grader read the code of exercise `name`?"""
    import os
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        return
    try:
        import grader_reads
    except ImportError:
        print("(grader_reads.py, which came with this assignment, is not in this folder: this "
              "self-check cannot tell whether the grader can read your code)")
        return
    from IPython import get_ipython
    grader_reads.check(name, get_ipython().user_ns.get("In", []))
'''

INSTALL = '''\
def install(notebook):
    """Called by the notebook's error-hints cell: later errors get their hint. Returns the
    function the technique self-checks call (`_grader_can_read`). Graded (the hidden grader,
    nbgrader's autograde), it installs nothing."""
    import os
    if os.environ.get("NBGRADER_EXECUTION") != "autograde" and notebook in TABLES:
        _install_error_hints(**TABLES[notebook])
    return grader_can_read
'''

MODULE_DOC = '''\
"""Error hints for this assignment's notebooks: its first code cell calls `install`.

When a cell stops with "NameError: name '...' is not defined", or with NotImplementedError from
an exercise not written yet, the error then ends with a hint saying which exercise or cell to
finish first. The error stays the same error (the hint is a note on it). Nothing here is graded,
and nothing here needs changing: the notebook only imports it. (Generated with the assignment.)
"""
'''

# The cell students see: short, and safe where the module is absent (a notebook copied on its
# own; the grading sandbox, whose Python does not import from the notebook's folder): then it
# binds a `_grader_can_read` that only says so, and errors stay plain.
HINT_CELL = """\
# Error hints (run it; nothing to change): a later cell's error then ends with a hint saying
# which exercise or cell to finish first. The code is in error_hints.py, beside this notebook.
try:
    from error_hints import install; _grader_can_read = install({notebook!r})
except ImportError:     # no error_hints.py in this folder: plain errors, no hints
    _grader_can_read = lambda name: print("(no error_hints.py: no check of what the grader reads)")
"""


def hint_cell_source(notebook: str) -> str:
    """The locked cell of the release: a few lines that call the shipped module."""
    return HINT_CELL.format(notebook=notebook)


def module_source(tables: dict) -> str:
    """``error_hints.py``: the hint runtime, and each notebook's table (``hint_table``), by the
    notebook's name. Plain literals: nothing of the kit is imported."""
    rows = []
    for notebook in sorted(tables):
        sections, cells, stars = tables[notebook]
        titles = "".join(f"            {title!r},\n" for title in sections)
        lines = "".join(f"            {row!r},\n" for row in cells)
        rows.append(f"    {notebook!r}: dict(\n"
                    f"        sections=[\n{titles}        ],\n"
                    f"        cells=[  # kind, exercise or first line, section, defines, needs\n"
                    f"{lines}        ],\n"
                    f"        stars={list(stars)!r},\n    ),\n")
    return (MODULE_DOC + "\n\n" + RUNTIME + "\n\n" + GRADER_CAN_READ + "\n\n" + INSTALL
            + "\n\nTABLES = {\n" + "".join(rows) + "}\n")


def hint_table_of(module_text: str) -> dict:
    """The tables of a shipped ``error_hints.py`` (for checks), read from its syntax."""
    import ast
    for node in ast.parse(module_text).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "TABLES":
            return {ast.literal_eval(key): {kw.arg: ast.literal_eval(kw.value)
                                            for kw in value.keywords}
                    for key, value in zip(node.value.keys, node.value.values)}
    return {}


class AddErrorHints(NbGraderPreprocessor):
    """Insert the hint cell before the first code cell, and ship its module: ``error_hints.py``
    goes into ``resources["outputs"]``, which nbconvert's writer (nbgrader's) writes beside the
    notebook, so `nbgrader generate_assignment` and `mnistkit build` both release it. Runs before
    ClearSolutions (it reads what answer cells define), and clears solutions and mark schemes on
    a copy to see what students see."""

    # assignment -> notebook -> table: an assignment's notebooks are generated one after the
    # other in one process, and each writes the module with the tables of all of them so far.
    tables: dict = {}

    def preprocess(self, nb, resources):
        nb.cells = [c for c in nb.cells if not c.metadata.get(HINTS_MARK)]
        public, _ = ClearSolutions(parent=self).preprocess(copy.deepcopy(nb), dict(resources))
        public, _ = ClearMarkScheme(parent=self).preprocess(public, dict(resources))
        info = resources.get("nbgrader", {})
        notebook = info.get("notebook") or resources.get("unique_key") or "notebook"
        tables = AddErrorHints.tables.setdefault(info.get("assignment"), {})
        tables[notebook] = hint_table(nb, public)
        resources.setdefault("outputs", {})[HINTS_MODULE] = module_source(tables).encode()
        # A locked nbgrader cell, like the setup cells: graders restore it from the release,
        # and the technique checks do not count its code as the student's (source_checks).
        cell = locked_code(HINTS_GRADE_ID, hint_cell_source(notebook))
        cell.id = HINTS_MARK
        cell.metadata[HINTS_MARK] = True
        codes = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        nb.cells.insert(codes[0] if codes else len(nb.cells), cell)
        add_grader_can_read(nb, code_read_exercises(nb))
        return nb, resources


CAN_READ_CALL = ('_grader_can_read("{}")   # can the grader read your code? '
                 '(see "What the grader reads in your code")')


def code_read_exercises(nb) -> set[str]:
    """The exercises whose code the grader reads: graded cells marked
    ``metadata.mnistkit.reads_code`` (the declaration the grading plugin reads too)."""
    return {cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells
            if cell.metadata.get("nbgrader", {}).get("grade")
            and cell.metadata.get("mnistkit", {}).get("reads_code")}


def add_grader_can_read(nb, exercises: set[str]) -> None:
    """In the release only (the instructor's notebook has no hint cell to define it): the
    self-check of each exercise whose code the grader reads ends by asking whether it can
    (``_grader_can_read``, bound by the hint cell), before its "self-check passed"."""
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or grade_id not in exercises or "_grader_can_read" in cell.source:
            continue
        lines = cell.source.rstrip("\n").split("\n")
        at = next((i for i in range(len(lines) - 1, -1, -1) if "self-check passed" in lines[i]),
                  len(lines))
        lines.insert(at, CAN_READ_CALL.format(grade_id))
        cell.source = "\n".join(lines)
