"""A graded submission: Gradescope's results.json and a one-screen summary for the terminal.

Gradescope format (https://gradescope-autograders.readthedocs.io/en/latest/specs/): one test per
auto-graded exercise, named ``"<exercise id>: <title>"``, with one line of feedback per failed
check. Hand-graded exercises are not tests (they would count as lost points); the top-level
``output`` lists them. The grader's own output (``stdout``) stays hidden from students: it can
show hidden test code.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


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

    def output_text(self) -> str:
        lines = [f"{self.assignment}: {self.score:g} / {self.max_score:g} auto-graded points."]
        for report in self.notebooks:
            if not report.get("graded"):
                lines.append(f"{report['notebook_name']}.ipynb was not graded: {report['reason']}")
        manual = self.manual()
        if manual:
            lines.append("Graded by hand later: " + ", ".join(
                f"{ex_id} ({entry['points']:g} point{'' if entry['points'] == 1 else 's'})"
                for ex_id, entry in manual) + ".")
        lines += self.all_notes()
        return "\n".join(lines)

    def to_gradescope(self) -> dict:
        tests = []
        for ex_id, entry in self.auto():
            full = entry["score"] >= entry["points"] - 1e-9
            tests.append({
                "name": f"{ex_id}: {entry['title']}" if entry.get("title") else ex_id,
                "score": entry["score"],
                "max_score": entry["points"],
                "status": "passed" if full else "failed",
                "output": "\n".join(entry.get("feedback", [])),
                "visibility": "visible",
            })
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
                    (feedback[0] if feedback else "")
            line = f"{ex_id:<28} {score:>11}  {first}"
            rows.append(line if len(line) <= width else line[:width - 1] + "…")
        rows.append("-" * min(width, 80))
        rows.append(f"{'total (auto-graded)':<28} {f'{self.score:g} / {self.max_score:g}':>11}"
                    f"  in {self.execution_time:.1f} s")
        for report in self.notebooks:
            if not report.get("graded"):
                rows.append(f"not graded: {report['notebook_name']}.ipynb: {report['reason']}"[:width])
        for note in self.all_notes():
            rows.append(f"note: {note}"[:width])
        return "\n".join(rows)
