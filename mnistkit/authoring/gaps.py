"""``mnistkit check``: every gap in every exercise's declaration, one line each, in seconds.

It runs no notebook and no sandbox: it reads the source notebooks (``parts``), the hidden test
modules' syntax (``hidden_checks``) and the generated references' text. The rules, in the order
an author meets them (docs/authoring.md follows the same order):

1. the answer cell ``X-answer`` comes before its graded cell ``X``, with no other graded cell
   between them;
2. the graded cell has points, and lists the questionnaire items it answers (1-37; ``[]`` for an
   exercise on the chapter's text or its further research);
3. the answer cell holds a reference between the solution markers, and
   ``solutions/<assignment>.py`` is the one made from it (else: run ``mnistkit build``);
4. the hidden test module has checks for the exercise (and none for unknown exercises);
5. the exercise has at least one mutant, which is Python and differs from the reference;
6. the self-check's inputs are not reused by the hidden checks (a hard-coded answer would pass);
7. the prompt states what the checks enforce: the answer's form ("tensor", "number", or the
   object asked for) and each technique a check's name holds to ("loop", "comprehension",
   "in place").

Each problem is a ``Gap``: where it is (file and cell or line), the exercise, and what to do.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from mnistkit import catalog
from mnistkit.authoring import hidden_checks, parts, references
from mnistkit.paths import ROOT

QUESTIONNAIRE_ITEMS = range(1, 38)
# Words a check's name may hold a technique to, and the word its prompt must then contain.
TECHNIQUE_WORDS = {"loop": "loop", "comprehension": "comprehension", "in_place": "in place"}
FORM_WORDS = {"tensor": "tensor", "number": "number"}


@dataclass(frozen=True)
class Gap:
    where: str
    exercise: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.exercise}: {self.problem}"


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _cell(declared: parts.AssignmentParts, cell: parts.Cell, root: Path) -> str:
    return f"{_rel(declared.notebook, root)}, cell {cell.number} ({cell.grade_id or cell.id})"


def _placement(declared, ex, root) -> list[Gap]:
    where = _cell(declared, ex.graded, root)
    if ex.answer is None:
        return [Gap(where, ex.id, f"no answer cell {ex.id}-answer: add one before the graded cell")]
    if ex.answer.number > ex.graded.number:
        return [Gap(_cell(declared, ex.answer, root), ex.id,
                    f"the answer cell comes after its graded cell (cell {ex.graded.number}): "
                    "move it above")]
    between = [c for c in declared.cells[ex.answer.number:ex.graded.number - 1]
               if c.metadata.get("nbgrader", {}).get("grade")]
    return [Gap(_cell(declared, c, root), ex.id, "a graded cell sits between the answer cell and "
                "its graded cell") for c in between]


def _marks(declared, ex, root) -> list[Gap]:
    where, gaps = _cell(declared, ex.graded, root), []
    if not ex.points > 0:
        gaps.append(Gap(where, ex.id, "the graded cell has no points"))
    if "questionnaire" not in ex.graded.metadata.get("mnistkit", {}):
        gaps.append(Gap(where, ex.id, "no metadata.mnistkit.questionnaire: list the items it "
                        "answers ([] for the chapter's text or further research)"))
    outside = [n for n in ex.questionnaire if n not in QUESTIONNAIRE_ITEMS]
    if outside:
        gaps.append(Gap(where, ex.id, f"questionnaire items {outside} are not the chapter's 1-37"))
    return gaps


def _reference(declared, ex, root) -> list[Gap]:
    where = _cell(declared, ex.answer, root)
    source = ex.answer.source
    if "### BEGIN SOLUTION" not in source or "### END SOLUTION" not in source:
        return [Gap(where, ex.id, "the answer cell has no ### BEGIN SOLUTION / ### END SOLUTION")]
    inside = source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    if not inside.strip():
        return [Gap(where, ex.id, "nothing between the solution markers: write the reference")]
    try:
        ast.parse(references._python(ex.reference))
    except SyntaxError as err:
        return [Gap(where, ex.id, f"the reference is not Python: {err.msg} (line {err.lineno})")]
    if not references.definitions(ex.reference):
        return [Gap(where, ex.id, "the reference defines nothing the grader can import "
                    "(a def, a class, or a name bound to a value)")]
    return []


def _checks(declared, ex, found, root) -> list[Gap]:
    if ex.id not in found:
        module = _rel(hidden_checks.module_path(declared.assignment, root / "autograder"), root)
        return [Gap(module, ex.id, f'no hidden checks: add tests marked exercise("{ex.id}")')]
    return []


def _mutants(declared, ex, root) -> list[Gap]:
    if not ex.mutants:
        return [Gap(_cell(declared, ex.graded, root), ex.id, f"no mutant: add a raw cell "
                    f"'# mutant of {ex.id}: <what is wrong>' with a wrong answer after this cell")]
    gaps = []
    for mutant in ex.mutants:
        where = _cell(declared, mutant.cell, root)
        try:
            ast.parse(references._python(mutant.source))
        except SyntaxError as err:
            gaps.append(Gap(where, ex.id, f"the mutant is not Python: {err.msg}"))
            continue
        if references.definitions(mutant.source) == references.definitions(ex.reference):
            gaps.append(Gap(where, ex.id, "the mutant is the reference itself"))
    return gaps


def _literals(args) -> set[str]:
    """Literal arguments worth hiding from a hard-coder: containers of two or more constants,
    and numbers other than the small ones every test uses."""
    found = set()
    for arg in args:
        if isinstance(arg, (ast.List, ast.Tuple, ast.Set)) and len(arg.elts) >= 2 \
                and all(isinstance(e, (ast.Constant, ast.UnaryOp)) for e in arg.elts):
            found.add(ast.unparse(arg))
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, (int, float)) \
                and not isinstance(arg.value, bool) and abs(arg.value) > 10:
            found.add(ast.unparse(arg))
    return found


def _self_check_inputs(declared, ex, found, root) -> list[Gap]:
    """The literals the self-check passes to ``X(...)``, against those the hidden checks pass
    to ``student.call("X", ...)`` or the reference ``ref.X(...)``."""
    if ex.id not in found:
        return []
    try:
        tree = ast.parse(references._python(ex.graded.source))
    except SyntaxError:
        return [Gap(_cell(declared, ex.graded, root), ex.id, "the self-check is not Python")]
    mine = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
        if name == ex.id:
            mine |= _literals(list(call.args) + [k.value for k in call.keywords])
    used = set()
    for node in found[ex.id].nodes:
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            args = list(call.args) + [k.value for k in call.keywords]
            if getattr(call.func, "attr", "") == "call" and args and \
                    isinstance(args[0], ast.Constant) and args[0].value == ex.id:
                used |= _literals(args[1:])
            elif ast.unparse(call.func) == f"ref.{ex.id}":
                used |= _literals(args)
    return [Gap(_cell(declared, ex.graded, root), ex.id, f"the hidden checks reuse the "
                f"self-check's input {literal}: an answer hard-coded to it would pass them")
            for literal in sorted(mine & used)]


def _prompt(declared, ex, found, root) -> list[Gap]:
    if ex.id not in found or ex.answer is None:
        return []
    text = (ex.prompt + "\n" + ex.answer.source).lower()   # what the student reads for it
    where, gaps = _cell(declared, ex.answer, root), []
    form = ex.graded.metadata.get("mnistkit", {}).get("answer_is")
    if form:
        if form.lower() not in text:
            gaps.append(Gap(where, ex.id, f'the prompt never says the answer is a "{form}"'))
    else:
        gaps += [Gap(where, ex.id, f'a check compares the answer as a {word}, and the prompt '
                     f'never says "{word}"')
                 for f, word in FORM_WORDS.items() if f in found[ex.id].forms and word not in text]
    for key, word in TECHNIQUE_WORDS.items():
        holding = [n for n in found[ex.id].names if key in n]
        if holding and word not in text:
            gaps.append(Gap(where, ex.id, f'{holding[0]} holds the answer to a technique, and '
                            f'the prompt never says "{word}"'))
    return gaps


def assignment_gaps(assignment: str, root: Path = ROOT, references_made: bool = True) -> list[Gap]:
    """``references_made``: whether ``solutions/`` should already be made from the notebook
    (``mnistkit build`` checks before it writes them)."""
    declared = parts.read(assignment, root / "source")
    try:
        found = hidden_checks.read(assignment, root / "autograder")
    except (OSError, SyntaxError) as err:
        module = _rel(hidden_checks.module_path(assignment, root / "autograder"), root)
        return [Gap(module, assignment, f"the hidden test module cannot be read: {err}")]
    gaps = []
    for ex in declared.exercises:
        if ex.kind != "auto":
            gaps += _marks(declared, ex, root)
            continue
        gaps += _placement(declared, ex, root) + _marks(declared, ex, root)
        if ex.answer is None:
            continue
        gaps += _reference(declared, ex, root) + _checks(declared, ex, found, root)
        gaps += _mutants(declared, ex, root) + _self_check_inputs(declared, ex, found, root)
        gaps += _prompt(declared, ex, found, root)
    known = {ex.id for ex in declared.exercises}
    module = hidden_checks.module_path(assignment, root / "autograder")
    for ex_id, checks in found.items():
        if ex_id not in known:
            name = checks.names[0]
            gaps.append(Gap(f"{_rel(module, root)}, line {checks.lines[name]}", ex_id,
                            f"{name} checks an exercise the notebook does not declare"))
    for mutant in declared.stray_mutants:
        gaps.append(Gap(_cell(declared, mutant.cell, root), mutant.exercise,
                        "a mutant of an exercise the notebook does not declare"))
    if references_made and references.stale(assignment, root / "source", root / "solutions"):
        gaps.append(Gap(_rel(references.path_for(assignment, root / "solutions"), root),
                        assignment, "not the references of the source notebook: run `mnistkit build`"))
    return gaps


def course_gaps(root: Path = ROOT, references_made: bool = True) -> list[Gap]:
    """Every gap of every assignment, then the course-wide ones (unique ids, questionnaire)."""
    gaps = []
    names = catalog.assignments(root / "source")
    for assignment in names:
        gaps += assignment_gaps(assignment, root, references_made)
    try:
        exercises = catalog.load(root / "source")
    except ValueError as err:
        return gaps + [Gap("source/", "-", str(err))]
    covered = {n for ex in exercises for n in ex.questionnaire}
    missing = sorted(set(QUESTIONNAIRE_ITEMS) - covered)
    if missing:
        gaps.append(Gap("source/", "-", f"questionnaire items no exercise answers: {missing}"))
    return gaps
