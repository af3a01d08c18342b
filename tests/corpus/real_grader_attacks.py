"""Attacks on the grader itself through a real assignment (issue 10, classes 4 and 7).

One submission, one grading, two attacks, both through a forged runner (the student's answer
cell finds the sandbox runner's object with ``gc`` and replaces its ``encode``, which the student
owns like everything in the sandbox):

- ``l1_distance`` raises, and the forged runner swaps the error message for 20 KB of terminal
  escapes (erase line, cursor up, clear screen), carriage returns and a fake green
  "l1_distance 2 / 2". It deserves 0; the message must reach no terminal or results.json raw.
- ``rmse_distance``'s answers are replaced by a 60-odd KB npz whose JSON tree inflates to
  64 MiB (a list of millions of empty lists, deflate-compressed): before the wire was bounded,
  decoding one took the grader from ~0.7 GB to over 2 GB. It deserves 0, and the grader must
  refuse it before parsing, without restarting the sandbox (nothing else may be lost).

Forging the runner takes `import gc`, an evasion for the grader's source checks; it sits in
rmse_distance's answer cell, so it counts against that exercise only (nothing else may be lost).

tests/test_grade_hostile_output.py grades the same submission with `mnistkit grade` and checks
the terminal output and results.json for control characters.
"""
from __future__ import annotations

from .real import Case

FORGED_RUNNER = r'''
import gc, io, json
import numpy as np

def rmse_distance(a, b):
    return ((a - b) ** 2).mean().sqrt()

ESCAPES = ("\x1b[2K\r\x1b[1A\x1b[2K\r\x1b[32;1ml1_distance                      2 / 2\x1b[0m"
           "\x1b]0;all tests passed\x07\x1b[2J\x1b[H\r\b\b\b")

def _bomb() -> bytes:
    inner = '{"t": "list", "v": []}, ' * ((64 << 20) // 24)
    meta = '{"t": "dict", "v": {"status": {"t": "atom", "v": "ok"}, "value": {"t": "list", "v": [' \
           + inner + '{"t": "list", "v": []}]}}}'
    buffer = io.BytesIO()
    np.savez_compressed(buffer, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8))
    return buffer.getvalue()

BOMB = _bomb()

def _forge(runner):
    honest = runner.wire.encode

    class Wire:
        WireError = runner.wire.WireError
        decode = staticmethod(runner.wire.decode)

        @staticmethod
        def encode(reply):
            message = str(reply.get("message", "")) if isinstance(reply, dict) else ""
            if "l1_distance" in message:
                reply = dict(reply, message=ESCAPES + "x" * 20000)
            forge, FORGE_NEXT[0] = FORGE_NEXT[0], False   # only the answer to that call
            if forge and isinstance(reply, dict) and reply.get("status") == "ok" \
                    and type(reply.get("value")).__name__ == "Tensor":
                return BOMB
            return honest(reply)
    runner.wire = Wire

FORGE_NEXT = [False]
_plain_rmse = rmse_distance

def rmse_distance(a, b):
    FORGE_NEXT[0] = True         # the answer to this call is replaced by the bomb
    return _plain_rmse(a, b)

for obj in gc.get_objects():
    if type(obj).__name__ == "Runner" and hasattr(obj, "wire") and not isinstance(obj.wire, type):
        _forge(obj)
'''

CASES = [
    Case(
        assignment="a1_pixel_similarity",
        name="hostile_messages_and_inflating_answers",
        attack="4 and 7: forged runner sends terminal escapes and an answer inflating to 64 MiB",
        answers={
            "l1_distance": "def l1_distance(a, b):\n"
                           "    raise ValueError('l1_distance: ' + '\\x1b[2J' * 50)\n",
            "rmse_distance": FORGED_RUNNER,
        },
        deserves={"l1_distance": 0.0, "rmse_distance": 0.0},
        may_also_lose={ex: "the forged runner reaches the runner through `gc`, which can change "
                       "any answer: it costs every technique check (issue 18)"
                       for ex in ("odd_doubled", "mnist_distance")},
    ),
]
