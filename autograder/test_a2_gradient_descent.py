"""Hidden autograder for a2_gradient_descent (notebook gradient_descent).

One group of checks per exercise id; inputs are drawn from the seeded ``rng``.

What the grader trusts (issue 10): only plain data the student's functions return, compared
here with the reference computed here, and the notebook's source, read here.
- Comparisons are kind-strict (``mnistkit.grading.expect``): every answer of this notebook is
  floating point (or, for ``batches_of``, integers), so a True/False tensor of the right shape
  earns nothing.
- Exercises that build on others are probed with stand-ins (``mnistkit.grading.isolation``),
  so one bug costs points once and nothing of ``solutions/`` enters the sandbox:
  ``mnist_loss_sigmoid`` gets an ``Answers`` table for ``sigmoid`` (the grader's sigmoid of the
  exact scores it sends) and a ``Neutral`` ``mnist_loss`` (a different loss); ``descent_path``
  and ``train_quadratic`` get ``Neutral`` ``gradient_at`` (coarse forward differences) and
  ``sgd_step`` (three quarters of a step). Neutral stand-ins are not an answer to any exercise,
  and tables are not used for ``sgd_step``: along a path, a table of its results would *be* the
  expected path. The notebook lets students use the helpers or write the maths themselves, so
  the expected value is the reference rebound to each mix of real helpers and stand-ins
  (``expect_close_any``); every one of them is a right answer for one way of writing it.
  ``quad`` and ``mse`` are the notebook's given (locked) code, not exercises: no stand-in.
- "Changes nothing in place" is decided from what the functions return: a second call with the
  same tensors (and, for ``sgd_step``, one tensor passed twice) gives a different answer when
  the first call changed its inputs. ``mnist_loss``'s "no Python loop" is read from the answer's
  syntax tree (``mnistkit.grading.source_checks``), never counted inside the sandbox.
"""
from __future__ import annotations

import math

import pytest
import torch

from mnistkit.grading import call_probes, isolation, source_checks, stand_ins
from mnistkit.grading.expect import (Mismatch, as_tensor, check, expect_close, expect_kind,
                                     expect_true_false)
from mnistkit.grading.seeded import uniform as rand
from solutions import a2_gradient_descent as ref

ex = pytest.mark.exercise
# --------------------------------------------------------------------------------------------
# Stand-ins: the grader's own functions (mnistkit.grading.stand_ins), not an answer to any
# exercise, sent as source under the dependency's name.
GRADIENT = isolation.Neutral.of("gradient_at", stand_ins.kit_gradient_at)
STEP = isolation.Neutral.of("sgd_step", stand_ins.kit_sgd_step)
LOSS = isolation.Neutral.of("mnist_loss", stand_ins.kit_fourth_power_loss)


def expect_close_any(value, alternatives, what: str, on: str = "", **kwargs):
    """``expect_close`` against several right answers (one per way the notebook allows to write
    the exercise); a failure reports the first (the reference's own way)."""
    first = None
    for want in alternatives:
        try:
            return expect_close(value, want, what, on=on, **kwargs)
        except Mismatch as exc:
            first = first or exc
    raise first


def expect_list(value, what: str, on: str = "", length: int | None = None) -> list:
    where = f" on {on}" if on else ""
    check(isinstance(value, (list, tuple)), f"{what} should be a list{where}, got {type(value).__name__}")
    check(length is None or len(value) == length,
          f"{what} should hold {length} values{where}, got {len(value)}")
    return list(value)


# --------------------------------------------------------------------------------------------
# seven_steps (Q14)
def _steps(student):
    steps = student.get("seven_steps")
    check(isinstance(steps, list) and all(isinstance(s, str) for s in steps),
          "seven_steps should be a list of strings")
    return [s.strip().lower() for s in steps]


@ex("seven_steps")
def test_seven_steps_uses_each_name_once(student):
    steps = _steps(student)
    check(sorted(steps) == sorted(ref.STEP_NAMES),
          "seven_steps should contain each of the seven given names exactly once")


@ex("seven_steps")
def test_seven_steps_starts_and_ends_right(student):
    steps = _steps(student)
    check(len(steps) == 7 and steps[0] == ref.seven_steps[0] and steps[-1] == ref.seven_steps[-1],
          "seven_steps does not begin and end with the right steps")


@ex("seven_steps")
def test_seven_steps_loop_body_in_order(student):
    steps = _steps(student)
    body = ref.seven_steps[1:5]
    check(all(s in steps for s in body) and [s for s in steps if s in body] == body,
          "the four steps inside the loop (from a prediction to an update) are not in the right order")


@ex("seven_steps")
def test_seven_steps_full_order(student):
    check(_steps(student) == ref.seven_steps, "seven_steps is not in the right order")


# --------------------------------------------------------------------------------------------
# gradient_at (Q18)
def _gradient_check(student, f_src, x, on):
    got = isolation.probe(student, "gradient_at", call_probes.gradient_of, f_src=f_src, x=x)
    want = ref.gradient_at(eval(f_src, {"torch": torch}), x)
    expect_close(got, want, "gradient_at(f, x)", on=on)


@ex("gradient_at")
def test_gradient_at_summed_square(student, rng):
    n = int(rng.integers(2, 20))
    _gradient_check(student, "lambda t: (t**2).sum()", rand(rng, n, lo=-10, hi=10),
                    f"f(x) = (x**2).sum() and a random vector of {n} values")


@ex("gradient_at")
def test_gradient_at_other_function_on_matrix(student, rng):
    r, c = (int(v) for v in rng.integers(2, 6, size=2))
    _gradient_check(student, "lambda t: (t**3 - 2*t).sum()", rand(rng, r, c, lo=-2, hi=2),
                    f"f(x) = (x**3 - 2*x).sum() and a random {r}x{c} matrix")


@ex("gradient_at")
def test_gradient_at_scalar(student, rng):
    x = torch.tensor(float(rng.uniform(-3, 3)))
    _gradient_check(student, "lambda t: torch.sin(t) * t", x,
                    "f(x) = sin(x)*x and a single number (a rank-0 tensor)")


@ex("gradient_at")
def test_gradient_at_repeatable_and_leaves_x_alone(student, rng):
    """Decided from the answers, not from what the sandbox says about x: gradients piling up in
    x.grad change the second answer, and an x left requiring gradients makes ``x * 2`` a
    non-leaf tensor whose ``.grad`` backward() never fills, which changes the third."""
    n = int(rng.integers(2, 10))
    x = rand(rng, n, lo=-5, hi=5)
    got = isolation.probe(student, "gradient_at", call_probes.gradient_three_times,
                          helpers=(call_probes.kept_tensor,), x=x)
    first, second, third = expect_list(got, "the probe's answers", length=3)
    f = lambda t: (t ** 2 + 3 * t).sum()  # noqa: E731
    expect_close(first, ref.gradient_at(f, x), "gradient_at(f, x)", on="a first call")
    expect_close(second, ref.gradient_at(f, x), "gradient_at(f, x)",
                 on="a second call with the same x (do gradients pile up in x.grad?)")
    expect_close(third, ref.gradient_at(f, x * 2), "gradient_at(f, x * 2)",
                 on="x * 2 computed after two calls with x (did gradient_at switch on "
                    "requires_grad for the caller's tensor? work on a copy)")


# --------------------------------------------------------------------------------------------
# sgd_step (Q23)
def _params_and_grads(rng, k):
    shapes = [tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(0, 3))))
              for _ in range(k)]
    params = [rand(rng, *s, lo=-3, hi=3) for s in shapes]
    grads = [rand(rng, *s, lo=-3, hi=3) for s in shapes]
    return params, grads


def _expect_params(got, want, on):
    """A **new list** (the prompt's word, in bold) of tensors, one per parameter."""
    check(isinstance(got, list), f"sgd_step should return a list on {on}, got {type(got).__name__}")
    got = expect_list(got, "sgd_step's answer", on)
    check(len(got) == len(want),
          f"sgd_step returned {len(got)} tensors for {len(want)} parameters on {on}")
    for i, (g, w) in enumerate(zip(got, want)):
        expect_close(g, w, f"new parameter {i}", on=on)


@ex("sgd_step")
def test_sgd_step_one_parameter(student, rng):
    params, grads = _params_and_grads(rng, 1)
    lr = float(rng.uniform(0.01, 0.5))
    got = isolation.call(student, "sgd_step", params, grads, lr)
    _expect_params(got, ref.sgd_step(params, grads, lr), "a single random parameter tensor")


@ex("sgd_step")
def test_sgd_step_several_parameters(student, rng):
    k = int(rng.integers(3, 6))
    params, grads = _params_and_grads(rng, k)
    lr = float(rng.uniform(0.001, 2.0))
    got = isolation.call(student, "sgd_step", params, grads, lr)
    _expect_params(got, ref.sgd_step(params, grads, lr), f"{k} parameter tensors of different shapes")


@ex("sgd_step")
def test_sgd_step_changes_nothing_in_place(student, rng):
    """Decided from the answers: a step that changes its inputs gives a different answer when
    called again with the same lists, or when one tensor appears twice in ``params``."""
    params, grads = _params_and_grads(rng, 3)
    shape = tuple(int(d) for d in rng.integers(1, 5, size=2))
    twice, g1, g2 = (rand(rng, *shape, lo=-3, hi=3) for _ in range(3))
    lr = float(rng.uniform(0.05, 0.5))
    got = isolation.probe(student, "sgd_step", call_probes.sgd_step_again_and_shared,
                          helpers=(call_probes.kept,), params=params, grads=grads, twice=twice,
                          g1=g1, g2=g2, lr=lr)
    first, second, shared = expect_list(got, "the probe's answers", length=3)
    want = ref.sgd_step(params, grads, lr)
    _expect_params(first, want, "a first call")
    _expect_params(second, want, "a second call with the same lists (sgd_step should not change "
                                 "the tensors it was given; return new tensors instead)")
    _expect_params(shared, ref.sgd_step([twice, twice], [g1, g2], lr),
                   "a list holding the same tensor twice (sgd_step should not change the "
                   "tensors it was given; return new tensors instead)")


@ex("sgd_step")
def test_sgd_step_on_parameters_that_require_grad(student, rng):
    params, grads = _params_and_grads(rng, 2)
    lr = float(rng.uniform(0.05, 0.5))
    got = isolation.probe(student, "sgd_step", call_probes.sgd_step_on_grad_tracking,
                          params=params, grads=grads, lr=lr)
    _expect_params(got, ref.sgd_step(params, grads, lr), "parameters that require gradients")


# --------------------------------------------------------------------------------------------
# descent_path (Q17): may use gradient_at and sgd_step, or a formula
def _descent_paths(x0, lr, n):
    """Right answers: the reference with each mix of the real helpers and the stand-ins."""
    return [isolation.rebind(ref.descent_path, gradient_at=grad, sgd_step=step)(x0, lr, n)
            for grad in (ref.gradient_at, GRADIENT.function())
            for step in (ref.sgd_step, STEP.function())]


def _path_check(student, x0, lr, n, on):
    got = isolation.call(student, "descent_path", x0, lr, n, stand_ins=[GRADIENT, STEP])
    expect_close_any(got, _descent_paths(x0, lr, n), f"descent_path(x0, {lr:.3g}, {n})", on=on)


def _start(rng):
    return float(rng.choice([-1, 1]) * rng.uniform(0.5, 3.0))


@ex("descent_path")
def test_descent_path_small_learning_rate(student, rng):
    _path_check(student, _start(rng), float(rng.uniform(0.02, 0.4)), int(rng.integers(5, 20)),
                "a small learning rate")


@ex("descent_path")
def test_descent_path_bouncy_learning_rate(student, rng):
    _path_check(student, _start(rng), float(rng.uniform(0.6, 0.95)), int(rng.integers(5, 20)),
                "a learning rate between 0.5 and 1 (bouncing)")


@ex("descent_path")
def test_descent_path_learning_rate_above_one(student, rng):
    _path_check(student, _start(rng), float(rng.uniform(1.05, 1.5)), int(rng.integers(5, 15)),
                "a learning rate above 1 (diverging)")


@ex("descent_path")
def test_descent_path_zero_and_one_step(student, rng):
    x0 = _start(rng)
    _path_check(student, x0, 0.1, 0, "n_steps=0 (just the start)")
    _path_check(student, x0, float(rng.uniform(0.05, 0.45)), 1, "n_steps=1")


# --------------------------------------------------------------------------------------------
# train_quadratic (Q12): may use gradient_at (step 4) and sgd_step (step 5)
def _toy(rng):
    n = int(rng.integers(10, 30))
    t = rand(rng, n, lo=-1.5, hi=1.5)
    true = rand(rng, 3, lo=-2, hi=2)
    y = ref.quad(t, true) + rand(rng, n, lo=-0.3, hi=0.3)
    init = rand(rng, 3, lo=-1, hi=1)
    return t, y, init


def _fit_with_helpers(t, y, params, lr, n_steps, gradient_at, sgd_step):
    """The training loop written with the helpers the notebook offers: what a right answer that
    calls them returns when they are the given functions (here: real or stand-in)."""
    p = params.detach().clone().float()
    losses = []
    for _ in range(n_steps):
        losses.append(ref.mse(ref.quad(t, p), y).item())
        g = gradient_at(lambda q: ref.mse(ref.quad(t, q), y), p)
        (p,) = sgd_step([p], [g], lr)
    return p.detach(), losses


def _fits(t, y, init, lr, n):
    """Right answers: the reference's own loop, and the loop with each mix of real helpers and
    stand-ins (a student may use backward() or gradient_at, a formula or sgd_step)."""
    found = [ref.train_quadratic(t, y, init, lr, n)]
    for grad, step in [(GRADIENT.function(), ref.sgd_step), (ref.gradient_at, STEP.function()),
                       (GRADIENT.function(), STEP.function())]:
        found.append(_fit_with_helpers(t, y, init, lr, n, grad, step))
    return found


def _pair(got, on):
    check(isinstance(got, (list, tuple)) and len(got) == 2,
          f"train_quadratic should return a tuple (final_params, losses) on {on}")
    return got


def _train(student, t, y, init, lr, n, on):
    got = isolation.call(student, "train_quadratic", t, y, init, lr, n, stand_ins=[GRADIENT, STEP])
    return _pair(got, on)


@ex("train_quadratic")
def test_train_quadratic_final_params(student, rng):
    t, y, init = _toy(rng)
    lr, n = float(rng.uniform(0.02, 0.1)), int(rng.integers(5, 20))
    on = f"random data, {n} steps"
    params, _ = _train(student, t, y, init, lr, n, on)
    expect_close_any(params, [p for p, _ in _fits(t, y, init, lr, n)], "final_params", on=on)


@ex("train_quadratic")
def test_train_quadratic_losses(student, rng):
    t, y, init = _toy(rng)
    lr, n = float(rng.uniform(0.02, 0.1)), int(rng.integers(5, 20))
    on = f"random data, {n} steps (one loss per step, before its update)"
    _, losses = _train(student, t, y, init, lr, n, on)
    expect_close_any(losses, [ls for _, ls in _fits(t, y, init, lr, n)], "losses", on=on)


@ex("train_quadratic")
def test_train_quadratic_from_a_far_start(student, rng):
    t, y, init = _toy(rng)
    init = init + 2.0  # start far from a good fit: the loss falls a long way
    on = "a start far from a good fit, 15 steps"
    params, losses = _train(student, t, y, init, 0.05, 15, on)
    fits = _fits(t, y, init, 0.05, 15)
    expect_close_any(losses, [ls for _, ls in fits], "losses", on=on)
    expect_close_any(params, [p for p, _ in fits], "final_params", on=on)


@ex("train_quadratic")
def test_train_quadratic_leaves_params_alone(student, rng):
    """Decided from the answers: training the caller's tensor in place makes a second call
    with the same tensor start from the trained values."""
    t, y, init = _toy(rng)
    got = isolation.probe(student, "train_quadratic", call_probes.train_quadratic_twice,
                          helpers=(call_probes.kept,), stand_ins=[GRADIENT, STEP], t=t, y=y,
                          init=init)
    first, second = expect_list(got, "the probe's answers", length=2)
    wanted = [p for p, _ in _fits(t, y, init, 0.05, 3)]
    expect_close_any(_pair(first, "a first call")[0], wanted, "final_params", on="a first call")
    expect_close_any(_pair(second, "a second call")[0], wanted, "final_params",
                     on="a second call with the same params tensor (train_quadratic should "
                        "leave the caller's tensor alone: start from a copy)")


@ex("train_quadratic")
def test_train_quadratic_zero_steps(student, rng):
    t, y, init = _toy(rng)
    on = "n_steps=0 (the starting params, no losses)"
    params, losses = _train(student, t, y, init, 0.05, 0, on)
    want_params, want_losses = ref.train_quadratic(t, y, init, 0.05, 0)
    expect_close(params, want_params, "final_params", on=on)
    expect_close(losses, want_losses, "losses", on=on)


# --------------------------------------------------------------------------------------------
# mnist_loss
def _targets(rng, *shape, floats=False):
    t = torch.from_numpy(rng.integers(0, 2, size=shape))
    return t.float() if floats else t


def _loss_check(student, inputs, targets, on):
    expect_close(isolation.call(student, "mnist_loss", inputs, targets),
                 ref.mnist_loss(inputs, targets), "mnist_loss(inputs, targets)", on=on)


@ex("mnist_loss")
def test_mnist_loss_random_vector(student, rng):
    n = int(rng.integers(5, 60))
    _loss_check(student, rand(rng, n), _targets(rng, n), f"{n} random predictions with 0/1 targets")


@ex("mnist_loss")
def test_mnist_loss_column_float_targets(student, rng):
    n = int(rng.integers(5, 60))
    _loss_check(student, rand(rng, n, 1), _targets(rng, n, 1, floats=True),
                f"shape ({n}, 1) with float targets 0.0/1.0")


@ex("mnist_loss")
def test_mnist_loss_all_threes(student, rng):
    n = int(rng.integers(3, 20))
    _loss_check(student, rand(rng, n), torch.ones(n, dtype=torch.long), "a batch whose targets are all 1")


@ex("mnist_loss")
def test_mnist_loss_no_python_loop(student, rng, notebook):
    """The technique point: right on a large batch, and no Python loop (nor code the grader
    cannot read) in the answer's source, read here."""
    n = int(rng.integers(200, 400))
    _loss_check(student, rand(rng, n), _targets(rng, n), f"{n} random predictions")
    source_checks.expect_no_python_loop(
        notebook, "mnist_loss", "use torch.where on the whole tensors instead of a Python loop")
    source_checks.expect_no_evasion(notebook, "mnist_loss")


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
    got = isolation.call(student, "accuracy_slope", preds, targets, eps)
    expect_close(got, ref.accuracy_slope(preds, targets, eps), "accuracy_slope(preds, targets, eps)",
                 on=on, rtol=1e-3)


@ex("accuracy_slope")
def test_accuracy_slope_far_from_threshold(student, rng):
    n, eps = int(rng.integers(5, 30)), float(rng.uniform(0.002, 0.02))
    _slope_check(student, _far(rng, n, eps), _targets(rng, n), eps,
                 "predictions that are all far from 0.5")


@ex("accuracy_slope")
def test_accuracy_slope_crossing_for_a_three(student, rng):
    n, eps = int(rng.integers(6, 30)), float(rng.uniform(0.002, 0.02))
    preds, targets = _far(rng, n, eps), _targets(rng, n)
    near = rng.choice(n, size=max(1, n // 3), replace=False)
    preds[near] = _near(rng, len(near), eps)
    targets[torch.from_numpy(near)] = 1
    _slope_check(student, preds, targets, eps,
                 "some predictions just below 0.5 whose target is 1")


@ex("accuracy_slope")
def test_accuracy_slope_crossing_for_a_seven(student, rng):
    n, eps = int(rng.integers(6, 30)), float(rng.uniform(0.002, 0.02))
    preds, targets = _far(rng, n, eps), _targets(rng, n)
    near = rng.choice(n, size=max(1, n // 3), replace=False)
    preds[near] = _near(rng, len(near), eps)
    targets[torch.from_numpy(near)] = 0
    _slope_check(student, preds, targets, eps,
                 "some predictions just below 0.5 whose target is 0")


@ex("accuracy_slope")
def test_accuracy_slope_column_shape(student, rng):
    n, eps = int(rng.integers(6, 30)), float(rng.uniform(0.002, 0.02))
    preds = _far(rng, n, eps)
    near = rng.choice(n, size=max(2, n // 3), replace=False)
    preds[near] = _near(rng, len(near), eps)
    _slope_check(student, preds.reshape(n, 1), _targets(rng, n, 1), eps,
                 f"predictions and targets of shape ({n}, 1)")


# --------------------------------------------------------------------------------------------
# sigmoid (Q21)
def _sigmoid_check(student, x, on):
    expect_close(isolation.call(student, "sigmoid", x), ref.sigmoid(x), "sigmoid(x)", on=on)


@ex("sigmoid")
def test_sigmoid_random_values(student, rng):
    n = int(rng.integers(5, 50))
    _sigmoid_check(student, torch.from_numpy(rng.normal(0, 3, size=n).astype("float32")),
                   f"{n} random numbers")


@ex("sigmoid")
def test_sigmoid_matrix(student, rng):
    r, c = (int(v) for v in rng.integers(2, 8, size=2))
    _sigmoid_check(student, rand(rng, r, c, lo=-6, hi=6), f"a random {r}x{c} matrix")


@ex("sigmoid")
def test_sigmoid_large_inputs(student, rng):
    x = torch.tensor([-120.0, -100.0, -50.0, 50.0, 100.0, 120.0]) * float(rng.uniform(1, 1.5))
    _sigmoid_check(student, x, "inputs of large size (like 100 or -100)")


# --------------------------------------------------------------------------------------------
# mnist_loss_sigmoid: may reuse sigmoid and mnist_loss
def _loss_sigmoid_check(student, x, targets, on):
    sigmoid = isolation.Answers("sigmoid").add(x, result=ref.sigmoid(x))
    got = isolation.call(student, "mnist_loss_sigmoid", x, targets, stand_ins=[sigmoid, LOSS])
    # right answers: mnist_loss's maths written out, or a call of mnist_loss (the stand-in)
    wanted = [ref.mnist_loss_sigmoid(x, targets), LOSS.rebind(ref.mnist_loss_sigmoid)(x, targets)]
    expect_close_any(got, wanted, "mnist_loss_sigmoid(inputs, targets)", on=on)


@ex("mnist_loss_sigmoid")
def test_mnist_loss_sigmoid_random_scores(student, rng):
    n = int(rng.integers(5, 60))
    _loss_sigmoid_check(student, torch.from_numpy(rng.normal(0, 3, size=n).astype("float32")),
                        _targets(rng, n), f"{n} random scores (any real numbers) with 0/1 targets")


@ex("mnist_loss_sigmoid")
def test_mnist_loss_sigmoid_column_float_targets(student, rng):
    n = int(rng.integers(5, 60))
    _loss_sigmoid_check(student, rand(rng, n, 1, lo=-4, hi=4), _targets(rng, n, 1, floats=True),
                        f"shape ({n}, 1) with float targets 0.0/1.0")


@ex("mnist_loss_sigmoid")
def test_mnist_loss_sigmoid_large_scores(student, rng):
    n = int(rng.integers(4, 20))
    x = torch.from_numpy((rng.choice([-1, 1], size=n) * rng.uniform(20, 90, size=n)).astype("float32"))
    _loss_sigmoid_check(student, x, _targets(rng, n), "scores of large size (like 50 or -80)")


# --------------------------------------------------------------------------------------------
# usable_as_loss (Q16, Q20, Q22)
def _usable(student):
    return expect_true_false(student.get("usable_as_loss"), ref.usable_as_loss,
                             "usable_as_loss should be a dict with the six given keys and "
                             "True/False values")


@ex("usable_as_loss")
def test_usable_as_loss_format(student):
    _usable(student)


@ex("usable_as_loss")
def test_usable_as_loss_metrics_are_not_losses(student):
    got = _usable(student)
    check(all(got[k] == v for k, v in ref.usable_as_loss.items() if not v),
          "at least one measure whose slope is zero almost everywhere is marked as usable")


@ex("usable_as_loss")
def test_usable_as_loss_smooth_ones_are_losses(student):
    got = _usable(student)
    check(all(got[k] == v for k, v in ref.usable_as_loss.items() if v),
          "at least one smooth measure with a useful gradient is marked as not usable")


# --------------------------------------------------------------------------------------------
# batches_of (Q13, Q24)
INTEGERS = torch.zeros(0, dtype=torch.long)   # what DataLoader batches numbers into


def _batches(student, coll_src, bs, shuffle, seed):
    got = isolation.probe(student, "batches_of", call_probes.batches_of_seeded, coll_src=coll_src,
                          bs=bs, shuffle=shuffle, seed=seed)
    check(isinstance(got, list), "batches_of should return a list of batches")
    return got


def _numbers(batch, what: str) -> list[int]:
    """A batch of numbers: a 1-D tensor of integers (DataLoader's own kind), as a list."""
    t = as_tensor(batch, what)
    expect_kind(t, INTEGERS, what)
    check(t.ndim == 1, f"each {what} should be a 1-D tensor, got shape {tuple(t.shape)}")
    return [int(v) for v in t.tolist()]


@ex("batches_of")
def test_batches_of_in_order(student, rng):
    n, bs = int(rng.integers(10, 60)), int(rng.integers(3, 9))
    got = _batches(student, f"range({n})", bs, False, int(rng.integers(1 << 30)))
    want = ref.batches_of(range(n), bs, shuffle=False)
    check(len(got) == len(want),
          f"{len(got)} batches for {n} items in batches of {bs} without shuffling; "
          "check how many batches one epoch has")
    for g, w in zip(got, want):
        expect_close(g, w, "a batch", on=f"range({n}) without shuffling")


@ex("batches_of")
def test_batches_of_shuffled_sizes_and_items(student, rng):
    n, bs = int(rng.integers(20, 80)), int(rng.integers(3, 9))
    got = [_numbers(b, "batch of numbers")
           for b in _batches(student, f"range({n})", bs, True, int(rng.integers(1 << 30)))]
    sizes = [len(b) for b in got]
    want_sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    check(sizes == want_sizes,
          f"batch sizes are wrong for {n} items in batches of {bs} (one epoch keeps every item)")
    check(sorted(v for b in got for v in b) == list(range(n)),
          "with shuffling, every item should still appear exactly once")


@ex("batches_of")
def test_batches_of_really_shuffles(student, rng):
    n, bs = int(rng.integers(30, 80)), int(rng.integers(4, 9))
    got = [_numbers(b, "batch of numbers")
           for b in _batches(student, f"range({n})", bs, True, int(rng.integers(1 << 30)))]
    check(len(got) > 0, "batches_of returned no batches")
    check([v for b in got for v in b] != list(range(n)),
          "with shuffle=True the items should come out in a random order")


@ex("batches_of")
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
        numbers = _numbers(numbers, "batch's numbers")
        check(isinstance(letters, (list, tuple)) and len(letters) == len(numbers),
              "each batch should hold as many letters as numbers")
        check(all(0 <= i < n and l == "abcdefghijklmnopqrstuvwxyz"[i]
                  for i, l in zip(numbers, letters)),
              "the numbers and letters of a batch are no longer paired correctly")
        seen += numbers
    check(sorted(seen) == list(range(n)), "every (number, letter) pair should appear exactly once")
    check(len(got) == math.ceil(n / bs),
          f"{len(got)} batches for {n} pairs in batches of {bs}; check how many batches one epoch has")
