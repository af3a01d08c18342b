"""Hidden autograder for a2_gradient_descent (notebook gradient_descent).

One group of checks per exercise id. Functions are probed through ``isolated``: the probe rebinds
the student's function (and any helper functions the student defined in the notebook) to a copy
of the notebook's globals in which the *other* exercises' functions (gradient_at, sgd_step,
sigmoid, mnist_loss, ...) and the given code (quad, mse) are replaced by the reference versions.
So a bug in ``sigmoid`` costs points in ``sigmoid`` only, not again in ``mnist_loss_sigmoid``.
Inputs are drawn from the seeded ``rng``; nothing here is visible to students.

Rank-0 tensors (a loss, a gradient at one number) are wrapped on their way in and out of probes
(``_pack``/``_unpack``): the plain-data wire currently returns them with shape (1,).
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from mnistkit.grading.probes import TORCH_CALLS
from mnistkit.grading.expect import Mismatch, as_tensor, check, expect_close
from mnistkit.grading.student import NotDefined
from solutions import a2_gradient_descent as ref

# Exercise functions (and the notebook's given code) a probe may swap for the reference.
HELPERS = ["gradient_at", "sgd_step", "descent_path", "train_quadratic", "quad", "mse",
           "mnist_loss", "sigmoid", "mnist_loss_sigmoid", "accuracy_slope", "batches_of"]
HELPER_SRC = "import torch\n\n" + "\n\n".join(
    inspect.getsource(getattr(ref, name)) for name in HELPERS)

# Runs in the student's namespace (a copy). Defines `fn`: the student's function `name`,
# rebound so that the names in HELPERS other than itself resolve to the reference.
_ISOLATE = """
import types as _types
import torch
def _isolate(_name):
    _orig = globals()[_name]
    if not isinstance(_orig, _types.FunctionType):
        return _orig
    _home = _orig.__globals__
    _g = dict(_home)
    _ref = {}
    exec(_HELPER_SRC, _ref)
    _keep = {_name} | {k for k in _HELPER_NAMES if k not in _ref}
    for _k in _HELPER_NAMES:
        if _k not in _keep:
            _g[_k] = _ref[_k]
    def _rebind(_f):
        _new = _types.FunctionType(_f.__code__, _g, _f.__name__, _f.__defaults__, _f.__closure__)
        _new.__kwdefaults__ = _f.__kwdefaults__
        return _new
    # the student's own helper functions see the same swapped names
    for _k, _v in list(_g.items()):
        if (isinstance(_v, _types.FunctionType) and _v.__globals__ is _home
                and _k not in _HELPER_NAMES):
            _g[_k] = _rebind(_v)
    _g[_name] = _rebind(_orig)
    return _g[_name]
fn = _isolate(_NAME)
"""

_PACK_SRC = """
# The wire (mnistkit.grading.wire) turns rank-0 tensors into shape (1,); carry their shape.
def _pack(_v):
    if isinstance(_v, torch.Tensor) and _v.ndim == 0:
        return {_RANK0: _v.reshape(1)}
    if type(_v) in (list, tuple):
        return type(_v)(_pack(_x) for _x in _v)
    if type(_v) is dict:
        return {_k: _pack(_x) for _k, _x in _v.items()}
    return _v

def _unpack(_v):
    if type(_v) is dict:
        if set(_v) == {_RANK0} and isinstance(_v[_RANK0], torch.Tensor):
            return _v[_RANK0].reshape(())
        return {_k: _unpack(_x) for _k, _x in _v.items()}
    if type(_v) in (list, tuple):
        return type(_v)(_unpack(_x) for _x in _v)
    return _v
"""
RANK0 = "__a2_rank0_tensor__"
_codec = {"torch": torch, "_RANK0": RANK0}
exec(_PACK_SRC, _codec)
_pack, _unpack = _codec["_pack"], _codec["_unpack"]


def isolated(student, name: str, body: str, **inputs):
    """Run ``body`` (which calls ``fn`` and sets ``result``) against the student's ``name``."""
    if not student.has(name):
        raise NotDefined(name)
    code = (_PACK_SRC + "globals().update(_unpack(_IN))\n" + _ISOLATE + body
            + "\nresult = _pack(result)\n")
    return _unpack(student.run(code, _NAME=name, _HELPER_SRC=HELPER_SRC, _HELPER_NAMES=HELPERS,
                               _RANK0=RANK0, _IN=_pack(inputs)))


def call(student, name: str, *args):
    """``name(*args)`` with the student's function isolated from their other exercises."""
    return isolated(student, name, "result = fn(*_args)", _args=list(args))


def rand(rng, *shape, lo=0.0, hi=1.0):
    return torch.from_numpy(np.asarray(rng.uniform(lo, hi, size=shape), dtype="float32"))


# --------------------------------------------------------------------------------------------
# seven_steps (Q14)
def _steps(student):
    steps = student.get("seven_steps")
    check(isinstance(steps, (list, tuple)) and all(isinstance(s, str) for s in steps),
          "seven_steps should be a list of strings")
    return [s.strip().lower() for s in steps]


@pytest.mark.exercise("seven_steps")
def test_seven_steps_uses_each_name_once(student):
    steps = _steps(student)
    check(sorted(steps) == sorted(ref.STEP_NAMES),
          "seven_steps should contain each of the seven given names exactly once")


@pytest.mark.exercise("seven_steps")
def test_seven_steps_starts_and_ends_right(student):
    steps = _steps(student)
    check(len(steps) == 7 and steps[0] == ref.seven_steps[0] and steps[-1] == ref.seven_steps[-1],
          "seven_steps does not begin and end with the right steps")


@pytest.mark.exercise("seven_steps")
def test_seven_steps_loop_body_in_order(student):
    steps = _steps(student)
    body = ref.seven_steps[1:5]
    check(all(s in steps for s in body) and [s for s in steps if s in body] == body,
          "the four steps inside the loop (from a prediction to an update) are not in the right order")


@pytest.mark.exercise("seven_steps")
def test_seven_steps_full_order(student):
    check(_steps(student) == ref.seven_steps, "seven_steps is not in the right order")


# --------------------------------------------------------------------------------------------
# gradient_at (Q18)
_GRAD_PROBE = """
import torch
f = {f}
x = _x.clone()
result = fn(f, x)
"""


def _gradient_check(student, f_src, x, on):
    got = isolated(student, "gradient_at", _GRAD_PROBE.format(f=f_src), _x=x)
    f = eval(f_src, {"torch": torch})
    want = ref.gradient_at(f, x)
    expect_close(got, want, "gradient_at(f, x)", on=on)


@pytest.mark.exercise("gradient_at")
def test_gradient_at_summed_square(student, rng):
    n = int(rng.integers(2, 20))
    _gradient_check(student, "lambda t: (t**2).sum()", rand(rng, n, lo=-10, hi=10),
                    f"f(x) = (x**2).sum() and a random vector of {n} values")


@pytest.mark.exercise("gradient_at")
def test_gradient_at_other_function_on_matrix(student, rng):
    r, c = (int(v) for v in rng.integers(2, 6, size=2))
    _gradient_check(student, "lambda t: (t**3 - 2*t).sum()", rand(rng, r, c, lo=-2, hi=2),
                    f"f(x) = (x**3 - 2*x).sum() and a random {r}x{c} matrix")


@pytest.mark.exercise("gradient_at")
def test_gradient_at_scalar(student, rng):
    x = torch.tensor(float(rng.uniform(-3, 3)))
    _gradient_check(student, "lambda t: torch.sin(t) * t", x, "f(x) = sin(x)*x and a single number")


@pytest.mark.exercise("gradient_at")
def test_gradient_at_repeatable_and_leaves_x_alone(student, rng):
    n = int(rng.integers(2, 10))
    got = isolated(student, "gradient_at", """
import torch
f = lambda t: (t**2 + 3*t).sum()
x = _x.clone()
first = fn(f, x).clone()
second = fn(f, x).clone()
result = dict(first=first, second=second, x=x.detach(), requires_grad=bool(x.requires_grad))
""", _x=rand(rng, n, lo=-5, hi=5))
    check(isinstance(got, dict), "gradient_at could not be checked")
    want = ref.gradient_at(lambda t: (t**2 + 3 * t).sum(), got["x"])
    expect_close(got["first"], want, "gradient_at(f, x)", on="a first call")
    expect_close(got["second"], want, "gradient_at(f, x)",
                 on="a second call with the same x (do gradients pile up in x.grad?)")
    check(not got["requires_grad"],
          "gradient_at switched on requires_grad for the caller's tensor; work on a copy")


# --------------------------------------------------------------------------------------------
# sgd_step (Q23)
def _params_and_grads(rng, k):
    shapes = [tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(0, 3))))
              for _ in range(k)]
    params = [rand(rng, *s, lo=-3, hi=3) for s in shapes]
    grads = [rand(rng, *s, lo=-3, hi=3) for s in shapes]
    return params, grads


def _expect_params(got, want, on):
    check(isinstance(got, (list, tuple)), f"sgd_step should return a list of tensors on {on}")
    check(len(got) == len(want),
          f"sgd_step returned {len(got)} tensors for {len(want)} parameters on {on}")
    for i, (g, w) in enumerate(zip(got, want)):
        expect_close(g, w, f"new parameter {i}", on=on)


@pytest.mark.exercise("sgd_step")
def test_sgd_step_one_parameter(student, rng):
    params, grads = _params_and_grads(rng, 1)
    lr = float(rng.uniform(0.01, 0.5))
    got = call(student, "sgd_step", params, grads, lr)
    _expect_params(got, ref.sgd_step(params, grads, lr), "a single random parameter tensor")


@pytest.mark.exercise("sgd_step")
def test_sgd_step_several_parameters(student, rng):
    k = int(rng.integers(3, 6))
    params, grads = _params_and_grads(rng, k)
    lr = float(rng.uniform(0.001, 2.0))
    got = call(student, "sgd_step", params, grads, lr)
    _expect_params(got, ref.sgd_step(params, grads, lr), f"{k} parameter tensors of different shapes")


@pytest.mark.exercise("sgd_step")
def test_sgd_step_changes_nothing_in_place(student, rng):
    params, grads = _params_and_grads(rng, 3)
    lr = float(rng.uniform(0.05, 0.5))
    got = isolated(student, "sgd_step", """
ps = [p.clone() for p in _params]
gs = [g.clone() for g in _grads]
fn(ps, gs, _lr)
result = dict(params=ps, grads=gs)
""", _params=params, _grads=grads, _lr=lr)
    check(isinstance(got, dict), "sgd_step could not be checked")
    for before, after in zip(params + grads, got["params"] + got["grads"]):
        check(torch.equal(as_tensor(after, "a parameter"), before),
              "sgd_step changed the tensors it was given; return new tensors instead")


@pytest.mark.exercise("sgd_step")
def test_sgd_step_on_parameters_that_require_grad(student, rng):
    params, grads = _params_and_grads(rng, 2)
    lr = float(rng.uniform(0.05, 0.5))
    got = isolated(student, "sgd_step", """
ps = [p.clone().requires_grad_() for p in _params]
result = [q.detach() for q in fn(ps, _grads, _lr)]
""", _params=params, _grads=grads, _lr=lr)
    _expect_params(got, ref.sgd_step(params, grads, lr), "parameters that require gradients")


# --------------------------------------------------------------------------------------------
# descent_path (Q17)
def _path_check(student, x0, lr, n, on):
    got = call(student, "descent_path", x0, lr, n)
    expect_close(got, ref.descent_path(x0, lr, n), f"descent_path(x0, {lr:.3g}, {n})", on=on)
    return as_tensor(got, "descent_path")


def _start(rng):
    return float(rng.choice([-1, 1]) * rng.uniform(0.5, 3.0))


@pytest.mark.exercise("descent_path")
def test_descent_path_small_learning_rate(student, rng):
    _path_check(student, _start(rng), float(rng.uniform(0.02, 0.4)), int(rng.integers(5, 20)),
                "a small learning rate")


@pytest.mark.exercise("descent_path")
def test_descent_path_bouncy_learning_rate(student, rng):
    _path_check(student, _start(rng), float(rng.uniform(0.6, 0.95)), int(rng.integers(5, 20)),
                "a learning rate between 0.5 and 1 (bouncing)")


@pytest.mark.exercise("descent_path")
def test_descent_path_diverges_for_high_learning_rate(student, rng):
    n = int(rng.integers(5, 15))
    got = _path_check(student, _start(rng), float(rng.uniform(1.05, 1.5)), n,
                      "a learning rate above 1")
    check(bool((got.abs()[1:] > got.abs()[:-1]).all()),
          "with a learning rate above 1, every step should land further from 0")


@pytest.mark.exercise("descent_path")
def test_descent_path_zero_and_one_step(student, rng):
    x0 = _start(rng)
    _path_check(student, x0, 0.1, 0, "n_steps=0 (just the start)")
    _path_check(student, x0, float(rng.uniform(0.05, 0.45)), 1, "n_steps=1")


# --------------------------------------------------------------------------------------------
# train_quadratic (Q12)
def _toy(rng):
    n = int(rng.integers(10, 30))
    t = rand(rng, n, lo=-1.5, hi=1.5)
    true = rand(rng, 3, lo=-2, hi=2)
    y = ref.quad(t, true) + rand(rng, n, lo=-0.3, hi=0.3)
    init = rand(rng, 3, lo=-1, hi=1)
    return t, y, init


def _train(student, t, y, init, lr, n):
    got = call(student, "train_quadratic", t, y, init, lr, n)
    check(isinstance(got, (list, tuple)) and len(got) == 2,
          "train_quadratic should return a tuple (final_params, losses)")
    return got


@pytest.mark.exercise("train_quadratic")
def test_train_quadratic_final_params(student, rng):
    t, y, init = _toy(rng)
    lr, n = float(rng.uniform(0.02, 0.1)), int(rng.integers(5, 20))
    params, _ = _train(student, t, y, init, lr, n)
    expect_close(params, ref.train_quadratic(t, y, init, lr, n)[0], "final_params",
                 on=f"random data, {n} steps")


@pytest.mark.exercise("train_quadratic")
def test_train_quadratic_losses(student, rng):
    t, y, init = _toy(rng)
    lr, n = float(rng.uniform(0.02, 0.1)), int(rng.integers(5, 20))
    _, losses = _train(student, t, y, init, lr, n)
    expect_close(losses, ref.train_quadratic(t, y, init, lr, n)[1], "losses",
                 on=f"random data, {n} steps (one loss per step, before its update)")


@pytest.mark.exercise("train_quadratic")
def test_train_quadratic_loss_goes_down(student, rng):
    t, y, init = _toy(rng)
    init = init + 2.0  # start far from a good fit
    _, losses = _train(student, t, y, init, 0.05, 15)
    losses = as_tensor(losses, "losses").flatten()
    check(losses.numel() == 15, "losses should hold one number per step")
    check(bool((losses[1:] < losses[:-1]).all()),
          "with a small learning rate the loss should go down at every step")


@pytest.mark.exercise("train_quadratic")
def test_train_quadratic_leaves_params_alone(student, rng):
    t, y, init = _toy(rng)
    got = isolated(student, "train_quadratic", """
p = _init.clone()
out = fn(_t, _y, p, 0.05, 3)
result = p.detach()
""", _t=t, _y=y, _init=init)
    check(torch.equal(as_tensor(got, "params"), init),
          "train_quadratic changed the caller's params tensor; start from a copy")


@pytest.mark.exercise("train_quadratic")
def test_train_quadratic_zero_steps(student, rng):
    t, y, init = _toy(rng)
    params, losses = _train(student, t, y, init, 0.05, 0)
    expect_close(params, init, "final_params", on="n_steps=0 (should be the starting params)")
    check(len(losses) == 0, "with n_steps=0 there should be no losses")


# --------------------------------------------------------------------------------------------
# mnist_loss
def _targets(rng, *shape, floats=False):
    t = torch.from_numpy(rng.integers(0, 2, size=shape))
    return t.float() if floats else t


@pytest.mark.exercise("mnist_loss")
def test_mnist_loss_random_vector(student, rng):
    n = int(rng.integers(5, 60))
    inputs, targets = rand(rng, n), _targets(rng, n)
    expect_close(call(student, "mnist_loss", inputs, targets), ref.mnist_loss(inputs, targets),
                 "mnist_loss(inputs, targets)", on=f"{n} random predictions with 0/1 targets")


@pytest.mark.exercise("mnist_loss")
def test_mnist_loss_column_float_targets(student, rng):
    n = int(rng.integers(5, 60))
    inputs, targets = rand(rng, n, 1), _targets(rng, n, 1, floats=True)
    expect_close(call(student, "mnist_loss", inputs, targets), ref.mnist_loss(inputs, targets),
                 "mnist_loss(inputs, targets)",
                 on=f"shape ({n}, 1) with float targets 0.0/1.0")


@pytest.mark.exercise("mnist_loss")
def test_mnist_loss_all_threes(student, rng):
    n = int(rng.integers(3, 20))
    inputs, targets = rand(rng, n), torch.ones(n, dtype=torch.long)
    expect_close(call(student, "mnist_loss", inputs, targets), ref.mnist_loss(inputs, targets),
                 "mnist_loss(inputs, targets)", on="a batch whose targets are all 1")


_COUNT = TORCH_CALLS + """
import torch
counts, values = [], []
for _inputs, _targets in _cases:
    with TorchCalls() as _c:
        _v = fn(_inputs, _targets)
    counts.append(len(_c))
    values.append(torch.as_tensor(_v).detach())
result = dict(counts=counts, values=values)
"""


@pytest.mark.exercise("mnist_loss")
def test_mnist_loss_no_python_loop(student, rng):
    cases = [(rand(rng, n), _targets(rng, n)) for n in (8, 300)]
    got = isolated(student, "mnist_loss", _COUNT, _cases=cases)
    check(isinstance(got, dict), "mnist_loss could not be checked")
    for (inputs, targets), value in zip(cases, got["values"]):
        expect_close(value, ref.mnist_loss(inputs, targets), "mnist_loss(inputs, targets)",
                     on=f"{len(inputs)} random predictions")
    small, large = got["counts"]
    check(large <= small + 2,
          "mnist_loss makes more tensor operations for a bigger batch: use torch.where on the "
          "whole tensors instead of a Python loop")


# --------------------------------------------------------------------------------------------
# sigmoid (Q21)
@pytest.mark.exercise("sigmoid")
def test_sigmoid_random_values(student, rng):
    n = int(rng.integers(5, 50))
    x = torch.from_numpy(rng.normal(0, 3, size=n).astype("float32"))
    expect_close(call(student, "sigmoid", x), ref.sigmoid(x), "sigmoid(x)",
                 on=f"{n} random numbers")


@pytest.mark.exercise("sigmoid")
def test_sigmoid_matrix(student, rng):
    r, c = (int(v) for v in rng.integers(2, 8, size=2))
    x = rand(rng, r, c, lo=-6, hi=6)
    expect_close(call(student, "sigmoid", x), ref.sigmoid(x), "sigmoid(x)",
                 on=f"a random {r}x{c} matrix")


@pytest.mark.exercise("sigmoid")
def test_sigmoid_large_inputs(student, rng):
    x = torch.tensor([-120.0, -100.0, -50.0, 50.0, 100.0, 120.0]) * float(rng.uniform(1, 1.5))
    expect_close(call(student, "sigmoid", x), ref.sigmoid(x), "sigmoid(x)",
                 on="inputs of large size (like 100 or -100)")


# --------------------------------------------------------------------------------------------
# mnist_loss_sigmoid
@pytest.mark.exercise("mnist_loss_sigmoid")
def test_mnist_loss_sigmoid_random_scores(student, rng):
    n = int(rng.integers(5, 60))
    x = torch.from_numpy(rng.normal(0, 3, size=n).astype("float32"))
    targets = _targets(rng, n)
    expect_close(call(student, "mnist_loss_sigmoid", x, targets),
                 ref.mnist_loss_sigmoid(x, targets), "mnist_loss_sigmoid(inputs, targets)",
                 on=f"{n} random scores (any real numbers) with 0/1 targets")


@pytest.mark.exercise("mnist_loss_sigmoid")
def test_mnist_loss_sigmoid_column_float_targets(student, rng):
    n = int(rng.integers(5, 60))
    x = rand(rng, n, 1, lo=-4, hi=4)
    targets = _targets(rng, n, 1, floats=True)
    expect_close(call(student, "mnist_loss_sigmoid", x, targets),
                 ref.mnist_loss_sigmoid(x, targets), "mnist_loss_sigmoid(inputs, targets)",
                 on=f"shape ({n}, 1) with float targets 0.0/1.0")


@pytest.mark.exercise("mnist_loss_sigmoid")
def test_mnist_loss_sigmoid_large_scores(student, rng):
    n = int(rng.integers(4, 20))
    x = torch.from_numpy((rng.choice([-1, 1], size=n) * rng.uniform(20, 90, size=n)).astype("float32"))
    targets = _targets(rng, n)
    got = call(student, "mnist_loss_sigmoid", x, targets)
    expect_close(got, ref.mnist_loss_sigmoid(x, targets), "mnist_loss_sigmoid(inputs, targets)",
                 on="scores of large size (like 50 or -80)")


# --------------------------------------------------------------------------------------------
# accuracy_slope (Q20)
def _far(rng, n, eps):
    side = rng.choice([-1, 1], size=n)
    return 0.5 + side * rng.uniform(3 * eps, 0.49, size=n)


def _near(rng, n, eps):
    """Just below the threshold: raising by eps crosses 0.5."""
    return 0.5 - rng.uniform(0.2 * eps, 0.8 * eps, size=n)


def _slope_check(student, preds, targets, eps, on):
    preds = torch.from_numpy(preds.astype("float32"))
    got = call(student, "accuracy_slope", preds, targets, eps)
    expect_close(got, ref.accuracy_slope(preds, targets, eps), "accuracy_slope(preds, targets, eps)",
                 on=on, rtol=1e-3)


@pytest.mark.exercise("accuracy_slope")
def test_accuracy_slope_far_from_threshold(student, rng):
    n, eps = int(rng.integers(5, 30)), float(rng.uniform(0.002, 0.02))
    _slope_check(student, _far(rng, n, eps), _targets(rng, n), eps,
                 "predictions that are all far from 0.5")


@pytest.mark.exercise("accuracy_slope")
def test_accuracy_slope_crossing_for_a_three(student, rng):
    n, eps = int(rng.integers(6, 30)), float(rng.uniform(0.002, 0.02))
    preds, targets = _far(rng, n, eps), _targets(rng, n)
    near = rng.choice(n, size=max(1, n // 3), replace=False)
    preds[near] = _near(rng, len(near), eps)
    targets[torch.from_numpy(near)] = 1
    _slope_check(student, preds, targets, eps,
                 "some predictions just below 0.5 whose target is 1")


@pytest.mark.exercise("accuracy_slope")
def test_accuracy_slope_crossing_for_a_seven(student, rng):
    n, eps = int(rng.integers(6, 30)), float(rng.uniform(0.002, 0.02))
    preds, targets = _far(rng, n, eps), _targets(rng, n)
    near = rng.choice(n, size=max(1, n // 3), replace=False)
    preds[near] = _near(rng, len(near), eps)
    targets[torch.from_numpy(near)] = 0
    _slope_check(student, preds, targets, eps,
                 "some predictions just below 0.5 whose target is 0")


@pytest.mark.exercise("accuracy_slope")
def test_accuracy_slope_column_shape(student, rng):
    n, eps = int(rng.integers(6, 30)), float(rng.uniform(0.002, 0.02))
    preds = _far(rng, n, eps)
    near = rng.choice(n, size=max(2, n // 3), replace=False)
    preds[near] = _near(rng, len(near), eps)
    _slope_check(student, preds.reshape(n, 1), _targets(rng, n, 1), eps,
                 f"predictions and targets of shape ({n}, 1)")


# --------------------------------------------------------------------------------------------
# usable_as_loss (Q16, Q20, Q22)
def _usable(student):
    got = student.get("usable_as_loss")
    check(isinstance(got, dict) and set(got) == set(ref.usable_as_loss)
          and all(isinstance(v, bool) for v in got.values()),
          "usable_as_loss should be a dict with the six given keys and True/False values")
    return got


@pytest.mark.exercise("usable_as_loss")
def test_usable_as_loss_format(student):
    _usable(student)


@pytest.mark.exercise("usable_as_loss")
def test_usable_as_loss_metrics_are_not_losses(student):
    got = _usable(student)
    check(all(got[k] == v for k, v in ref.usable_as_loss.items() if not v),
          "at least one measure whose slope is zero almost everywhere is marked as usable")


@pytest.mark.exercise("usable_as_loss")
def test_usable_as_loss_smooth_ones_are_losses(student):
    got = _usable(student)
    check(all(got[k] == v for k, v in ref.usable_as_loss.items() if v),
          "at least one smooth measure with a useful gradient is marked as not usable")


# --------------------------------------------------------------------------------------------
# batches_of (Q13, Q24)
_BATCH_PROBE = """
import random, torch
random.seed(_seed)
torch.manual_seed(_seed)
coll = {coll}
result = fn(coll, _bs, _shuffle)
"""


def _batches(student, coll_src, bs, shuffle, seed):
    got = isolated(student, "batches_of", _BATCH_PROBE.format(coll=coll_src),
                   _bs=bs, _shuffle=shuffle, _seed=seed)
    check(isinstance(got, list), "batches_of should return a list of batches")
    return got


def _items(batches, what):
    out = []
    for b in batches:
        t = as_tensor(b, "a batch")
        check(t.ndim == 1, f"each batch of {what} should be a 1-D tensor")
        out.append(t)
    return out


@pytest.mark.exercise("batches_of")
def test_batches_of_in_order(student, rng):
    n, bs = int(rng.integers(10, 60)), int(rng.integers(3, 9))
    got = _items(_batches(student, f"range({n})", bs, False, int(rng.integers(1 << 30))),
                 "numbers")
    want = ref.batches_of(range(n), bs, shuffle=False)
    check(len(got) == len(want),
          f"{len(got)} batches for {n} items in batches of {bs} without shuffling; "
          "check how many batches one epoch has")
    for g, w in zip(got, want):
        expect_close(g, w, "a batch", on=f"range({n}) without shuffling")


@pytest.mark.exercise("batches_of")
def test_batches_of_shuffled_sizes_and_items(student, rng):
    n, bs = int(rng.integers(20, 80)), int(rng.integers(3, 9))
    got = _items(_batches(student, f"range({n})", bs, True, int(rng.integers(1 << 30))), "numbers")
    sizes = [len(b) for b in got]
    want_sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    check(sizes == want_sizes,
          f"batch sizes are wrong for {n} items in batches of {bs} (one epoch keeps every item)")
    check(sorted(torch.cat(got).tolist()) == list(range(n)),
          "with shuffling, every item should still appear exactly once")


@pytest.mark.exercise("batches_of")
def test_batches_of_really_shuffles(student, rng):
    n, bs = int(rng.integers(30, 80)), int(rng.integers(4, 9))
    seed = int(rng.integers(1 << 30))
    got = _items(_batches(student, f"range({n})", bs, True, seed), "numbers")
    check(len(got) > 0, "batches_of returned no batches")
    check(torch.cat(got).tolist() != list(range(n)),
          "with shuffle=True the items should come out in a random order")


@pytest.mark.exercise("batches_of")
def test_batches_of_dataset_of_pairs(student, rng):
    n, bs = int(rng.integers(12, 26)), int(rng.integers(3, 8))
    got = _batches(student, f"L(enumerate(string.ascii_lowercase[:{n}]))", bs, True,
                   int(rng.integers(1 << 30)))
    seen = []
    for batch in got:
        check(isinstance(batch, (list, tuple)) and len(batch) == 2,
              "each batch of a Dataset of (number, letter) pairs should be a pair: "
              "(tensor of numbers, letters)")
        numbers, letters = batch
        numbers = as_tensor(numbers, "the numbers of a batch").tolist()
        check(isinstance(letters, (list, tuple)) and len(letters) == len(numbers),
              "each batch should hold as many letters as numbers")
        check(all(isinstance(i, int) and 0 <= i < n and l == "abcdefghijklmnopqrstuvwxyz"[i]
                  for i, l in zip(numbers, letters)),
              "the numbers and letters of a batch are no longer paired correctly")
        seen += numbers
    check(sorted(seen) == list(range(n)), "every (number, letter) pair should appear exactly once")
    check(len(got) == math.ceil(n / bs),
          f"{len(got)} batches for {n} pairs in batches of {bs}; check how many batches one epoch has")
