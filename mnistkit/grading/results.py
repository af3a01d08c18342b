"""A graded submission: Gradescope's results.json and a one-screen summary for the terminal.

Gradescope format (https://gradescope-autograders.readthedocs.io/en/latest/specs/): one test per
hidden check, named ``"<exercise id>: <what the check checks>"`` (``check_title``: words from
the check's function name, never its code), worth its share of the exercise's points, with
the check's message as its output; an exercise that was not graded is one test with the
reason. Hand-graded exercises are not tests (they would count as lost points); the top-level
``output`` lists them. The grader's own output (``stdout``) stays hidden from students: it can
show hidden test code.

Student text on its way out. Feedback lines carry exception messages from student code (and a
student can forge the runner, so anything it reports); notes carry file names from the
submission folder. Every such string is cleaned where it is shown -- the terminal summary,
results.json, nbgrader's cells -- by ``clean_line``: terminal escape sequences and control
characters (``\r``, backspace, bidi overrides...) removed, whitespace collapsed to one line,
capped at ``MESSAGE_CHARS``; ``cap_lines`` caps each exercise's feedback and a report's notes.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

MESSAGE_CHARS = 500          # one feedback line or note
FEEDBACK_LINES = 8           # lines of feedback per exercise
FEEDBACK_CHARS = 2000        # characters of feedback per exercise
NOTE_LINES = 20              # notes per report
# ESC sequences: CSI (ESC [ ... final), OSC/DCS/APC/PM/SOS strings (ESC ] ... BEL or ST),
# and two-character ones (ESC c, ESC 7...); also their 8-bit forms (CSI = U+009B, OSC = U+009D).
_ESCAPES = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
                      r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                      r"|\x1b[ -/]*[0-~]?")
# Invisible characters that reorder or hide text: bidi embeddings/overrides/isolates, zero-width.
_INVISIBLE = set("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                 "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")


def _visible(ch: str) -> str:
    if ch in _INVISIBLE:
        return ""
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp", "Cs", "Co", "Cn") and ch != " ":
        return " "   # \r, \n, \t, backspace, C1 controls, separators, unassigned
    return ch


def clean_line(text, limit: int = MESSAGE_CHARS) -> str:
    """``text`` made safe to show on one line anywhere: escape sequences and control characters
    removed, whitespace collapsed, at most ``limit`` characters (cut with an ellipsis)."""
    text = _ESCAPES.sub("", str(text)[:limit * 8])
    text = " ".join("".join(_visible(ch) for ch in text).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def clean_block(text, limit: int = 4000) -> str:
    """A multi-line text (a log for instructors) cleaned line by line; the last ``limit`` chars."""
    lines = [_ESCAPES.sub("", line) for line in str(text)[-limit * 2:].splitlines()]
    cleaned = "\n".join(" ".join("".join(_visible(ch) for ch in line).split()) for line in lines)
    return cleaned[-limit:]


def cap_lines(lines, max_lines: int, max_chars: int | None = None) -> list[str]:
    """Cleaned ``lines``, at most ``max_lines`` of them and ``max_chars`` in all; a last line
    says how many were left out."""
    out, total = [], 0
    lines = [clean_line(line) for line in lines]
    for index, line in enumerate(lines):
        if len(out) == max_lines or (max_chars is not None and total + len(line) > max_chars):
            out.append(f"... and {len(lines) - index} more")
            break
        out.append(line)
        total += len(line)
    return out


def _snake(name: str) -> str:
    """``BasicOptim`` -> ``basic_optim``, ``MomentumSGD`` -> ``momentum_sgd``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def check_title(exercise: str, check: str) -> str:
    """What a hidden check checks, for students: the words of its test function's name after
    ``test_`` and the exercise's own words (``test_sgd_step_changes_nothing_in_place`` ->
    "changes nothing in place"; ``test_momentum_defaults_to_0_9`` -> "defaults to 0.9"), with
    a parameter that is not the exercise id in brackets ("trained model accuracy (90%)").

    The hidden tests' docstrings are notes for instructors (how a verdict is reached, what the
    sandbox could fake), not words for students; their names say what is checked."""
    name, _, param = str(check).partition("[")
    param = param.rstrip("]")
    words = [w for w in name.removeprefix("test_").split("_") if w]
    own = set(_snake(exercise).split("_"))
    while words and words[0].lower() in own:
        words.pop(0)
    title = re.sub(r"(?<=\d) (?=\d)", ".", " ".join(words)) or "the answer"
    if param and param != exercise:
        title += f" ({param})"
    return clean_line(title, 120)


def check_lines(exercise: str, checks: list[dict]) -> list[str]:
    """One feedback line per distinct reason the exercise's checks failed, naming the checks
    (``check_title``) it applies to: "changes nothing in place: <reason>"; "every check:
    <reason>" when all of them failed for it (an unanswered exercise)."""
    failed: dict[str, list[str]] = {}
    for check in checks:
        if check["status"] != "passed":
            message = clean_line(check.get("message") or "a check failed")
            failed.setdefault(message, []).append(check_title(exercise, check.get("check", "")))
    lines = []
    for message, titles in failed.items():
        if len(titles) == len(checks) and len(checks) > 1:
            label = "every check"
        elif len(titles) <= 3:
            label = "; ".join(titles)
        else:
            label = f"{'; '.join(titles[:2])} and {len(titles) - 2} more checks"
        lines.append(f"{label}: {message}")
    return lines


def _shares(points: float, weights: list[float]) -> list[float]:
    """Each check's share of ``points`` (by weight), rounded so that the shares add up to
    ``points`` exactly (each is a difference of rounded running totals)."""
    total, running, shares, before = sum(weights), 0.0, [], 0.0
    for weight in weights:
        running += weight
        upto = round(points * running / total, 4) if total > 0 else 0.0
        shares.append(round(upto - before, 4))
        before = upto
    return shares


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Results:
    assignment: str
    notebooks: list[dict]               # grade reports from run.grade_notebook / failed_report
    notes: list[str] = field(default_factory=list)   # about the submission folder
    execution_time: float = 0.0

    def exercises(self) -> list[tuple[str, dict]]:
        return [(ex_id, entry) for report in self.notebooks
                for ex_id, entry in report["exercises"].items()]

    def auto(self) -> list[tuple[str, dict]]:
        return [(i, e) for i, e in self.exercises() if e["kind"] == "auto"]

    def manual(self) -> list[tuple[str, dict]]:
        return [(i, e) for i, e in self.exercises() if e["kind"] == "manual"]

    @property
    def score(self) -> float:
        return round(sum(e["score"] for _, e in self.auto()), 4)

    @property
    def max_score(self) -> float:
        return sum(e["points"] for _, e in self.auto())

    def scores(self) -> dict[str, float | None]:
        """Exercise id -> score (None for hand-graded ones)."""
        return {ex_id: entry["score"] for ex_id, entry in self.exercises()}

    @property
    def problems(self) -> list[str]:
        """Kit problems (missing hidden tests, checks the grader could not run): instructors'."""
        return [p for report in self.notebooks for p in report.get("problems", [])]

    def all_notes(self) -> list[str]:
        return self.notes + [n for report in self.notebooks for n in report.get("notes", [])]

    @property
    def warnings(self) -> list[str]:
        """For instructors, not kit problems: checks that failed on an unexpected exception
        caused by the submission's values, a grader that ran out of memory."""
        return [clean_line(w) for report in self.notebooks for w in report.get("warnings", [])]

    def output_text(self) -> str:
        lines = [f"{self.assignment}: {self.score:g} / {self.max_score:g} auto-graded points."]
        for report in self.notebooks:
            if not report.get("graded"):
                lines.append(clean_line(f"{report['notebook_name']}.ipynb was not graded: "
                                        f"{report['reason']}"))
        manual = self.manual()
        if manual:
            lines.append("Graded by hand later: " + ", ".join(
                f"{ex_id} ({entry['points']:g} point{'' if entry['points'] == 1 else 's'})"
                for ex_id, entry in manual) + ".")
        lines += cap_lines(self.all_notes(), NOTE_LINES)
        return "\n".join(lines)

    @staticmethod
    def _tests(ex_id: str, entry: dict) -> list[dict]:
        """The Gradescope tests of one exercise: one per check, or one with the reason."""
        checks = entry.get("checks") or []
        feedback = cap_lines(entry.get("feedback", []), FEEDBACK_LINES, FEEDBACK_CHARS)
        if not checks:
            full = entry["score"] >= entry["points"] - 1e-9
            return [{"name": f"{ex_id}: {clean_line(entry.get('status') or 'not graded', 80)}",
                     "score": entry["score"], "max_score": entry["points"],
                     "status": "passed" if full else "failed", "output": "\n".join(feedback),
                     "visibility": "visible"}]
        # lines about the exercise rather than one check (its answer cell raised...): with
        # the first failed check
        from_checks = {clean_line(line) for line in check_lines(ex_id, checks)}   # as capped
        about = [line for line in feedback if line not in from_checks
                 and not line.startswith("... and ")]
        tests, shown, budget = [], {}, FEEDBACK_CHARS   # the exercise's feedback, as before
        shares = _shares(entry["points"], [c.get("weight", 1.0) for c in checks])
        for check, share in zip(checks, shares):
            passed = check["status"] == "passed"
            title = check_title(ex_id, check.get("check", ""))
            lines = []
            if not passed:
                message = clean_line(check.get("message") or "a check failed")
                if len(message) <= budget:            # the exercise's budget, as one test had
                    shown.setdefault(message, title)
                    budget -= len(message)
                elif message in shown:
                    message = f"the same reason as '{shown[message]}'"
                else:
                    message = f"(reason left out: this exercise's feedback is over " \
                              f"{FEEDBACK_CHARS} characters)"
                lines, about = about + [message], []
            tests.append({
                "name": f"{ex_id}: {title}",
                "score": share if passed else 0.0,
                "max_score": share,
                "status": "passed" if passed else "failed",
                "output": "\n".join(cap_lines(lines, FEEDBACK_LINES, FEEDBACK_CHARS)),
                "visibility": "visible",
            })
        return tests

    def to_gradescope(self) -> dict:
        tests = [test for ex_id, entry in self.auto() for test in self._tests(ex_id, entry)]
        return {
            "score": self.score,
            "execution_time": round(self.execution_time, 1),
            "output": self.output_text(),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": tests,
        }

    def write(self, path: Path) -> Path:
        path = Path(path)
        write_atomically(path, json.dumps(self.to_gradescope(), indent=2) + "\n")
        return path

    def summary(self, width: int = 100) -> str:
        """One screen: id, score/max, the first problem; then the total and notes."""
        rows = [f"{'exercise':<28} {'score':>11}  first problem", "-" * min(width, 80)]
        for ex_id, entry in self.exercises():
            if entry["kind"] == "manual":
                score, first = f"- / {entry['points']:g}", "graded by hand"
            else:
                score = f"{entry['score']:g} / {entry['points']:g}"
                feedback = entry.get("feedback") or []
                first = "" if entry["score"] >= entry["points"] - 1e-9 else \
                    clean_line(feedback[0] if feedback else "")
            line = f"{ex_id:<28} {score:>11}  {first}"
            rows.append(line if len(line) <= width else line[:width - 1] + "…")
        rows.append("-" * min(width, 80))
        rows.append(f"{'total (auto-graded)':<28} {f'{self.score:g} / {self.max_score:g}':>11}"
                    f"  in {self.execution_time:.1f} s")
        for report in self.notebooks:
            if not report.get("graded"):
                rows.append(clean_line(f"not graded: {report['notebook_name']}.ipynb: "
                                       f"{report['reason']}", width))
        for note in cap_lines(self.all_notes(), NOTE_LINES):
            rows.append(clean_line(f"note: {note}", width))
        return "\n".join(rows)
