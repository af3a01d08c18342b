"""Runs a student's notebook inside the sandbox, one request at a time. STAND-ALONE script.

Started by ``mnistkit.grading.sandbox`` inside bubblewrap, where the repository (and so
mnistkit) is not visible: it imports only the standard library, IPython, numpy and the plain-data
codec ``wire.py``, loaded by file path.

Protocol: requests arrive on stdin, answers leave on the fd named by ``--answer-fd``; each is a
frame: 4-byte big-endian length, then a ``wire`` payload (a dict). stdin is replaced by
/dev/null before any student code runs, so the student cannot read the grader's requests;
stdout/stderr are the student's (the grader keeps only their tail).

Requests (``op``): ``cell`` (source, timeout), ``has``/``get`` (name), ``call`` (name, args,
kwargs), ``run`` (code, inputs), each with ``timeout``. Answers: ``{"status": ..., ...}`` where
status is ok | error | timeout | notdefined | notplain | problem.
Before each cell and each request ``random``, numpy and (if imported) torch are seeded with
``SEED``: the same submission gives the same outputs.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import resource
import signal
import struct
import sys
import time

SEED = 0
MAX_REQUEST = 1 << 30
RUNNER_PID = 0                  # set in main(); a forked copy of the runner has another pid


class _Alarm(BaseException):
    """Raised in student code when its time is up (a BaseException, like KeyboardInterrupt)."""


_fired = [False]


def _on_alarm(signum, frame):
    _fired[0] = True
    raise _Alarm()


class _Limit:
    """Interrupt the code inside after ``seconds``, then again every second (a student loop that
    swallows the first interrupt gets more; one that swallows all of them is killed by the grader)."""

    def __init__(self, seconds: float):
        self.seconds = max(float(seconds), 0.001)

    def __enter__(self):
        _fired[0] = False
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds, 1.0)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        return False


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _exception_line(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except BaseException:  # a student exception whose __str__ fails
        return type(exc).__name__[:200]


def _seed() -> None:
    try:
        random.seed(SEED)
        np = sys.modules.get("numpy")
        if np is not None:
            np.random.seed(SEED)
        torch = sys.modules.get("torch")
        if torch is not None and hasattr(torch, "manual_seed"):
            torch.manual_seed(SEED)
    except Exception:
        pass


def _set_limits(args) -> None:
    def limit(which, value):
        if value and value > 0:
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError) as exc:
                print(f"runner: could not set limit {which}: {exc}", file=sys.stderr)
    limit(resource.RLIMIT_DATA, args.memory)
    limit(resource.RLIMIT_FSIZE, args.fsize)
    limit(resource.RLIMIT_CORE, 0)
    limit(resource.RLIMIT_NOFILE, 1024)


class Runner:
    def __init__(self, wire, shell):
        self.wire = wire
        self.shell = shell
        self.ns = shell.user_ns

    # ---- one request each; every method returns the answer dict --------------------------
    def op_cell(self, req):
        source = req["source"]
        start = time.perf_counter()
        try:
            with _Limit(req["timeout"]):
                result = self.shell.run_cell(source, silent=True, store_history=False)
        except _Alarm:  # fired outside the student's code, in IPython's bookkeeping
            return dict(status="timeout", seconds=time.perf_counter() - start)
        seconds = time.perf_counter() - start
        err = result.error_in_exec or result.error_before_exec
        if _fired[0] or isinstance(err, _Alarm):
            return dict(status="timeout", seconds=seconds)
        if not result.success:
            return dict(status="error", seconds=seconds,
                        message=_exception_line(err) if err else "error")
        return dict(status="ok", seconds=seconds)

    def op_has(self, req):
        return dict(status="ok", value=req["name"] in self.ns)

    def op_get(self, req):
        name = req["name"]
        if name not in self.ns:
            return dict(status="notdefined")
        return dict(status="ok", value=self.ns[name])

    def op_call(self, req):
        name = req["name"]
        if name not in self.ns:
            return dict(status="notdefined")
        function = self.ns[name]
        if not callable(function):
            return dict(status="problem", message=f"`{name}` is not a function")
        try:
            with _Limit(req["timeout"]):
                value = function(*req["args"], **req["kwargs"])
        except _Alarm:
            return dict(status="timeout")
        except Exception as exc:
            return dict(status="error", message=f"`{name}` raised {_exception_line(exc)}")
        if _fired[0]:
            return dict(status="timeout")
        return dict(status="ok", value=value)

    def op_run(self, req):
        scope = dict(self.ns)
        scope.update(req["inputs"])
        try:
            with _Limit(req["timeout"]):
                exec(compile(req["code"], "<grader probe>", "exec"), scope)
        except _Alarm:
            return dict(status="timeout")
        except Exception as exc:
            return dict(status="error", message=f"your code raised {_exception_line(exc)}")
        if _fired[0]:
            return dict(status="timeout")
        if "result" not in scope:
            return dict(status="error", message="the check produced no result")
        return dict(status="ok", value=scope["result"])

    def op_rebind(self, req):
        """Define again, in the notebook's namespace, the code the grader read (the student's own
        definitions, sent back by ``plugin.rebind_read_code``) before it questions an exercise."""
        try:
            with _Limit(req["timeout"]):
                exec(compile(req["source"], "<your answer, as the grader read it>", "exec"), self.ns)
        except _Alarm:
            return dict(status="timeout")
        except Exception as exc:
            return dict(status="error", message=f"your answer raised {_exception_line(exc)} when "
                                                "the grader defined it again")
        if _fired[0]:
            return dict(status="timeout")
        return dict(status="ok")

    def answer(self, req) -> bytes:
        """Handle and encode under one time limit: encoding a student value runs their code too."""
        rid = req.get("id")             # echoed, so the grader can tell a stale answer

        def encode(reply):
            reply["id"] = rid
            return self.wire.encode(reply)

        handler = getattr(self, "op_" + str(req.get("op")), None)
        if handler is None:
            return encode(dict(status="problem", message=f"unknown request {req.get('op')!r}"))
        _seed()
        try:
            reply = handler(req)
            if os.getpid() != RUNNER_PID:   # a process the student forked got back here: not ours
                os._exit(0)
            with _Limit(req.get("timeout", 60)):
                return encode(reply)
        except _Alarm:
            return encode(dict(status="timeout"))
        except self.wire.WireError as exc:
            return encode(dict(status="notplain", message=str(exc)[:500]))
        except Exception as exc:  # a student object that breaks encoding in another way
            return encode(dict(status="notplain",
                               message=f"the value could not be sent: {_exception_line(exc)}"))


def main(argv=None) -> int:
    """The cold start: bubblewrap started this process for one notebook."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--wire", required=True, help="path of wire.py")
    parser.add_argument("--answer-fd", type=int, required=True)
    parser.add_argument("--memory", type=int, default=0, help="RLIMIT_DATA in bytes")
    parser.add_argument("--fsize", type=int, default=0, help="RLIMIT_FSIZE in bytes")
    parser.add_argument("--preload", action="append", default=[],
                        help="import this module before any student code (torch: so that a "
                             "student cell interrupted mid-import cannot break decoding)")
    args = parser.parse_args(argv)
    # The protocol fds move out of the student's way: requests on a private fd, stdin = /dev/null.
    request_fd = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return serve(load_wire(args.wire), request_fd, args.answer_fd, memory=args.memory,
                 fsize=args.fsize, preload=args.preload)


def load_wire(path: str):
    spec = importlib.util.spec_from_file_location("mnistkit_wire", path)
    wire = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wire)
    return wire


def serve(wire, request_fd: int, answer_fd: int, *, memory: int = 0, fsize: int = 0,
          preload=()) -> int:
    """Answer requests until the grader hangs up. Also the warm start's entry point
    (forkserver.py calls it in a forked child that has entered its own namespaces)."""
    os.set_inheritable(request_fd, False)
    os.set_inheritable(answer_fd, False)
    # A process the student forks must never read the grader's requests or write answers.
    global RUNNER_PID
    RUNNER_PID = os.getpid()
    os.register_at_fork(after_in_child=lambda: [_close_quietly(fd) for fd in (request_fd, answer_fd)])

    _set_limits(argparse.Namespace(memory=memory, fsize=fsize))
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception as exc:
            print(f"runner: could not preload {module}: {exc}", file=sys.stderr)
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):  # no event loop here: `%matplotlib inline` just works
            pass

    shell = Shell.instance(colors="nocolor")
    runner = Runner(wire, shell)
    _write_all(answer_fd, _frame(wire.encode(dict(status="ready", pid=os.getpid()))))

    while True:
        header = _read_exact(request_fd, 4)
        if header is None:
            return 0
        (length,) = struct.unpack(">I", header)
        if length > MAX_REQUEST:
            return 2
        payload = _read_exact(request_fd, length)
        if payload is None:
            return 0
        try:
            req = wire.decode(payload)
        except Exception as exc:
            out = wire.encode(dict(status="problem", message=f"bad request: {exc}"))
        else:
            out = runner.answer(req)
        _write_all(answer_fd, _frame(out))
        sys.stdout.flush()
        sys.stderr.flush()


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


if __name__ == "__main__":
    sys.exit(main())
