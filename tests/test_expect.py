"""Can a hidden test's comparison be fooled by the kind, form, shape or oddity of an answer?

Property tests (hypothesis) for every helper in mnistkit.grading.expect, over answers of every
value kind a student can send back: Python scalars and bools, NumPy scalars and arrays, nested
lists, 0-d and 1-element tensors, NaN and inf. The rules are the ones the module states once,
the notebooks state to students (a tensor where a tensor is asked; a Python number or a rank-0
tensor where a number is asked) and tests/test_prompts.py holds the prompts to.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from mnistkit.grading.expect import (Mismatch, expect_close, expect_dtype, expect_equal,
                                     expect_number, expect_shape, kind_of)

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTS = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
KINDS = {"b": [torch.bool], "i": INTS, "f": FLOATS, "c": [torch.complex64, torch.complex128]}

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def tensor_of(kind, shape, seed, dtype_index=0):
    gen = torch.Generator().manual_seed(seed)
    dtype = KINDS[kind][dtype_index % len(KINDS[kind])]
    if kind == "b":
        return torch.rand(shape, generator=gen) > 0.5
    if kind == "i":
        return torch.randint(0, 100, shape, generator=gen).to(dtype)
    if kind == "c":
        return torch.randn(shape, generator=gen, dtype=dtype)
    return torch.randn(shape, generator=gen).to(dtype)


def forms(t: torch.Tensor):
    """The same values as a student could send them: tensor, NumPy array, nested lists, and for
    one value also a Python scalar and a NumPy scalar."""
    out = [t]
    if t.dtype not in (torch.bfloat16,):
        out.append(t.numpy())
        if torch.tensor(t.tolist()).shape == t.shape:   # lists cannot hold shape (0, 0)
            out.append(t.tolist())
        if t.ndim == 0:
            out.append(t.item())
            out.append(t.numpy()[()])
    return out


def passes(value, reference, **kw) -> bool:
    try:
        expect_close(value, reference, "answer", **kw)
        return True
    except Mismatch:
        return False


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from("bifc"), shape=shapes, seed=st.integers(0, 2**16),
       which=st.integers(0, 4))
def test_a_tensor_answer_passes_at_any_width_and_no_other_form_does(kind, shape, seed, which):
    """Where a tensor is asked (the reference is one), does a right tensor pass at any width of
    its kind, and the same values as a NumPy array, lists or a Python scalar fail, saying that
    a tensor was asked?"""
    want = tensor_of(kind, shape, seed)
    got = want.to(KINDS[kind][which % len(KINDS[kind])])
    assume(kind != "i" or torch.equal(got.to(torch.int64), want.to(torch.int64)))
    tol = dict(rtol=1e-2, atol=1e-2) if got.dtype in (torch.float16, torch.bfloat16, torch.complex64) else {}
    assert passes(got, want, **tol), got.dtype
    for form in forms(got)[1:]:
        with pytest.raises(Mismatch, match="should be a tensor"):
            expect_close(form, want, "answer", **tol)


@settings(max_examples=60, deadline=None)
@given(value=finite, seed=st.integers(0, 2**16))
def test_a_number_is_a_python_number_or_a_rank_0_tensor(value, seed):
    """Where a number is asked (``number=True``, ``expect_number``), do a Python float, a NumPy
    scalar and a rank-0 tensor all pass, and a tensor of shape (1,), a list or an array of one
    value fail?"""
    want = torch.tensor(value, dtype=torch.float32)
    for form in (float(want), np.float32(want), want, want.double(), np.array(float(want))):
        assert passes(form, want, number=True), type(form)
        assert expect_number(form, "n") == pytest.approx(float(want))
    for form in (want.reshape(1), [float(want)], np.array([float(want)]), want.reshape(1, 1)):
        assert not passes(form, want, number=True), form
        with pytest.raises(Mismatch, match="single number"):
            expect_number(form, "n")


@settings(max_examples=40, deadline=None)
@given(value=finite)
def test_a_python_number_is_asked_where_the_reference_is_one(value):
    """Where a Python number is asked (the reference is one: `validate_epoch`'s float), does a
    rank-0 tensor of the same value fail with the hint `.item()`, and the Python number pass?"""
    assert passes(value, value)
    assert passes(np.float64(value), value)
    with pytest.raises(Mismatch, match=r"Python number.*\.item\(\)"):
        expect_close(torch.tensor(value, dtype=torch.float64), value, "validate_epoch(model)")
    assert passes(torch.tensor(value, dtype=torch.float64), value, number=True)


def test_lists_are_compared_item_by_item_in_form():
    """A list of Python floats (`losses`) needs a list of Python numbers; a tensor of the same
    values, a tuple, or a list of tensors is another form. A list of tensors needs tensors."""
    want = [0.5, 0.25, 0.125]
    assert passes([0.5, 0.25, 0.125], want)
    for other in (torch.tensor(want), tuple(want), [torch.tensor(v) for v in want], np.array(want)):
        assert not passes(other, want), type(other)
    pair = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])]
    assert passes([t.clone() for t in pair], pair)
    assert not passes([[1.0, 2.0], [3.0, 4.0]], pair)
    assert passes([], [])


@settings(max_examples=80, deadline=None)
@given(ref_kind=st.sampled_from("bifc"), ans_kind=st.sampled_from("bifc"), shape=shapes,
       seed=st.integers(0, 2**16))
def test_an_answer_of_another_kind_never_passes(ref_kind, ans_kind, shape, seed):
    """Is an answer of another kind (bool for a number, a number for a bool, a float for an
    integer, a real for a complex...) refused, even when its values would match after a cast?"""
    assume(ref_kind != ans_kind and math.prod(shape) > 0)   # (an empty list has no kind)
    want = tensor_of(ref_kind, shape, seed)
    # the values that would pass after converting: the strongest cheat of that kind
    if ans_kind == "b":
        got = want != 0 if ref_kind != "b" else want
    elif ans_kind == "c":
        got = want.to(torch.complex128)
    elif ans_kind == "f":
        got = (want.real if ref_kind == "c" else want).to(torch.float64)
    else:
        got = want.to(torch.int64) if ref_kind != "c" else want.real.to(torch.int64)
    for form in forms(got):
        assert not passes(form, want), (ref_kind, ans_kind, type(form))


@settings(max_examples=40, deadline=None)
@given(shape=shapes.filter(lambda s: math.prod(s) > 0), seed=st.integers(0, 2**16))
def test_true_never_matches_a_numeric_reference(shape, seed):
    """The attack of issue 10: `torch.tensor(True)` or a bool tensor of ones for any number."""
    want = tensor_of("f", shape, seed).abs() + 0.5
    for cheat in (torch.tensor(True), torch.ones(shape, dtype=torch.bool), True,
                  np.ones(shape, dtype=bool)):
        assert not passes(cheat, want)
        assert not passes(cheat, want, kinds="fi")
        assert not passes(cheat, want.reshape(-1)[:1].reshape(()), number=True)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, other=shapes, seed=st.integers(0, 2**16))
def test_shapes_are_exact(shape, other, seed):
    """No broadcasting: an answer of another shape fails even when it broadcasts to the
    reference and holds the same value everywhere."""
    assume(shape != other)
    want = torch.full(shape, 0.25)
    assert not passes(torch.full(other, 0.25), want)


def test_zero_d_and_one_element_are_different_even_where_any_number_is_asked():
    """0-d and 1-element tensors are told apart; `number=True` accepts a Python number or a
    rank-0 tensor, and neither a 1-element tensor nor a list."""
    assert not passes(torch.tensor([2.0]), torch.tensor(2.0))
    assert not passes(torch.tensor(2.0), torch.tensor([2.0]))
    for form in (torch.tensor(2.0), 2.0, np.float32(2.0)):
        assert passes(form, torch.tensor(2.0), number=True)
    for form in (torch.tensor([2.0]), [2.0], np.array([2.0]), torch.tensor([2.0, 2.0])):
        assert not passes(form, torch.tensor(2.0), number=True)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=6), bad=st.sampled_from([math.nan, math.inf, -math.inf]),
       where=st.integers(0, 5))
def test_nan_and_inf_never_pass_for_finite_values(values, bad, where):
    """Does an answer with nan or inf where the reference is finite fail, and does nan match
    only nan?"""
    want = torch.tensor(values, dtype=torch.float64)
    got = want.clone()
    got[where % len(values)] = bad
    assert not passes(got, want)
    assert not passes(got.tolist(), want)
    with_nan = want.clone()
    with_nan[where % len(values)] = math.nan
    assert passes(with_nan.clone(), with_nan)
    assert not passes(want, with_nan)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=8), scale=st.floats(1e-3, 10))
def test_values_outside_the_tolerance_fail(values, scale):
    """Is a value off by more than the tolerance refused, and within it accepted?"""
    want = torch.tensor(values, dtype=torch.float64)
    assert passes(want * (1 + 1e-6), want)
    worse = want.clone()
    worse[0] = worse[0] + scale + abs(float(worse[0])) * 1e-3
    assert not passes(worse, want)


def test_integers_for_a_float_reference_only_where_the_exercise_says_so():
    want = torch.tensor([1.0, 2.0, 3.0])
    assert not passes(torch.tensor([1, 2, 3]), want)
    assert passes(torch.tensor([1, 2, 3]), want, kinds="fi")
    assert passes(torch.tensor([1, 2, 3], dtype=torch.uint8), want, kinds="fi")
    assert not passes([1, 2], [1.0, 2.0])
    assert passes([1, 2], [1.0, 2.0], kinds="fi")
    with pytest.raises(ValueError):            # a bool reference accepts only bools
        expect_close(True, torch.tensor(True), "x", kinds="bi")


@pytest.mark.parametrize("junk", [None, "1.0", b"1", {"a": 1.0}, [[1.0], [1.0, 2.0]], object(),
                                  [torch.tensor(1.0), "x"]])
def test_values_that_are_no_numbers_fail_with_a_reason(junk):
    """Strings, None, dicts, ragged lists: a Mismatch that names the problem, not a crash."""
    with pytest.raises(Mismatch):
        expect_close(junk, torch.tensor([1.0]), "answer")
    with pytest.raises(Mismatch):
        expect_number(junk, "answer")


def test_the_reference_is_never_converted_to_the_answers_kind():
    """A float reference of 0.4 must not 'become' 0 for an integer answer, nor True for a bool
    answer, even when the exercise accepts integers."""
    assert not passes(torch.tensor(0), torch.tensor(0.4), kinds="fi")
    assert not passes(0, 0.4, kinds="fi")
    assert not passes(True, torch.tensor(1.0))
    assert not passes(torch.tensor([1, 0]), torch.tensor([0.6, 0.4]), kinds="fi")


@settings(max_examples=40, deadline=None)
@given(value=st.one_of(st.booleans(), st.integers(-5, 5), finite, st.complex_numbers(max_magnitude=5)))
def test_expect_number_takes_real_numbers_only(value):
    """A bool or a complex number is not a number for `expect_number`; ints and floats are."""
    if isinstance(value, bool) or isinstance(value, complex):
        with pytest.raises(Mismatch):
            expect_number(value, "n")
        with pytest.raises(Mismatch):
            expect_number(torch.tensor(value), "n")
    else:
        assert expect_number(value, "n") == pytest.approx(float(value))
        assert expect_number(torch.tensor(value), "n") == pytest.approx(float(value), rel=1e-6)
        assert expect_number(np.float64(value), "n") == pytest.approx(float(value))
        with pytest.raises(Mismatch):             # a tensor of shape (1,) is not a number
            expect_number(torch.tensor([value]), "n")


@settings(max_examples=60, deadline=None)
@given(value=st.recursive(st.one_of(st.booleans(), st.integers(-3, 3), finite, st.text(max_size=3)),
                          lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.tuples(inner, inner),
                                                  st.dictionaries(st.text(max_size=2), inner, max_size=2)),
                          max_leaves=8))
def test_expect_equal_needs_the_same_types_and_values(value):
    """Plain data must equal the reference with the same types: 1 is not True, 1.0 is not 1,
    a tuple is not a list."""
    expect_equal(value, value, "x")

    def twisted(v):
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return float(v)
        if isinstance(v, float):
            return v + 1.0
        if isinstance(v, str):
            return v + "!"
        if isinstance(v, tuple):
            return list(v)
        if isinstance(v, list):
            return tuple(v) if v else [0]
        return {**v, "extra": 1}
    with pytest.raises(Mismatch):
        expect_equal(twisted(value), value, "x")


def test_expect_equal_on_tensors_checks_kind_and_shape():
    expect_equal(torch.tensor([1, 2]), torch.tensor([1, 2]), "x")
    for wrong in (torch.tensor([True, True]), torch.tensor([1.0, 2.0]), torch.tensor([[1, 2]]), [1, 2]):
        with pytest.raises(Mismatch):
            expect_equal(wrong, torch.tensor([1, 2]), "x")


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from("bif"), shape=shapes, seed=st.integers(0, 2**16))
def test_expect_shape_and_dtype(kind, shape, seed):
    t = tensor_of(kind, shape, seed)
    assert expect_shape(t, shape, "x").shape == t.shape
    assert expect_dtype(t, t.dtype, "x").dtype == t.dtype
    with pytest.raises(Mismatch):
        expect_shape(t, shape + (1,), "x")
    with pytest.raises(Mismatch):
        expect_dtype(t, torch.complex64, "x")
    assert kind_of(t) == kind
