"""`mnistkit demo`: the kit's main job on the bundled defaults, in pipeline order.

1. prepare MNIST for fastai (offline), 2. rebuild release/ from source/, 3. grade the bundled
example submissions (reference, half right, untouched) of every assignment in the sandbox,
4. print a score table and where each submission's results.json and summary went.
"""
from __future__ import annotations

import shutil
import time

from mnistkit import build, catalog, data, examples
from mnistkit.paths import ROOT

DEMO_DIR = ROOT / ".mnistkit" / "demo"


def _step(number: int, total: int, text: str) -> None:
    print(f"\n[{number}/{total}] {text}", flush=True)


def prepare_data() -> None:
    results = data.materialize(progress=data.stderr_progress)
    for name, (path, status) in results.items():
        print(f"  {name:<13} {status:<8} {path}")


def grade_examples(assignments: list[str]) -> dict[tuple[str, str], object]:
    from mnistkit.grading.run import grade_submission
    graded = {}
    for assignment in assignments:
        for kind in examples.KINDS:
            submission = DEMO_DIR / "submissions" / kind / assignment
            if submission.exists():
                shutil.rmtree(submission)
            examples.make(kind, assignment, submission)
            start = time.perf_counter()
            print(f"  {assignment} / {kind:<10} grading ...", end="", flush=True)
            results = grade_submission(submission, assignment)
            feedback = DEMO_DIR / "feedback" / kind / assignment
            feedback.mkdir(parents=True, exist_ok=True)
            results.write(feedback / "results.json")
            (feedback / "summary.txt").write_text(results.summary() + "\n")
            print(f" {results.score:g} / {results.max_score:g} points "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            graded[assignment, kind] = results
    return graded


def score_table(assignments: list[str], graded: dict) -> str:
    header = f"  {'assignment':<24}" + "".join(f"{kind.replace('_', ' '):>14}" for kind in examples.KINDS)
    rows = [header, "  " + "-" * (len(header) - 2)]
    for assignment in assignments:
        cells = "".join(f"{graded[assignment, kind].score:>8g} / {graded[assignment, kind].max_score:<3g}"
                        for kind in examples.KINDS)
        rows.append(f"  {assignment:<24}{cells}")
    return "\n".join(rows)


def run(args=None) -> int:
    start = time.perf_counter()
    steps = 4
    _step(1, steps, "MNIST for fastai, offline (from data/mnist.npz)")
    prepare_data()
    _step(2, steps, "release/ from source/ (nbgrader generate_assignment)")
    build.build()
    assignments = catalog.assignments()
    exercises = catalog.load()
    auto = sum(ex.kind == "auto" for ex in exercises)
    print(f"  {len(assignments)} assignments, {len(exercises)} exercises ({auto} auto-graded, "
          f"{len(exercises) - auto} by hand); `mnistkit exercises` lists them")
    _step(3, steps, "grading the bundled example submissions in the sandbox")
    graded = grade_examples(assignments)
    _step(4, steps, "scores (auto-graded points; written answers are graded by hand in formgrader)")
    print(score_table(assignments, graded))
    print(f"\n  feedback (results.json + summary.txt per submission): {DEMO_DIR / 'feedback'}")
    print(f"  example submissions: {DEMO_DIR / 'submissions'}")
    print(f"  done in {time.perf_counter() - start:.0f} s. Next: README.md, 'Teaching a class with nbgrader'.")
    return 0
