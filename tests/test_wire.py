"""What crosses between a student's sandbox and the grader: plain data only, exactly."""
import io
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from mnistkit.grading.wire import WireError, decode, encode

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.uint8, torch.bool]


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=4), dtype=st.sampled_from(DTYPES),
       requires_grad=st.booleans())
def test_tensors_round_trip_exactly(shape, dtype, requires_grad):
    """Does a tensor of any shape (0-d included) and dtype come back identical?"""
    t = (torch.rand(shape) * 100).to(dtype)
    grad = requires_grad and dtype.is_floating_point
    if grad:
        t.requires_grad_()
    back = decode(encode(t))
    assert back.shape == t.shape and back.dtype == t.dtype and back.requires_grad == grad
    assert torch.equal(back.detach(), t.detach())


def test_nested_plain_values_round_trip():
    """Do numbers, strings, None, lists, tuples and str-keyed dicts keep their types?"""
    value = {"a": [1, 2.5, None, True, "x", (3, float("inf"))], "b": np.arange(3), "c": torch.Size([2, 3])}
    back = decode(encode(value))
    assert back["a"] == [1, 2.5, None, True, "x", (3, float("inf"))]
    assert np.array_equal(back["b"], np.arange(3)) and back["c"] == (2, 3)


@pytest.mark.parametrize("value", [object(), {1: 2}, np.array([object()]), lambda: 1])
def test_objects_that_are_not_plain_data_are_refused(value):
    """Is anything that is not plain data refused instead of being pickled?"""
    with pytest.raises(WireError):
        encode(value)


def test_a_pickle_payload_is_never_unpickled():
    """Does a payload carrying a pickle fail to decode rather than run code?"""
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(b'{"t": "ndarray", "i": 0}', dtype=np.uint8),
             a0=np.array([Boom()], dtype=object))
    with pytest.raises(WireError):
        decode(buffer.getvalue())
    with pytest.raises(WireError):
        decode(pickle.dumps(Boom()))
