"""Grade a class on a Dask distributed cluster: ``mnistkit grade-class --scheduler ADDRESS``.

``executor(scheduler, assignment)`` connects to the cluster's scheduler (Dask Gateway on a
JupyterHub, dask-jobqueue on Slurm, dask-kubernetes, or ``dask scheduler`` + ``dask worker``
by hand) and returns a ``concurrent.futures.Executor`` for ``batch.grade_class(executor=...)``:
the batch stays the only writer of results, in this process, as the gradings come back; the
workers only grade (``batch.grade_one``, which is ``run.grade_submission``) and return plain
``Results``. Dask is the engine rather than a scheduler of our own: it already places tasks,
notices a lost worker and runs its tasks again elsewhere, and the clusters instructors have
(Gateway, jobqueue, Kubernetes) speak it.

Before anyone is graded, every worker is asked (one small task on each) whether it can grade
this assignment and whether it would grade it *the same way* as this machine: the pre-flight
(``run.check_can_grade``: bubblewrap, MNIST, the sandbox's limits) passes there, and the hidden
tests, references, source and release notebooks, grading engine, scoring settings
(``fingerprints.grading_settings``: limits, seed, kit version) and the versions of the packages that
compute an answer are those of this machine. Any worker that differs refuses the whole run,
with one line saying which worker and what differs: otherwise a score would depend on which
worker happened to grade it. Each task checks again on the worker that runs it, so a worker
that joins later (an adaptive cluster) cannot grade differently either.

Lost workers. Dask runs again, on another worker, every task whose worker died while running it
(up to ``distributed.scheduler.allowed-failures`` times, 3 by default; then the task fails with
``KilledWorker``, turned here into ``run.GradingUnavailable``, which stops the batch with
nothing recorded for that student). Each submission is one Dask future relayed to one
``concurrent.futures.Future``, which completes once; so whatever ran twice on the cluster, the
writer gets exactly one result per student. Tasks have unique keys and ``pure=False`` (the
same student submitted again is graded again, never served from memory) and no ``retries``: an
exception from a grading is deterministic (the machine cannot grade), running it again would
only repeat it.

GPU. Assignments that train a model (the ``gpu_assignments`` setting: a4_further_research by
default, or ``MNISTKIT_GPU_ASSIGNMENTS``, a comma-separated list, "" for none) ask for ``resources={"GPU": 1}`` when some worker declares a
GPU resource (``dask worker ... --resources GPU=1``): only those workers run them, one at a time
each. Every other assignment is restricted to the workers without a GPU resource while there
are some, so the GPU workers stay free (a strict restriction: Dask's work stealing ignores a
loose one and would hand them to an idle GPU worker; so on a mixed cluster keep CPU workers up
while a CPU assignment is graded: its gradings wait for the CPU workers named when they were
handed out). The verdicts are the same wherever a grading runs: the
identity check above holds for GPU and CPU workers alike, and the hidden tests' verdicts do not
depend on the device.

Student files travel with the task, as bytes (``dask_shipped.Shipped``: what is sent and how),
since a worker need not share a filesystem with this machine.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib.metadata
import os
import re
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable

from mnistkit.grading import run
from mnistkit.grading.dask_shipped import SHIP_BYTES, Shipped  # noqa: F401
from mnistkit.grading.results import clean_line
from mnistkit.settings import SettingsError, settings

GPU = "GPU"                                   # the resource name workers declare
GPU_ENV = "MNISTKIT_GPU_ASSIGNMENTS"
CHECK_SECONDS = 600.0                         # the first pre-flight on a worker verifies MNIST
CONNECT_SECONDS = 30.0
# Packages whose version can change a computed answer (and so a verdict) on a worker.
_PACKAGES = ("torch", "numpy", "fastai", "pytest", "nbformat")


def gpu_assignments() -> set[str]:
    """The course's ``gpu_assignments`` setting (``MNISTKIT_GPU_ASSIGNMENTS``): the assignments
    whose gradings train a model."""
    try:
        return set(settings().gpu_assignments)
    except SettingsError as exc:
        raise run.GradingUnavailable(str(exc)) from None


def uses_gpu(assignment: str) -> bool:
    """Whether this assignment's gradings can use a GPU (they train a model)."""
    return assignment in gpu_assignments()


# --- does a worker grade like this machine? -------------------------------------------------

def identity(assignment: str, course: run.Course) -> dict:
    """What decides a verdict here, as digests a worker's can be compared with: every group of
    ``fingerprints.grading_inputs`` (paths relative to their folder: the kit may be installed elsewhere
    on a worker), the scoring settings, Python's and the packages' versions. Per group rather
    than ``fingerprints.grading_fingerprint``'s one hash, so a refusal can say what differs."""
    from mnistkit.grading import fingerprints
    digests = {}
    for what, (folder, files) in fingerprints.grading_inputs(assignment, course).items():
        digest = hashlib.sha256()
        fingerprints._hash_files(digest, folder, files)   # relative paths and contents
        digests[what] = digest.hexdigest()
    versions = {"python": "%d.%d" % sys.version_info[:2]}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"inputs": digests, "settings": fingerprints.grading_settings(),
            "versions": versions}


def differences(mine: dict, theirs: dict) -> list[str]:
    """What differs between two ``identity`` results, in words ('hidden tests', 'torch 2.1 vs
    2.14.1', 'MNISTKIT_LIMIT_CELL_SECONDS')."""
    found = [what for what in mine["inputs"] if mine["inputs"][what] != theirs["inputs"].get(what)]
    for name in sorted(set(mine["settings"]) | set(theirs["settings"])):
        there, here = theirs["settings"].get(name, "unset"), mine["settings"].get(name, "unset")
        if there != here:
            short = len(there) <= 40 and len(here) <= 40   # not a whole Limits tuple
            found.append(f"{name} ({there} there, {here} here)" if short else name)
    for name, version in mine["versions"].items():
        if theirs["versions"].get(name) != version:
            found.append(f"{name} {theirs['versions'].get(name)} (here {version})")
    return found


def check_worker(assignment: str) -> dict:
    """Run on a worker: its ``identity`` for this assignment with its own course, or the
    one-line reason it cannot grade at all."""
    course = run.Course.default()
    try:
        run.check_can_grade(assignment, course)
        return {"identity": identity(assignment, course), "problem": None}
    except run.GradingUnavailable as exc:
        return {"identity": None, "problem": str(exc)}


class _HereCourse:
    """Stands for ``run.Course`` in a task: the worker grades with its own course."""


def _grade_here(fn: Callable, shipped: Shipped, args: tuple, kwargs: dict, assignment: str,
                expected: dict) -> Any:
    """The task: check this worker grades like the batch's machine, unpack the submission, grade."""
    from distributed import get_worker
    course = run.Course.default()
    try:
        here = identity(assignment, course)
    except OSError as exc:   # the kit's files there, not the student's
        raise run.GradingUnavailable(f"Dask worker {get_worker().address} cannot read its "
                                     f"grading files: {exc}") from None
    differ = differences(expected, here)
    if differ:
        raise run.GradingUnavailable(
            f"Dask worker {get_worker().address} does not grade {assignment} like the machine "
            f"running grade-class: {'; '.join(differ)}")
    args = tuple(course if isinstance(a, _HereCourse) else a for a in args)
    kwargs = {k: course if isinstance(v, _HereCourse) else v for k, v in kwargs.items()}
    with tempfile.TemporaryDirectory(prefix="mnistkit-dask-") as tmp:
        folder = shipped.unpack(Path(tmp))
        return fn(str(folder), *args, **kwargs)


# --- the executor ---------------------------------------------------------------------------

def _label(folder: Path) -> str:
    """The student of ``SUBMITTED/<student>/<assignment>/``, made a safe part of a task key."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", Path(folder).parent.name)[:40] or "student"


def _gpus(worker: dict) -> float:
    return float((worker.get("resources") or {}).get(GPU, 0))


class DaskGrading(cf.Executor):
    """``submit(fn, folder, *args, **kwargs)`` runs ``fn(folder_on_the_worker, *args,
    **kwargs)`` on the cluster (``batch.grade_one``'s shape: the submission folder first; any
    ``run.Course`` argument becomes the worker's own). The futures it returns are plain
    ``concurrent.futures.Future`` objects, completed once each."""

    checks_workers = True   # every worker was checked (``executor``): no local pre-flight

    def __init__(self, client, assignment: str, expected: dict, *, owns_client: bool,
                 say: Callable[[str], None] = print):
        self.client = client
        self.assignment = assignment
        self._expected = expected
        self._owns = owns_client
        self._inner = client.get_executor(pure=False)
        self._outer: set[cf.Future] = set()
        workers = self._workers()
        self.on_gpu = uses_gpu(assignment) and any(_gpus(w) for w in workers.values())
        if uses_gpu(assignment) and not self.on_gpu:
            say(f"no Dask worker declares a {GPU} resource: {assignment} is graded on CPUs")

    def _workers(self) -> dict[str, dict]:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    @property
    def slots(self) -> int:
        """Gradings the cluster can run at once for this assignment (threads of the workers it
        may use): what to hand out at a time, and what the time left is estimated with."""
        workers = self._workers().values()
        usable = [w for w in workers if bool(_gpus(w)) == self.on_gpu] or list(workers)
        if self.on_gpu:
            return max(1, int(sum(_gpus(w) for w in usable)))
        return max(1, sum(int(w.get("nthreads", 1)) for w in usable))

    def placement(self) -> dict:
        """Dask's submit arguments that route one grading (see the module docstring)."""
        if self.on_gpu:
            return {"resources": {GPU: 1}}
        workers = self._workers()
        cpu = sorted(address for address, w in workers.items() if not _gpus(w))
        if cpu and len(cpu) < len(workers):
            return {"workers": cpu, "allow_other_workers": False}
        return {}

    def submit(self, fn, folder, /, *args, **kwargs) -> cf.Future:
        shipped = Shipped.pack(Path(folder))
        here = _HereCourse()
        args = tuple(here if isinstance(a, run.Course) else a for a in args)
        kwargs = {k: here if isinstance(v, run.Course) else v for k, v in kwargs.items()}
        label = _label(Path(folder))
        inner = self._inner.submit(
            _grade_here, fn, shipped, args, kwargs, self.assignment, self._expected,
            key=f"mnistkit-grade-{label}-{uuid.uuid4().hex}", **self.placement())
        outer: cf.Future = cf.Future()
        self._outer.add(outer)

        def relay(done: cf.Future) -> None:
            try:
                if done.cancelled():
                    outer.set_exception(run.GradingUnavailable(
                        f"the Dask cluster dropped the grading of {label} (scheduler lost or "
                        "client closed)"))
                elif done.exception() is not None:
                    outer.set_exception(_plain(done.exception(), label))
                else:
                    outer.set_result(done.result())
            except cf.InvalidStateError:   # cancelled meanwhile by the batch
                pass
            finally:
                self._outer.discard(outer)

        def cancel_inner(done: cf.Future) -> None:
            if done.cancelled():
                inner.cancel()
                self._outer.discard(done)

        outer.add_done_callback(cancel_inner)
        inner.add_done_callback(relay)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel what is not done when asked (a running grading cannot be interrupted on a
        worker: it runs to its end and is thrown away), then close the client if it is ours."""
        if cancel_futures:
            for future in list(self._outer):
                future.cancel()
        self._inner.shutdown(wait=wait and not cancel_futures)
        if self._owns:
            self.client.close()


def _plain(exc: BaseException, label: str) -> BaseException:
    """A Dask failure as the batch understands it: the cluster's fault stops the batch."""
    from distributed.scheduler import KilledWorker
    if isinstance(exc, KilledWorker):
        return run.GradingUnavailable(
            f"Dask workers died {exc.allowed_failures + 1} times while grading {label} "
            "(distributed.scheduler.allowed-failures); are the workers short of memory?")
    return exc


def _connect(scheduler, timeout: float):
    """A Client from an address (``tcp://host:8786``, ``tls://...`` with Dask's TLS settings), a
    scheduler file (JSON, as ``dask scheduler --scheduler-file`` and jobqueue write), or a
    ``Client`` / cluster object (Gateway's ``cluster.get_client()``, from Python).
    (client, ours?)"""
    from distributed import Client
    if isinstance(scheduler, Client):
        return scheduler, False
    if hasattr(scheduler, "get_client"):
        return scheduler.get_client(), True
    text = str(scheduler)
    try:
        if text.endswith(".json") and Path(text).is_file():
            return Client(scheduler_file=text, timeout=timeout, set_as_default=False), True
        return Client(text, timeout=timeout, set_as_default=False), True
    except (OSError, TimeoutError, ValueError) as exc:
        raise run.GradingUnavailable(
            f"cannot reach the Dask scheduler at {clean_line(text, 200)}: "
            f"{clean_line(exc, 200) or type(exc).__name__}") from None


def _check_course(assignment: str, course: run.Course) -> None:
    """The part of ``run.check_can_grade`` this machine needs when only the workers grade: the
    assignment and its hidden tests exist (no sandbox or MNIST here: a JupyterHub pod running
    grade-class often cannot start bubblewrap, and need not)."""
    known = course.assignments()
    if assignment not in known:
        raise run.GradingUnavailable(f"no assignment named {assignment!r}; known: "
                                     f"{', '.join(known) or 'none'} (in {course.source})")
    if not course.module(assignment).is_file():
        raise run.GradingUnavailable(f"the hidden tests for {assignment} are missing: "
                                     f"{course.module(assignment)} does not exist")


def _answers(checks: dict, seconds: float) -> dict:
    """address -> the worker's ``check_worker`` answer, or a str saying why there is none."""
    import time
    deadline = time.monotonic() + seconds
    answers = {}
    for address, future in sorted(checks.items()):
        try:
            answers[address] = future.result(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            answers[address] = f"did not answer the check in {seconds:g} s"
        except Exception as exc:   # the worker died, or the check could not run there
            answers[address] = f"the check failed: {clean_line(exc, 200) or type(exc).__name__}"
    return answers


def _refusals(expected: dict, answers: dict) -> list[str]:
    """One entry per distinct reason a worker cannot grade, with the workers it applies to."""
    reasons: dict[str, list[str]] = {}
    for address, answer in answers.items():
        if isinstance(answer, str):
            why = answer
        elif answer["problem"]:
            why = clean_line(answer["problem"], 300)
        else:
            differ = differences(expected, answer["identity"])
            if not differ:
                continue
            why = "grades differently: " + "; ".join(differ)
        reasons.setdefault(why, []).append(address)
    return [f"{why} ({', '.join(addresses[:3])}{' ...' if len(addresses) > 3 else ''})"
            for why, addresses in reasons.items()]


def executor(scheduler, assignment: str, course: run.Course | None = None, *,
             say: Callable[[str], None] = print, timeout: float = CONNECT_SECONDS,
             check_seconds: float = CHECK_SECONDS) -> DaskGrading:
    """Connect to the cluster and check every worker (module docstring); raise
    ``run.GradingUnavailable`` with one line when it cannot grade, before anyone is graded.
    ``scheduler``: see ``_connect``. The caller shuts the executor down (``with executor(...)
    as grading:``), which closes the client it made."""
    course = course or run.Course.default()
    _check_course(assignment, course)
    expected = identity(assignment, course)
    client, owned = _connect(scheduler, timeout)
    where = clean_line(scheduler if isinstance(scheduler, (str, os.PathLike))
                       else client.scheduler.address, 200)
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if not workers:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError):
                raise run.GradingUnavailable(f"the Dask cluster at {where} has no workers "
                                             f"(waited {timeout:g} s)") from None
            workers = client.scheduler_info(n_workers=-1)["workers"]
        checks = {address: client.submit(check_worker, assignment, workers=[address],
                                         allow_other_workers=False, pure=False,
                                         key=f"mnistkit-check-{uuid.uuid4().hex}")
                  for address in workers}
        refused = _refusals(expected, _answers(checks, check_seconds))
        client.cancel(list(checks.values()))
        if refused:
            raise run.GradingUnavailable(
                f"Dask workers at {where} cannot grade {assignment} like this machine: "
                + " | ".join(refused))
        grading = DaskGrading(client, assignment, expected, owns_client=owned, say=say)
    except BaseException:
        if owned:
            client.close()
        raise
    gpus = sum(1 for w in workers.values() if _gpus(w))
    runs_on = "the GPU workers" if grading.on_gpu else \
        "the CPU workers" if gpus else "every worker"
    say(f"Dask cluster at {where}: {len(workers)} worker(s), {gpus} with a {GPU}; "
        f"{assignment} is graded on {runs_on}")
    return grading
