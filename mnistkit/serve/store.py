"""Everything the grade-on-submit service knows, in one SQLite file (stdlib ``sqlite3``).

Why SQLite: a restart (a crash, a reboot, the hub restarting its services) must lose nothing
and grade nobody twice, and students' pages read while the grader writes. One file, WAL mode,
every change one transaction.

The idempotent key of a submission is its inbound folder's name
(``<student>+<assignment>+<timestamp>[+random]``, nbgrader's own and unique): a folder seen again
is ignored (``add``), and its result is recorded once, only by the grading that holds it
(``finish`` changes a row only while it is ``grading``). A grading under way when the service
stopped was never recorded: ``recover`` puts it back in the queue, first in line.

States: ``waiting`` (queued, or over the rate limit), ``grading``, ``graded``, ``not_graded``
(the grader failed on it: the reason is kept), ``late`` (arrived after the assignment closed),
``unknown`` (an assignment the course does not have).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    key TEXT PRIMARY KEY, student TEXT NOT NULL, assignment TEXT NOT NULL,
    folder TEXT NOT NULL, arrived REAL NOT NULL, seen REAL NOT NULL, state TEXT NOT NULL,
    started REAL, finished REAL, gradings INTEGER NOT NULL DEFAULT 0,
    tries INTEGER NOT NULL DEFAULT 0, score REAL, max_score REAL, results TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS by_state ON submissions (state, arrived, key);
CREATE INDEX IF NOT EXISTS by_student ON submissions (student, assignment);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, user TEXT, method TEXT, path TEXT, status INTEGER);
CREATE TABLE IF NOT EXISTS control (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, who TEXT NOT NULL, what TEXT NOT NULL);
"""

STATES = ("waiting", "grading", "graded", "not_graded", "late", "unknown")


@dataclass(frozen=True)
class Submission:
    key: str
    student: str
    assignment: str
    folder: str
    arrived: float
    seen: float
    state: str
    started: float | None
    finished: float | None
    gradings: int
    tries: int
    score: float | None
    max_score: float | None
    results: str | None
    reason: str | None

    def gradescope(self) -> dict | None:
        return json.loads(self.results) if self.results else None


class Store:
    """The service's SQLite file; safe to share between the grading loop and the web handlers
    (one connection, one lock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args=()) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute(sql, args).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return count

    def _rows(self, sql: str, args=()) -> list[Submission]:
        with self._lock:
            return [Submission(**dict(row)) for row in self._db.execute(sql, args).fetchall()]

    # --- submissions ---------------------------------------------------------------------

    def add(self, key: str, student: str, assignment: str, folder: str, arrived: float,
            state: str = "waiting", reason: str | None = None, now: float | None = None) -> bool:
        """Record a submission once; False when its key is known already."""
        return self._write(
            "INSERT OR IGNORE INTO submissions (key, student, assignment, folder, arrived, seen, "
            "state, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, student, assignment, folder, arrived, now or time.time(), state, reason)) == 1

    def known(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT key FROM submissions")}

    def get(self, key: str) -> Submission | None:
        found = self._rows("SELECT * FROM submissions WHERE key = ?", (key,))
        return found[0] if found else None

    def in_state(self, *states: str) -> list[Submission]:
        marks = ",".join("?" * len(states))
        return self._rows(f"SELECT * FROM submissions WHERE state IN ({marks}) "
                          "ORDER BY arrived, key", states)

    def everything(self) -> list[Submission]:
        return self._rows("SELECT * FROM submissions ORDER BY arrived, key")

    def of_student(self, student: str) -> list[Submission]:
        return self._rows("SELECT * FROM submissions WHERE student = ? ORDER BY arrived, key",
                          (student,))

    def started_since(self, since: float) -> list[Submission]:
        """Submissions whose grading started after ``since`` (the rate limit's hour)."""
        return self._rows("SELECT * FROM submissions WHERE started > ? ORDER BY started",
                          (since,))

    def start(self, key: str, now: float) -> bool:
        return self._write("UPDATE submissions SET state = 'grading', started = ?, "
                           "gradings = gradings + 1 WHERE key = ? AND state = 'waiting'",
                           (now, key)) == 1

    def finish(self, key: str, gradescope: dict, score: float, max_score: float,
               now: float) -> bool:
        """Record a grading's result; only the grading that holds the row can (once)."""
        return self._write("UPDATE submissions SET state = 'graded', finished = ?, score = ?, "
                           "max_score = ?, results = ?, reason = NULL WHERE key = ? AND "
                           "state = 'grading'",
                           (now, score, max_score, json.dumps(gradescope), key)) == 1

    def not_graded(self, key: str, reason: str, now: float) -> None:
        self._write("UPDATE submissions SET state = 'not_graded', finished = ?, reason = ?, "
                    "tries = tries + 1 WHERE key = ? AND state = 'grading'", (now, reason, key))

    def retry(self, key: str, reason: str, forget_start: bool = True) -> int:
        """A grading lost to the machine (not the submission): back in the queue, its start not
        counted against the student's rate limit. Returns how many tries failed so far."""
        with self._lock:
            self._write("UPDATE submissions SET state = 'waiting', reason = ?, tries = tries + 1"
                        + (", started = NULL" if forget_start else "")
                        + " WHERE key = ? AND state = 'grading'", (reason, key))
            row = self.get(key)
            return row.tries if row else 0

    def give_up(self, key: str, reason: str, now: float) -> None:
        """A submission put back by ``retry`` too often: not graded, with the reason."""
        self._write("UPDATE submissions SET state = 'not_graded', finished = ?, reason = ? "
                    "WHERE key = ? AND state = 'waiting'", (now, reason, key))

    def recover(self) -> list[str]:
        """At start: gradings the last run left unfinished go back to the queue (nothing of
        them was recorded). Returns their keys."""
        keys = [row.key for row in self.in_state("grading")]
        self._write("UPDATE submissions SET state = 'waiting', started = NULL "
                    "WHERE state = 'grading'")
        return keys

    def mark(self, key: str, state: str, reason: str) -> None:
        self._write("UPDATE submissions SET state = ?, reason = ? WHERE key = ? AND "
                    "state = 'waiting'", (state, reason, key))

    # --- control: pause, closed and published assignments ------------------------------------

    def control(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM control WHERE name = ?", (name,)).fetchone()
            return row[0] if row else None

    def set_control(self, name: str, value: str | None, who: str, what: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if value is None:
                    self._db.execute("DELETE FROM control WHERE name = ?", (name,))
                else:
                    self._db.execute("INSERT OR REPLACE INTO control (name, value) VALUES (?, ?)",
                                     (name, value))
                self._db.execute("INSERT INTO events (at, who, what) VALUES (?, ?, ?)",
                                 (time.time(), who, what))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def paused(self) -> bool:
        return self.control("paused") is not None

    def closed_at(self, assignment: str) -> float | None:
        value = self.control(f"closed:{assignment}")
        return float(value) if value is not None else None

    def published(self, assignment: str) -> bool:
        return self.control(f"published:{assignment}") is not None

    def events(self, limit: int = 50) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self._db.execute(
                "SELECT at, who, what FROM events ORDER BY id DESC LIMIT ?", (limit,))]

    # --- requests --------------------------------------------------------------------------

    def log_request(self, user: str | None, method: str, path: str, status: int) -> None:
        self._write("INSERT INTO requests (at, user, method, path, status) VALUES (?, ?, ?, ?, ?)",
                    (time.time(), user, method, path[:500], status))

    def request_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
