"""What a student (or an instructor) sees of the service: the views as plain data for the JSON
API, and the same as HTML.

Why a module of its own: what may be shown is decided in one place. A student sees only their
own submissions: for each assignment the place in the queue, the time until their next allowed
grading, and the best or the last grading (``Rules.show``), with per exercise the score and the
reasons, for the exercises whose visibility (Gradescope's levels: ``hidden``,
``after_due_date``, ``after_published``, ``visible``) allows it now. The score shown is the sum
over the exercises shown. What comes from results.json was cleaned by ``results.py`` already
(never hidden-test code or expected values: the grader's output is not in it); every string is
escaped again here for HTML (``html.escape``), student names and folder names included.
"""
from __future__ import annotations

import html
import json
import time

from mnistkit.serve import queue
from mnistkit.serve.config import ServeConfig
from mnistkit.serve.store import Store, Submission

STATE_WORDS = {"waiting": "waiting", "grading": "being graded", "graded": "graded",
               "not_graded": "not graded", "late": "after the deadline: not graded",
               "unknown": "not an assignment of this course"}


def may_see(level: str, *, past_due: bool, published: bool) -> bool:
    return (level == "visible" or level == "after_due_date" and past_due
            or level == "after_published" and published)


def exercises_shown(gradescope: dict, store: Store, config: ServeConfig, assignment: str,
                    now: float) -> list[dict]:
    """Per exercise the student may see now: id, score, points and the reasons points were lost
    (results.json's tests grouped by the exercise id that starts their name)."""
    rules = config.rules(assignment)
    closing = queue.closes_at(store, config, assignment)
    past_due = closing is not None and now > closing
    published = store.published(assignment)
    grouped: dict[str, dict] = {}
    for test in gradescope.get("tests", []):
        exercise = str(test.get("name", "")).split(":", 1)[0].strip()
        entry = grouped.setdefault(exercise, {"exercise": exercise, "score": 0.0,
                                              "max_score": 0.0, "reasons": []})
        entry["score"] = round(entry["score"] + float(test.get("score") or 0), 4)
        entry["max_score"] = round(entry["max_score"] + float(test.get("max_score") or 0), 4)
        if test.get("status") != "passed" and test.get("output"):
            entry["reasons"] += [line for line in str(test["output"]).splitlines() if line]
    return [entry for exercise, entry in grouped.items()
            if may_see(rules.level(exercise), past_due=past_due, published=published)]


def _shown_score(row: Submission, store: Store, config: ServeConfig, now: float) -> float:
    return sum(e["score"] for e in exercises_shown(row.gradescope() or {}, store, config,
                                                   row.assignment, now))


def _submission(row: Submission, store: Store, config: ServeConfig, now: float) -> dict:
    entry = {"key": row.key, "assignment": row.assignment, "state": row.state,
             "state_words": STATE_WORDS.get(row.state, row.state), "arrived": row.arrived,
             "finished": row.finished, "reason": row.reason if row.state != "waiting" else None}
    if row.state == "waiting":
        entry.update(queue.place(store, config, row.key, now))
    return entry


def student_view(store: Store, config: ServeConfig, student: str,
                 now: float | None = None) -> dict:
    """Everything ``student`` may see, as JSON-ready data."""
    now = time.time() if now is None else now
    rows = store.of_student(student)
    assignments = {}
    for name in sorted({row.assignment for row in rows if row.state != "unknown"}):
        mine = [row for row in rows if row.assignment == name]
        rules = config.rules(name)
        graded = [row for row in mine if row.state == "graded"]
        chosen = None
        if graded:
            chosen = graded[-1] if rules.show == "last" else max(
                graded, key=lambda r: (_shown_score(r, store, config, now), r.arrived))
        shown = exercises_shown(chosen.gradescope(), store, config, name, now) if chosen else []
        wait = queue.next_allowed(store, config, student, name, now)
        closing = queue.closes_at(store, config, name)
        assignments[name] = {
            "per_hour": rules.per_hour, "show": rules.show,
            "next_grading_in_seconds": None if wait is None else round(wait),
            "closes_at": closing, "closed": closing is not None and now > closing,
            "result": None if chosen is None else {
                "key": chosen.key, "graded_at": chosen.finished,
                "score": round(sum(e["score"] for e in shown), 4),
                "max_score": round(sum(e["max_score"] for e in shown), 4),
                "exercises": shown},
            "submissions": [_submission(row, store, config, now) for row in mine],
        }
    return {"student": student, "paused": store.paused(), "now": now,
            "assignments": assignments}


def queue_view(store: Store, config: ServeConfig, now: float | None = None) -> dict:
    """The instructor's view: every submission not finished, in order, and the counts."""
    now = time.time() if now is None else now
    rows = store.everything()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    open_rows = [row for row in rows if row.state in ("waiting", "grading")]
    assignments = sorted({row.assignment for row in rows} | set(config.assignments))
    return {"paused": store.paused(), "counts": counts, "now": now,
            "assignments": {name: {"closes_at": queue.closes_at(store, config, name),
                                   "published": store.published(name)}
                            for name in assignments},
            "queue": [dict(_submission(row, store, config, now), student=row.student,
                           started=row.started) for row in open_rows],
            "events": store.events(20)}


# --- HTML ------------------------------------------------------------------------------------

def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"refresh\" content=\"15\">"
            f"<title>{_e(title)}</title><style>body{{font-family:sans-serif;max-width:60em;"
            "margin:1em auto}} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
            f"padding:.2em .5em;vertical-align:top}}</style></head><body>{body}</body></html>")


def student_html(view: dict) -> str:
    parts = [f"<h1>Grading on submit: {_e(view['student'])}</h1>"]
    if view["paused"]:
        parts.append("<p><strong>Grading is paused by your instructor.</strong> Your "
                     "submissions are kept and will be graded.</p>")
    if not view["assignments"]:
        parts.append("<p>No submissions yet. Submit from JupyterLab's Assignments tab; this "
                     "page shows the result a few seconds to minutes later.</p>")
    for name, item in view["assignments"].items():
        parts.append(f"<h2>{_e(name)}</h2>")
        wait = item["next_grading_in_seconds"]
        limit = (f"at most {_e(item['per_hour'])} grading(s) per hour; "
                 + ("your next grading can start now" if wait == 0 else
                    "not graded on submit" if wait is None else
                    f"your next grading can start in about {_e(-(-int(wait) // 60))} min"))
        parts.append(f"<p>{limit}. Deadline: {_e(_when(item['closes_at']))}"
                     + (" (closed)" if item["closed"] else "") + "</p>")
        result = item["result"]
        if result:
            parts.append(f"<p>{'Best' if item['show'] == 'best' else 'Last'} grading "
                         f"({_e(_when(result['graded_at']))}): <strong>{_e(result['score'])} / "
                         f"{_e(result['max_score'])}</strong> on the exercises shown</p>")
            rows = "".join(
                f"<tr><td>{_e(ex['exercise'])}</td><td>{_e(ex['score'])} / "
                f"{_e(ex['max_score'])}</td><td>"
                + "<br>".join(_e(reason) for reason in ex["reasons"]) + "</td></tr>"
                for ex in result["exercises"])
            parts.append("<table><tr><th>exercise</th><th>score</th><th>why points were "
                         f"lost</th></tr>{rows}</table>")
        rows = "".join(
            f"<tr><td>{_e(_when(sub['arrived']))}</td><td>{_e(sub['state_words'])}</td><td>"
            + (f"place {_e(sub['position'])} in the queue: " if sub.get("position") else "")
            + _e(sub.get("why") or sub.get("reason") or "") + "</td></tr>"
            for sub in item["submissions"])
        parts.append("<h3>Your submissions</h3><table><tr><th>submitted</th><th>state</th>"
                     f"<th></th></tr>{rows}</table>")
    return _page("Grading on submit", "".join(parts))


def queue_html(view: dict, xsrf: str) -> str:
    token = f"<input type=\"hidden\" name=\"_xsrf\" value=\"{_e(xsrf)}\">"

    def button(action: str, label: str, assignment: str = "") -> str:
        field = (f"<input type=\"hidden\" name=\"assignment\" value=\"{_e(assignment)}\">"
                 if assignment else "")
        return (f"<form method=\"post\" action=\"api/{_e(action)}\" style=\"display:inline\">"
                f"{token}{field}<button>{_e(label)}</button></form>")
    parts = ["<h1>Grading on submit: the queue</h1>",
             f"<p>{'PAUSED' if view['paused'] else 'running'} "
             + (button("resume", "resume") if view["paused"] else button("pause", "pause"))
             + "</p><p>" + _e(json.dumps(view["counts"])) + "</p>"]
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(_when(item['closes_at']))}</td><td>"
        f"{'published' if item['published'] else ''}</td><td>{button('close', 'close now', name)}"
        f" {button('publish', 'publish', name)}</td></tr>"
        for name, item in view["assignments"].items())
    parts.append("<table><tr><th>assignment</th><th>closes</th><th></th><th></th></tr>"
                 f"{rows}</table>")
    rows = "".join(
        f"<tr><td>{_e(sub['student'])}</td><td>{_e(sub['assignment'])}</td><td>"
        f"{_e(_when(sub['arrived']))}</td><td>{_e(sub['state_words'])}</td><td>"
        f"{_e(sub.get('why') or '')}</td></tr>" for sub in view["queue"])
    parts.append("<h2>Waiting and being graded</h2><table><tr><th>student</th><th>assignment"
                 f"</th><th>submitted</th><th>state</th><th></th></tr>{rows}</table>")
    return _page("Grading on submit: the queue", "".join(parts))
