"""Grade an untrusted notebook: its code runs in a bubblewrap sandbox, the grader only gets plain data.

This module is the student session (``SandboxStudent``: the notebook run once, restarts and
replay, the notebook's time budget, the hidden tests' requests). The sandbox itself is declared
in ``sandbox_policy`` (the one ``Policy``: mounts, disk quota, limits, environment, devices),
started by a launcher (``launchers.ColdLauncher``: bubblewrap, ``bwrap_args``;
``warm_launcher.WarmLauncher``: a fork server's child, ``zygote``), held in its cgroups
(``cgroups``) and talked to as ``sandbox_process.RunnerProcess``; the disk quota is
``disk_quota.py``'s, for both starts. What follows is the design they carry out together.

Isolation. ``runner.py`` (stand-alone) runs the notebook's cells with IPython in a process that
bubblewrap starts with a minimal, read-only view of the machine (/usr, a few files of /etc, the
Python install, the venv, the MNIST data folder) plus one writable scratch folder (HOME and the
working directory, holding a copy of the submission folder), no network, its own pid/ipc/uts
namespaces, a clean environment and uid 65534 in its own user namespace. The repository, the
grader's temp files and the rest of /root are simply not there; the editable install of mnistkit
points into the repository, so mnistkit cannot be imported inside. The grader and the runner
exchange length-prefixed ``wire`` frames (no pickle) on stdin and a separate answer pipe; the
student's stdout/stderr go to a third pipe of which only a tail is kept.

Resilience. Time is enforced twice: the runner interrupts student code with SIGALRM, and the
grader kills the whole sandbox when no answer comes within the limit plus a grace period.
Memory: RLIMIT_DATA in the runner (torch's CUDA build reserves ~4 GB of address space, so
RLIMIT_AS is not usable) and a grader-side watchdog on the sandbox's total PSS. When the sandbox
dies or hangs in a cell, that cell is marked crashed/timeout and skipped on the restart, which
replays the other cells; when it dies in a request, that request fails and the next one restarts
it. Restarts and total time are capped.

CPU and time are the student's own (issue 19). Each sandbox runs in a cpu cgroup of its own
(``cgroups.CpuCap``: equal weight, a quota of ``Limits.cpu_cores``), joined like the pids and memory
cgroups before the sandbox runs anything (cold: Popen's preexec_fn; warm: ``zygote`` adds the
child's host pid before it goes on), so busy processes in sessions of their own stay in it. The
notebook's cells share a budget (``Limits.notebook_seconds``): the cell that uses it up is
stopped and the cells after it are not run, nor replayed (``not_reached``, ``budget_reason``;
the plugin fails every check of an exercise whose answer cell was not reached with that reason).

Disk. Everything graded code can write is one tmpfs per sandbox start, mounted with
``size=Limits.disk_bytes`` and ``nr_inodes=Limits.disk_files``: it holds the scratch home (a copy
of the submission folder, fastai's archive/storage/model folders), /tmp and /dev/shm, bound in
by bubblewrap; every other mount inside is read-only (``bwrap_args.read_only_else`` checks
this, and tests/test_sandbox.py audits the mount table from inside). The tmpfs is mounted by
``disk_quota.py``, run by ``unshare --mount`` in a mount namespace of the sandbox's own, so the host never sees it and the kernel
frees it when the sandbox's last process ends, even if the grader is killed. Going over the
quota fails the write (ENOSPC, the student's error); a cell or request that leaves the quota
(nearly) full is charged: the cell counts as failed with the reason and the sandbox restarts,
fresh, replaying the other cells. Per file, RLIMIT_FSIZE still applies.
Memory-backed: tmpfs pages are in no process's PSS and RLIMIT_DATA does not count them; the
kernel charges them to the memory cgroup of the process that writes them (checked with cgroup
v1 here: memory.stat's shmem grew by what a process wrote into a tmpfs, and fell back to 0 when
its mount namespace ended). So they count against the memory limit twice over: the sandbox runs
in a memory cgroup of its own limited to memory + slack (``cgroups.MemoryCap``, where the machine
allows one; it also bounds memfd files and SysV shared memory, which nothing else sees), and
the watchdog adds the quota's used bytes to the sandbox's PSS.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from mnistkit.grading import scratch
from mnistkit.grading.bwrap_args import (bwrap_base, data_view, env_args,  # noqa: F401
                                         read_only_else, view_args)
from mnistkit.grading.cgroups import CpuCap, MemoryCap, ProcessCap, pss  # noqa: F401
from mnistkit.grading.launchers import COLD
from mnistkit.grading.launchers import SandboxDied as _Died
from mnistkit.grading.launchers import SandboxHung as _Hung
from mnistkit.grading.left_out import LEFT_OUT, cells_left_out
from mnistkit.grading.sandbox_policy import (HOME, SANDBOX_UID, TOOLS, UNSHARE,  # noqa: F401
                                             Limits, Policy, default_data_dir)
from mnistkit.grading.sandbox_process import RunnerProcess, gib
from mnistkit.grading.student import (CellRun, NotDefined, NotPlainData, Student,
                                      StudentCodeError, StudentCrashed, StudentTimeout,
                                      SubmissionProblem, code_cells)
from mnistkit.grading.warm_launcher import ForkClient, WarmLauncher

# Names other modules and tests know from here (they now live in the modules above).
_ProcessCap, _MemoryCap, _CpuCap, _default_data_dir = ProcessCap, MemoryCap, CpuCap, \
    default_data_dir
# A sandbox that cannot start is the grading machine's problem, never the student's: this
# prefix marks it in the cells' messages (mnistkit.grading.preflight looks for it).
START_FAILED = "the sandbox did not start"


def _message(answer: dict, default: str) -> str:
    message = answer.get("message")
    return message[:1000] if isinstance(message, str) and message else default


class SandboxStudent(Student):
    """The submission under grade, run in a bubblewrap sandbox (see the module docstring).

    ``cells``: one CellRun per code cell (status ok | error | timeout | crashed | skipped |
    left out: ``left_out.cells_left_out``).
    ``outputs``: cell index -> the tail of what that cell printed (for diagnostics).
    ``restarts``: how many times the sandbox was restarted; ``start_seconds``: the first start.
    """

    def __init__(self, notebook_path: Path, *, limits: Limits = Limits(),
                 data_dir: Path | None = None):
        self.limits = limits
        self.notebook_path = Path(notebook_path)
        self.cells: list[CellRun] = []
        self.outputs: dict[int, str] = {}
        self.restarts = 0
        self.start_seconds = 0.0
        self._sources = code_cells(self.notebook_path)
        self._left_out = cells_left_out(self.notebook_path)   # never run, nor replayed
        self._skip: set[int] = set(self._left_out)
        self._box: RunnerProcess | None = None
        self._boxes: list[RunnerProcess] = []     # every start, for ``resources``
        self.longest_request = 0.0       # seconds: a4's is the student's model training
        self._broken: str | None = None
        self._deadline = time.monotonic() + limits.total_seconds
        # The notebook's budget (Limits.notebook_seconds): what its cells took on their first
        # run. Cells past it are not run; ``not_reached`` are their indices, ``budget_reason``
        # says why (the plugin scores the exercises whose answer cells they are 0 with it).
        self.notebook_seconds_used = 0.0
        self.not_reached: set[int] = set()
        self.budget_reason: str | None = None
        data_dir = default_data_dir(data_dir)
        self._policy = Policy.of(limits, data_dir)   # what every start of this sandbox gets
        # The warm start, when this grader was handed a fork server (mnistkit.grading.zygote):
        # the scratch folder then lies in its inbox, where the child copies its home from.
        self._warm = ForkClient.inherited(limits, data_dir)
        inbox = str(self._warm.inbox) if self._warm is not None else None
        self._scratch = Path(tempfile.mkdtemp(prefix="mnistkit-sandbox-", dir=inbox))
        # Removed even if nobody calls close() (the sandbox itself dies with this process).
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._scratch), True)
        try:
            self._home = scratch.prepare(self._scratch, self.notebook_path, limits)
            self._data_dir = data_dir
            self._run_notebook()
        except BaseException:
            self.close()
            raise

    # ---- the sandbox's lifetime ---------------------------------------------------------------
    def _left(self) -> float:
        return self._deadline - time.monotonic()

    def _out_of_time(self) -> bool:
        if self._left() <= 0:
            self._give_up(f"grading your notebook took longer than the "
                          f"{self.limits.total_seconds / 60:g} minutes allowed in total")
            return True
        return False

    def _give_up(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        if self._box is not None:
            self._box.close()
            self._box = None

    def _start(self) -> None:
        """A fresh sandbox, ready for requests (cells not yet run)."""
        if self._box is not None:
            self._box.close()
            self._box = None
        start = time.monotonic()
        try:
            launcher = WarmLauncher(self._warm) if self._warm is not None else COLD
            self._box = RunnerProcess(self._scratch, self._policy, launcher)
            self._boxes.append(self._box)
            ready = self._box.exchange(None, min(self.limits.start_seconds, max(self._left(), 1)))
        except (_Died, _Hung, SubmissionProblem) as exc:
            output = self._box.take_output() if self._box is not None else ""
            if self._box is not None:
                self._box.close()
            self._box = None
            if self._warm is not None:   # the warm start failed before any student code ran:
                self._warm = None        # the grading goes on with cold sandboxes
                print(f"mnistkit: warm start failed ({exc or 'timeout'}: {output[-300:]}); "
                      "cold sandboxes from here", file=sys.stderr)
                return self._start()
            raise _Died(f"{START_FAILED} ({exc or 'timeout'}): {output[-500:]}") from None
        if ready.get("status") != "ready":
            self._drop_box()
            raise _Died(START_FAILED)
        self.start_seconds = self.start_seconds or time.monotonic() - start

    def _restart(self, upto: int) -> bool:
        """Restart and replay cells [0, upto) that are not skipped; False when out of restarts.
        A replayed cell that now kills the sandbox is skipped too and the restart repeated."""
        while True:
            if self._broken:
                return False
            if self.restarts >= self.limits.restarts:
                self._give_up(f"your notebook's process crashed or hung {self.restarts + 1} times; "
                              "the grader stopped asking it questions")
                return False
            if self._out_of_time():
                return False
            self.restarts += 1
            self._replaying = None
            try:
                self._start()
                for index in range(upto):
                    if index not in self._skip:
                        self._cell(index)
                        self._box.take_output()
                        if self._box.disk_full():   # replayed differently: charge it again
                            self._skip.add(index)
                            raise _Died("the disk quota is full")
                return True
            except (_Died, _Hung) as exc:
                if isinstance(exc, _Died) and str(exc).startswith(START_FAILED):
                    # out of total time is the notebook's doing; anything else the machine's
                    if not self._out_of_time():
                        self._give_up(str(exc))
                    return False
                if self._replaying is not None:
                    self._skip.add(self._replaying)
                self._drop_box()

    _replaying: int | None = None

    def _budget_left(self) -> float:
        return self.limits.notebook_seconds - self.notebook_seconds_used

    def _over_budget(self, index: int) -> str:
        """The reason the cells from ``index`` on are not run, naming the last cell that ran
        (in the words ``cell_places`` gives a student) so that they know where to cut."""
        if self.budget_reason is None:
            ran = [c.index for c in self.cells if c.index < index and c.status != LEFT_OUT]
            where = "the notebook's start"
            if ran:
                from mnistkit.cell_places import notebook_places
                places = notebook_places(self.notebook_path)
                if ran[-1] < len(places):
                    where = places[ran[-1]]
            self.budget_reason = (f"your notebook used its {self.limits.notebook_seconds:g} s; "
                                  f"the cells after {where} were not run")
        return self.budget_reason

    def _cell(self, index: int, timeout: float | None = None) -> dict:
        self._replaying = index
        source = self._sources[index][1]
        timeout = min(self.limits.cell_seconds if timeout is None else timeout,
                      max(self._left(), 0.001))
        answer = self._box.exchange(dict(op="cell", source=source, timeout=timeout),
                                    timeout + self.limits.grace_seconds)
        self._replaying = None
        return answer

    def _run_notebook(self) -> None:
        try:
            self._start()
        except _Died as exc:
            self._give_up(str(exc))
        for index, (grade_id, _) in enumerate(self._sources):
            if index in self._left_out:
                self.cells.append(CellRun(index, grade_id, LEFT_OUT, 0.0))
                continue
            if self._broken or self._out_of_time():
                self.cells.append(CellRun(index, grade_id, "skipped", 0.0, self._broken or ""))
                continue
            if self._budget_left() <= 0:   # the notebook's time is spent: the rest is not run
                self._skip.add(index)      # nor replayed by a restart
                self.not_reached.add(index)
                self.cells.append(CellRun(index, grade_id, "skipped", 0.0,
                                          self._over_budget(index)))
                continue
            if (self._box is None or not self._box.alive()) and not self._restart(index):
                self.cells.append(CellRun(index, grade_id, "skipped", 0.0, self._broken or ""))
                continue
            budget = self._budget_left()
            cut_by_budget = budget < self.limits.cell_seconds
            start = time.monotonic()
            try:
                answer = self._cell(index, min(self.limits.cell_seconds, budget))
            except _Hung:
                self._skip.add(index)
                self.outputs[index] = self._drop_box()
                self.cells.append(CellRun(index, grade_id, "timeout", time.monotonic() - start,
                                          self._stopped_text(index, cut_by_budget)))
                continue
            except _Died as exc:
                self._skip.add(index)
                self.outputs[index] = self._drop_box()
                self.cells.append(CellRun(index, grade_id, "crashed", time.monotonic() - start,
                                          f"your notebook's cell {index + 1}: {exc}"))
                continue
            except SubmissionProblem as exc:
                self._skip.add(index)
                self.outputs[index] = self._drop_box()
                self.cells.append(CellRun(index, grade_id, "error", time.monotonic() - start,
                                          str(exc)))
                continue
            finally:   # however it ended, its time was the notebook's
                self.notebook_seconds_used += time.monotonic() - start
            self.outputs[index] = self._box.take_output()
            status = answer.get("status")
            seconds = time.monotonic() - start
            if self._box.disk_full():
                self._skip.add(index)
                self._drop_box()
                self.cells.append(CellRun(index, grade_id, "error", seconds,
                                          self._disk_text(f"your notebook's cell {index + 1}")))
            elif status == "timeout":
                self.cells.append(CellRun(index, grade_id, "timeout", seconds,
                                          self._stopped_text(index, cut_by_budget)))
            elif status == "error":
                self.cells.append(CellRun(index, grade_id, "error", seconds,
                                          _message(answer, "error")))
            else:
                self.cells.append(CellRun(index, grade_id, "ok" if status == "ok" else "error",
                                          seconds, "" if status == "ok" else _message(answer, "")))

    def _drop_box(self) -> str:
        """Kill and forget the sandbox; returns the tail of its output."""
        if self._box is None:
            return ""
        output = self._box.take_output()
        self._box.close()
        self._box = None
        return output

    def _disk_text(self, what: str) -> str:
        lim = self.limits
        return (f"{what} filled the notebook's disk quota ({gib(lim.disk_bytes)} or "
                f"{lim.disk_files:,} files and folders, home, /tmp and /dev/shm together): it "
                "counts as failed, and the notebook was restarted without what it wrote")

    def _stopped_text(self, index: int, cut_by_budget: bool) -> str:
        """Why a cell that ran out of time was stopped: its own limit, or (when the notebook's
        budget was the shorter) the budget, which makes it the first cell not reached."""
        if cut_by_budget:
            self.not_reached.add(index)
            return self._over_budget(index)
        return self._timeout_text(index)

    def _timeout_text(self, index: int) -> str:
        return (f"your notebook's cell {index + 1} ran longer than "
                f"{self.limits.cell_seconds:g} s and was stopped")

    # ---- requests -----------------------------------------------------------------------------
    def _request(self, request: dict, what: str, seconds: float | None = None) -> dict:
        if self._broken:
            raise SubmissionProblem(self._broken)
        if self._out_of_time():
            raise SubmissionProblem(self._broken)
        if self._box is None or not self._box.alive():
            self._drop_box()
            if not self._restart(len(self._sources)):
                raise SubmissionProblem(self._broken or "your notebook could not be restarted")
        limit = self.limits.request_seconds if seconds is None else seconds
        timeout = min(limit, max(self._left(), 0.001))
        request["timeout"] = timeout
        began = time.monotonic()
        try:
            answer = self._box.exchange(request, timeout + self.limits.grace_seconds)
        except _Hung:
            self._drop_box()
            raise StudentTimeout(f"{what} did not finish within {timeout:g} s "
                                 "(the notebook process was stopped)") from None
        except _Died as exc:
            self._drop_box()
            raise StudentCrashed(f"{exc} while running {what}") from None
        except SubmissionProblem:   # an answer that did not decode: this request fails, in step
            self._box.take_output()
            raise
        self.longest_request = max(self.longest_request, time.monotonic() - began)
        self._box.take_output()
        if self._box.disk_full():
            self._drop_box()
            raise StudentCodeError(self._disk_text(what))
        status = answer.get("status")
        if status == "timeout":
            raise StudentTimeout(f"{what} did not finish within {timeout:g} s")
        if status == "notdefined":
            raise NotDefined(str(request.get("name")))
        if status == "notplain":
            raise NotPlainData(_message(answer, f"{what} returned something that is not plain data"))
        if status == "error":
            raise StudentCodeError(_message(answer, f"{what} raised an error"))
        if status != "ok":
            raise SubmissionProblem(_message(answer, f"your notebook could not answer about {what}"))
        return answer

    def has(self, name: str) -> bool:
        value = self._request(dict(op="has", name=name), f"`{name}`").get("value")
        if not isinstance(value, bool):
            raise SubmissionProblem("your notebook sent an answer the grader cannot read")
        return value

    def get(self, name: str) -> Any:
        return self._request(dict(op="get", name=name), f"`{name}`").get("value")

    def call(self, name: str, *args, **kwargs) -> Any:
        return self._request(dict(op="call", name=name, args=list(args), kwargs=kwargs),
                             f"`{name}`").get("value")

    def run(self, code: str, **inputs) -> Any:
        return self._request(dict(op="run", code=code, inputs=inputs), "your code").get("value")

    def run_for(self, seconds: float, code: str, **inputs) -> Any:
        return self._request(dict(op="run", code=code, inputs=inputs), "your code",
                             seconds=seconds).get("value")

    def rebind(self, source: str) -> None:
        self._request(dict(op="rebind", source=source), "your answer")

    def resources(self) -> dict:
        """For the instructor's report: how the sandbox ran (warm or cold, restarts, the first
        start's seconds, the most memory its cgroup held at once, where one was available)."""
        peaks = [b.peak_bytes for b in self._boxes if b.peak_bytes]
        return dict(warm=self._warm is not None, restarts=self.restarts,
                    start_seconds=round(self.start_seconds, 2),
                    longest_request_seconds=round(self.longest_request, 2),
                    notebook_seconds=round(self.notebook_seconds_used, 2),
                    cpu_quota_cores=next((b.cpu_quota for b in self._boxes if b.cpu_quota),
                                         None),
                    peak_memory_mb=round(max(peaks) / 2**20) if peaks else None)

    def close(self) -> None:
        if self._box is not None:
            self._box.close()
            self._box = None
        self._broken = self._broken or "the grader has finished with this notebook"
        self._cleanup()
