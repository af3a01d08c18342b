"""What the service grades next, and what a student is told about the wait: order, rate limit,
pause and deadline, as plain functions of the store and the configuration.

Why apart from the loop (``service.py``): these are the rules an instructor sets and a student
asks about ("why is mine not graded yet?"), so the page and the grader must compute them the
same way; they read the store and the clock and start nothing.

- Order: first come, first served, by the time a submission arrived.
- Rate limit: at most ``per_hour`` gradings started per student and assignment in any hour. A
  submission over it is recorded and WAITS: it is graded once the student's oldest grading of
  the hour is an hour old (students see when). ``per_hour`` 0: the service grades nothing of
  that assignment (the final grading only).
- Pause: an instructor's; nothing new starts, what runs finishes, nothing is lost.
- Deadline: an assignment closes at its configured deadline or when an instructor closes it;
  a submission that arrived after that is ``late`` and not graded by the service (the final
  grading stays ``grade-class`` / ``nbgrader autograde``). One that arrived in time is graded,
  even after the deadline.
"""
from __future__ import annotations

from collections import Counter

from mnistkit.serve.config import ServeConfig
from mnistkit.serve.store import Store, Submission

HOUR = 3600.0


def closes_at(store: Store, config: ServeConfig, assignment: str) -> float | None:
    """When the assignment closed or closes: the earlier of its deadline and an instructor's
    close; None while it is open with no deadline."""
    times = [t for t in (config.rules(assignment).deadline, store.closed_at(assignment))
             if t is not None]
    return min(times) if times else None


def is_late(store: Store, config: ServeConfig, assignment: str, arrived: float) -> bool:
    closing = closes_at(store, config, assignment)
    return closing is not None and arrived > closing


def _started_in_hour(store: Store, now: float) -> tuple[Counter, dict]:
    counts: Counter = Counter()
    oldest: dict = {}
    for row in store.started_since(now - HOUR):
        who = (row.student, row.assignment)
        counts[who] += 1
        oldest.setdefault(who, row.started)   # rows come oldest first
    return counts, oldest


def next_allowed(store: Store, config: ServeConfig, student: str, assignment: str,
                 now: float) -> float | None:
    """Seconds until ``student`` may have ``assignment`` graded again (0: now; None: never,
    the assignment's limit is 0)."""
    limit = config.rules(assignment).per_hour
    if limit == 0:
        return None
    starts = sorted(row.started for row in store.started_since(now - HOUR)
                    if row.student == student and row.assignment == assignment)
    if len(starts) < limit:
        return 0.0
    # the hour frees a slot when the (count - limit + 1)-th oldest start is an hour old
    return max(0.0, starts[len(starts) - limit] + HOUR - now)


def pick(store: Store, config: ServeConfig, now: float, slots: int) -> list[Submission]:
    """Up to ``slots`` waiting submissions that may start now, in order (none while paused)."""
    if slots <= 0 or store.paused():
        return []
    counts, _ = _started_in_hour(store, now)
    chosen = []
    for row in store.in_state("waiting"):
        who = (row.student, row.assignment)
        if counts[who] >= config.rules(row.assignment).per_hour:
            continue            # over the limit: waits, the next one goes first
        counts[who] += 1
        chosen.append(row)
        if len(chosen) == slots:
            break
    return chosen


def place(store: Store, config: ServeConfig, key: str, now: float) -> dict:
    """Where a waiting submission stands: ``position`` (1: next; None when it waits for the
    rate limit or a pause) and ``why`` (a sentence for its student)."""
    row = store.get(key)
    if row is None or row.state != "waiting":
        return {"position": None, "why": ""}
    if store.paused():
        return {"position": None, "why": "grading is paused by your instructor; your "
                "submission is kept and will be graded"}
    wait = next_allowed(store, config, row.student, row.assignment, now)
    if wait is None:
        return {"position": None, "why": "this assignment is not graded on submit"}
    counts, _ = _started_in_hour(store, now)
    ahead = 0
    own_before = 0
    for other in store.in_state("waiting"):
        if other.key == key:
            break
        who = (other.student, other.assignment)
        if who == (row.student, row.assignment):
            own_before += 1
        if counts[who] < config.rules(other.assignment).per_hour:
            counts[who] += 1
            ahead += 1
    limit = config.rules(row.assignment).per_hour
    if counts[(row.student, row.assignment)] >= limit:
        return {"position": None,
                "why": f"over the limit of {limit} grading(s) per hour: graded later, about "
                       f"{_minutes(wait)} from now" + (f" (after {own_before} earlier "
                                                       "submission(s) of yours)"
                                                       if own_before else "")}
    return {"position": ahead + 1, "why": f"{ahead} submission(s) ahead of yours"}


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60) + (1 if seconds % 60 else 0)
    return f"{max(1, minutes)} min"
