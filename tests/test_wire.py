"""What crosses between a student's sandbox and the grader: plain data only, exactly."""
import io
import json
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


# --- bounded decoding: a hostile sender (a forged runner) costs the grader next to nothing ----

def _npz(meta: bytes, compress=False, **arrays) -> bytes:
    buffer = io.BytesIO()
    save = np.savez_compressed if compress else np.savez
    save(buffer, __meta__=np.frombuffer(meta, dtype=np.uint8), **arrays)
    return buffer.getvalue()


def _peak_python_bytes(fn) -> int:
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_an_inflating_answer_is_refused_before_parsing():
    """Is a ~60 KB answer whose JSON tree inflates to 64 MiB refused with under 1 MiB of work
    (json.loads of it took the grader from 0.7 to 2.2 GB)?"""
    meta = b'{"t": "list", "v": [' + b'{"t": "list", "v": []}, ' * ((64 << 20) // 24) + b'1]}'
    payload = _npz(meta, compress=True)
    assert len(payload) < 200_000

    def attempt():
        with pytest.raises(WireError):
            decode(payload)
    assert _peak_python_bytes(attempt) < 1 << 20


def test_many_tiny_items_within_the_size_bound_are_refused_cheaply():
    """Is a tree of millions of empty lists that fits the size bound refused before json.loads?"""
    from mnistkit.grading import wire
    meta = b"[" + b"[]," * ((wire.MAX_META_BYTES - 10) // 3) + b"[]]"
    payload = _npz(meta)

    def attempt():
        with pytest.raises(WireError, match="too many items"):
            decode(payload)
    assert _peak_python_bytes(attempt) < 3 * wire.MAX_META_BYTES


@pytest.mark.parametrize("attack", ["deep", "too_many_nodes", "long_string", "lying_header",
                                    "repeated_array", "too_many_arrays", "big_array"])
def test_malformed_or_oversized_payloads_are_wire_errors(attack):
    """Does every payload over a bound, or lying about its arrays, fail as WireError (never
    another exception, never a value)?"""
    from mnistkit.grading import wire
    node = '{"t": "atom", "v": null}'
    if attack == "deep":
        payload = _npz(('{"t": "list", "v": [' * 5000 + node + "]}" * 5000).encode())
    elif attack == "too_many_nodes":
        payload = _npz(('{"t": "list", "v": [' + ", ".join([node] * (wire.MAX_ITEMS + 1))
                        + "]}").encode())
    elif attack == "long_string":
        payload = _npz(json.dumps({"t": "atom", "v": "x" * (wire.MAX_STRING + 1)}).encode())
    elif attack == "lying_header":
        good = encode(torch.zeros(4))
        payload = good.replace(b"'shape': (4,)", b"'shape': (9,)")
        assert payload != good
    elif attack == "repeated_array":
        payload = _npz(b'{"t": "list", "v": [{"t": "ndarray", "i": 0}, {"t": "ndarray", "i": 0}]}',
                       a0=np.zeros(3))
    elif attack == "too_many_arrays":
        arrays = {f"a{i}": np.zeros(1) for i in range(wire.MAX_ARRAYS + 1)}
        payload = _npz(b'{"t": "atom", "v": null}', **arrays)
    else:
        payload = _npz(b'{"t": "ndarray", "i": 0}', a0=np.zeros(1000, dtype=np.uint8))
        with pytest.raises(WireError, match="larger"):
            decode(payload, max_bytes=500)
        assert decode(payload, max_bytes=2000).shape == (1000,)
        return
    with pytest.raises(WireError):
        decode(payload)


def test_honest_values_near_the_bounds_still_cross():
    """Do a 50,000-item list, a thousand tensors and a long string still round trip, and are
    values over the bounds refused by encode with a message (where the sender can say so)?"""
    from mnistkit.grading import wire
    value = {"numbers": list(range(50_000)), "tensors": [torch.full((2,), float(i)) for i in range(1000)],
             "text": "y" * 100_000}
    back = decode(encode(value))
    assert back["numbers"] == value["numbers"] and back["text"] == value["text"]
    assert all(torch.equal(a, b) for a, b in zip(back["tensors"], value["tensors"]))
    with pytest.raises(WireError, match="too long"):
        encode("z" * (wire.MAX_STRING + 1))
    with pytest.raises(WireError, match="tensors/arrays"):
        encode([np.zeros(1)] * (wire.MAX_ARRAYS + 1))
