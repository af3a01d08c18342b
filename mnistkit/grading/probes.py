"""Probe code the hidden tests share, as source text.

Probes run inside the sandbox, where mnistkit cannot be imported, so a helper they need travels
as text that a hidden test puts in front of its own probe (``student.run(TORCH_CALLS + code)``).
"""

TORCH_CALLS = '''
from torch.overrides import TorchFunctionMode as _TorchFunctionMode


class TorchCalls(_TorchFunctionMode):
    """Inside ``with TorchCalls() as calls:``, ``calls.names`` lists the torch functions called,
    in order, and ``len(calls)`` counts them. Technique checks without timing: a Python loop over
    a batch makes more calls for a bigger batch, broadcasting does not; a hand-written softmax
    calls no ``softmax``."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __len__(self):
        return len(self.names)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))
'''
