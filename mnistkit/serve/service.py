"""The grade-on-submit loop: find new submissions, start what the queue allows, record results.

Why one loop in a thread of its own, apart from the web handlers: gradings take seconds to
minutes; the pages must answer meanwhile, and read only the store.

Grading uses the same engine as ``mnistkit grade`` and ``grade-class``: ``batch.grade_one``
(``run.grade_submission``) in ``batch``'s own worker processes (spawned, dying with this one),
so a submission scores the same whichever way it is graded, and a hostile one costs only its
own grading: the sandbox holds its code, and a grading process that dies takes nothing but
itself (the pool is started again; that submission is tried once more, then "not graded").

Each step (``step``): the watcher's new folders into the store (``late`` after the deadline,
``unknown`` for an assignment the course lacks); finished gradings recorded (results.json
under ``<state>/results/<key digest>/``, and the same Gradescope JSON in the store); then new
gradings started while workers are free and the queue (``queue.pick``) allows.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import threading
import time
from pathlib import Path
from typing import Callable

from mnistkit.grading import batch, run
from mnistkit.grading.results import Results, clean_line
from mnistkit.serve import queue, watcher
from mnistkit.serve.config import ServeConfig
from mnistkit.serve.store import Store

MACHINE_TRIES = 3     # a grading lost to the machine (no sandbox...) is tried this many times
DEATH_TRIES = 2       # a grading whose worker process died: once more, alone, then not graded


def results_folder(config: ServeConfig, key: str) -> Path:
    """Where a submission's results.json goes: a digest of its key (the key is the student's
    folder name, so never a path of its own)."""
    return config.results / hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]


class Service:
    """The loop's state: the store, the configuration, the course and the worker pool."""

    def __init__(self, config: ServeConfig, course: run.Course, store: Store | None = None,
                 clock: Callable[[], float] = time.time,
                 say: Callable[[str], None] = lambda line: None):
        self.config, self.course, self.clock, self.say = config, course, clock, say
        self.store = store or Store(config.db)
        self.running: dict[cf.Future, str] = {}
        self._pool: cf.Executor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for key in self.store.recover():
            self.say(f"grading of {clean_line(key, 200)} was interrupted: queued again")

    # --- the pool ------------------------------------------------------------------------

    def _executor(self) -> cf.Executor:
        if self._pool is None:
            self._pool = batch._process_pool(self.config.workers)
        return self._pool

    def _restart_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            batch._stop(pool, [], owned=True)

    # --- one step ------------------------------------------------------------------------

    def poll(self) -> int:
        """New submissions into the store; returns how many."""
        now = self.clock()
        known_assignments = set(self.course.assignments())
        added = 0
        for found in watcher.scan(self.config.inbound, self.store.known(), now,
                                  settle_seconds=self.config.settle_seconds,
                                  check_owner=self.config.check_owner):
            state, reason = "waiting", None
            if found.assignment not in known_assignments:
                state, reason = "unknown", "the course has no assignment of this name"
            elif queue.is_late(self.store, self.config, found.assignment, found.arrived):
                state, reason = "late", ("submitted after the assignment closed: not graded "
                                         "on submit (your instructor grades the final version)")
            if self.store.add(found.key, found.student, found.assignment, str(found.folder),
                              found.arrived, state, reason, now):
                added += 1
                self.say(f"new: {clean_line(found.key, 200)} ({state})")
        return added

    def collect(self, timeout: float = 0.0) -> int:
        """Record every grading that finished (waiting up to ``timeout`` for the first)."""
        if not self.running:
            return 0
        done, _ = cf.wait(list(self.running), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        for future in done:
            self._record(future, self.running.pop(future))
        return len(done)

    def _record(self, future: cf.Future, key: str) -> None:
        now = self.clock()
        try:
            graded: Results = future.result()
        except cf.BrokenExecutor:
            tries = self.store.retry(key, "the process grading it died", forget_start=False)
            self._restart_pool()
            if tries >= DEATH_TRIES:
                self.store.give_up(key, "the process grading it died (out of memory?); "
                                   "your instructor will grade it", now)
            self.say(f"worker died grading {clean_line(key, 200)} (try {tries})")
            return
        except run.GradingUnavailable as exc:
            tries = self.store.retry(key, clean_line(exc, 300))
            if tries >= MACHINE_TRIES:
                self.store.give_up(key, clean_line(exc, 300), now)
            self.say(f"machine could not grade {clean_line(key, 200)}: {clean_line(exc, 300)}")
            return
        except Exception as exc:   # a kit bug their submission trips: theirs alone
            self.store.not_graded(key, clean_line(f"the grader failed ({type(exc).__name__})",
                                                  300), now)
            self.say(f"grader failed on {clean_line(key, 200)}: {clean_line(exc, 300)}")
            return
        graded.write(results_folder(self.config, key) / batch.RESULTS_FILE)
        self.store.finish(key, graded.to_gradescope(), graded.score, graded.max_score, now)
        self.say(f"graded {clean_line(key, 200)}: {graded.score:g} / {graded.max_score:g}")

    def dispatch(self) -> int:
        """Start gradings while workers are free and the queue allows; returns how many."""
        started = 0
        slots = self.config.workers - len(self.running)
        for row in queue.pick(self.store, self.config, self.clock(), slots):
            if not self.store.start(row.key, self.clock()):
                continue
            future = self._executor().submit(batch.grade_one, row.folder, row.assignment,
                                             self.course)
            self.running[future] = row.key
            started += 1
        return started

    def step(self, wait: float = 0.0) -> None:
        self.poll()
        self.collect(timeout=0.0)
        self.dispatch()
        self.collect(timeout=wait)

    def idle(self) -> bool:
        return not self.running and not queue.pick(self.store, self.config, self.clock(), 1)

    # --- the thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.step(wait=self.config.poll_seconds if self.running else 0.0)
            except Exception as exc:   # the loop outlives any one step's failure
                self.say(f"step failed: {type(exc).__name__}: {clean_line(exc, 300)}")
            left = self.config.poll_seconds - (time.monotonic() - started)
            if left > 0 and not self.running:
                self._stop.wait(left)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="grading",
                                                          daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and the workers; gradings under way are queued again (not recorded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.poll_seconds + 5)
        if self._pool is not None:
            batch._stop(self._pool, list(self.running), owned=True)
            self._pool = None
        for key in self.running.values():
            self.store.retry(key, "the service stopped during its grading")
        self.running.clear()
