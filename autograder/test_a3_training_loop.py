"""Hidden tests for a3_training_loop (notebook `training_loop`): one group of checks per exercise.

Like the chapter, several exercises read notebook globals (`linear1` reads `weights`/`bias`,
`simple_net` reads `w1, b1, w2, b2`, `train_epoch` loops over `dl`, `validate_epoch` over
`valid_dl`). Probes give a student function other values for those names with `_rebind` (a copy
of the function whose globals are a copy of the notebook's plus ours; the notebook is left
alone). The same trick injects the reference `mnist_loss`, `calc_grad` and `batch_accuracy`,
so a bug in one exercise costs points only there. Inputs come from the seeded `rng`; every
training check is tiny (a few hundred random 784-pixel inputs, one or two epochs).
"""
import inspect

import numpy as np
import pytest
import torch

from mnistkit.grading.probes import TORCH_CALLS
from mnistkit.grading.expect import as_tensor, check, expect_close, expect_shape
from mnistkit.grading.student import NotDefined
from solutions import a3_training_loop as ref

# Reference helpers, sent to probes as source text and run there in a private namespace.
REF_SRC = "\n\n".join(inspect.getsource(f) for f in (ref.mnist_loss, ref.calc_grad,
                                                        ref.batch_accuracy))

PRELUDE = '''
import types as _types
import torch as _torch
_refs = {"torch": _torch}
exec(ref_src, _refs)

def _rebind(fn, **names):
    """A copy of the student's function that sees `names` as globals (theirs stay untouched)."""
    if not isinstance(fn, _types.FunctionType):
        raise TypeError(f"expected a function defined with def, got {type(fn).__name__}")
    scope = dict(fn.__globals__)
    scope.update(names)
    copy = _types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy

def _leaves(tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]

def _model(kind, ps):
    """A model that uses the parameter tensors `ps` (a closure: no notebook globals)."""
    if kind == "linear":
        return lambda xb: xb @ ps[0] + ps[1]
    return lambda xb: (xb @ ps[0] + ps[1]).clamp(min=0) @ ps[2] + ps[3]

def _grads(ps):
    return [None if p.grad is None else p.grad.detach().clone() for p in ps]
'''


def probe(student, body, **inputs):
    return student.run(PRELUDE + body, ref_src=REF_SRC, **inputs)


def need(student, *names):
    for name in names:
        if not student.has(name):
            raise NotDefined(name)


def randn(rng, *shape, scale=1.0):
    return torch.from_numpy((rng.standard_normal(shape) * scale).astype("float32"))


def rand(rng, *shape):
    return torch.from_numpy(rng.random(shape, dtype="float32"))


def labels(rng, n):
    return torch.from_numpy(rng.integers(0, 2, (n, 1)))


def ref_model(kind, ps):
    if kind == "linear":
        return lambda xb: xb @ ps[0] + ps[1]
    return lambda xb: (xb @ ps[0] + ps[1]).clamp(min=0) @ ps[2] + ps[3]


def model_params(rng, kind, hidden=8, scale=0.1):
    if kind == "linear":
        return [randn(rng, 784, 1, scale=scale), randn(rng, 1, scale=scale)]
    return [randn(rng, 784, hidden, scale=scale), randn(rng, hidden, scale=scale),
            randn(rng, hidden, 1, scale=scale), randn(rng, 1, scale=scale)]


def leaves(tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def expect_number(value, want, what, on="", atol=1e-5):
    """One number (a Python number or a one-element tensor: the wire may give a 0-dim tensor
    back with shape (1,)) compared with ``want``."""
    t = as_tensor(value, what)
    check(t.numel() == 1, f"{what} should be one number, got shape {tuple(t.shape)}")
    expect_close(t.reshape(()).double(), torch.as_tensor(want).reshape(()).double(), what, on=on,
                 atol=atol)


def expect_grads(got, want, what, on):
    check(isinstance(got, (list, tuple)) and len(got) == len(want), f"{what}: wrong number of gradients")
    for i, (g, w) in enumerate(zip(got, want)):
        check(g is not None, f"{what}: parameter {i} has no gradient{' on ' + on if on else ''} "
                             "(was backward called on the loss of this model?)")
        expect_close(g, w, f"{what}: the gradient of parameter {i}", on=on)


# ================================================================================ flatten_images
@pytest.mark.exercise("flatten_images")
def test_flatten_images_values(student, rng):
    n = int(rng.integers(2, 40))
    images = rand(rng, n, 28, 28)
    got = student.call("flatten_images", images)
    expect_close(got, ref.flatten_images(images), "flatten_images(images)",
                 on=f"a random stack of {n} images of 28x28")


@pytest.mark.exercise("flatten_images")
def test_flatten_images_any_image_size(student, rng):
    n, h, w = int(rng.integers(2, 20)), int(rng.integers(2, 12)), int(rng.integers(13, 27))
    images = rand(rng, n, h, w)
    got = student.call("flatten_images", images)
    expect_close(got, ref.flatten_images(images), "flatten_images(images)",
                 on=f"a stack of {n} images of {h}x{w} pixels (not 28x28)")


@pytest.mark.exercise("flatten_images")
def test_flatten_images_one_image(student, rng):
    images = rand(rng, 1, 28, 28)
    got = student.call("flatten_images", images)
    expect_close(got, ref.flatten_images(images), "flatten_images(images)",
                 on="a stack holding a single image")


@pytest.mark.exercise("flatten_images")
def test_flatten_images_is_a_view(student, rng):
    need(student, "flatten_images")
    n = int(rng.integers(2, 30))
    res = probe(student, '''
out = flatten_images(images)
result = _torch.is_tensor(out) and out.untyped_storage().data_ptr() == images.untyped_storage().data_ptr()
''', images=rand(rng, n, 28, 28))
    check(res is True, "flatten_images returns a copy of the images: use `view` so the result "
                       "shares the images' memory")


# ================================================================================ zip_pairs
def random_word(rng, n):
    return "".join(chr(ord("a") + int(i)) for i in rng.integers(0, 26, n))


@pytest.mark.exercise("zip_pairs")
def test_zip_pairs_numbers_and_letters(student, rng):
    n = int(rng.integers(3, 12))
    a = [int(v) for v in rng.integers(-50, 50, n)]
    b = random_word(rng, n)
    got = student.call("zip_pairs", a, b)
    check(got == ref.zip_pairs(a, b),
          f"zip_pairs(a, b) is not the list of (a[i], b[i]) tuples on a list of {n} numbers "
          f"and a string of {n} letters")


@pytest.mark.exercise("zip_pairs")
def test_zip_pairs_returns_a_list_of_tuples(student, rng):
    need(student, "zip_pairs")
    n = int(rng.integers(2, 8))
    res = probe(student, '''
out = zip_pairs(list(range(n)), "x" * n)
result = [type(out).__name__, [type(t).__name__ for t in out] if isinstance(out, list) else []]
''', n=n)
    kind, items = res
    check(kind == "list", f"zip_pairs should return a list, got {kind} (wrap zip(...) in list(...))")
    check(all(t == "tuple" for t in items), "every item of the list should be a tuple")


@pytest.mark.exercise("zip_pairs")
def test_zip_pairs_images_and_labels(student, rng):
    n = int(rng.integers(3, 10))
    x, y = rand(rng, n, 6), labels(rng, n)
    got = student.call("zip_pairs", x, y)
    check(isinstance(got, list) and len(got) == n,
          f"zip_pairs(x, y) should give a list of {n} pairs for {n} inputs and {n} labels")
    for i, pair in enumerate(got):
        check(isinstance(pair, tuple) and len(pair) == 2, "every item should be an (x, y) tuple")
        expect_close(pair[0], x[i], f"the input of pair {i}", on="a tensor of inputs and labels")
        expect_close(pair[1], y[i], f"the label of pair {i}", on="a tensor of inputs and labels")


@pytest.mark.exercise("zip_pairs")
def test_zip_pairs_stops_at_the_shorter_input(student, rng):
    n, m = int(rng.integers(2, 6)), int(rng.integers(7, 12))
    a = [int(v) for v in rng.integers(0, 100, m)]
    b = random_word(rng, n)
    check(student.call("zip_pairs", a, b) == ref.zip_pairs(a, b) and
          student.call("zip_pairs", b, a) == ref.zip_pairs(b, a),
          "when the inputs have different lengths, zip_pairs should stop at the shorter one (like zip)")


# ================================================================================ init_params
@pytest.mark.exercise("init_params")
def test_init_params_shape(student, rng):
    rows, cols = int(rng.integers(2, 50)), int(rng.integers(1, 40))
    got = student.call("init_params", (rows, cols))
    t = expect_shape(got, (rows, cols), f"init_params(({rows}, {cols}))")
    check(t.dtype == torch.float32, f"init_params should make float32 numbers, got {t.dtype}")
    k = int(rng.integers(1, 60))
    expect_shape(student.call("init_params", k), (k,), f"init_params({k})")


@pytest.mark.exercise("init_params")
def test_init_params_tracks_gradients_as_a_leaf(student, rng):
    need(student, "init_params")
    res = probe(student, '''
t = init_params(size)
result = [bool(t.requires_grad), bool(t.is_leaf)]
''', size=(int(rng.integers(2, 30)), 1))
    check(res[0], "the tensor from init_params should track gradients (requires_grad=True)")
    check(res[1], "the tensor from init_params is computed from another tensor, so backward "
                  "will not fill its .grad: call .requires_grad_() on the final result (a leaf)")


def spread_check(values, std, what):
    v = as_tensor(values, what).detach().double().flatten()
    mean, sd = v.mean().item(), v.std().item()
    check(abs(mean) < 0.03 * std, f"{what}: the values should be centred on 0")
    check(abs(sd - std) < 0.03 * std, f"{what}: the values should have standard deviation std")
    inside = (v.abs() < std).double().mean().item()
    check(abs(inside - 0.6827) < 0.015, f"{what}: the values should follow a normal distribution "
                                        "(about 68% within one standard deviation of 0)")


@pytest.mark.exercise("init_params")
def test_init_params_default_spread(student, rng):
    spread_check(student.call("init_params", (250, 400)), 1.0,
                 "init_params(size) with the default std")


@pytest.mark.exercise("init_params")
def test_init_params_std_sets_the_spread(student, rng):
    std = float(rng.uniform(0.05, 3.0))
    spread_check(student.call("init_params", (250, 400), std), std,
                 f"init_params(size, std={std:.3f})")


# ================================================================================ blank_image_quiz
@pytest.mark.exercise("blank_image_quiz")
def test_blank_image_output_without_bias(student):
    value = student.get("no_bias_output")
    check(isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool),
          "no_bias_output should be a number")
    check(as_tensor(value, "no_bias_output").numel() == 1, "no_bias_output should be one number")
    check(abs(float(as_tensor(value, "no_bias_output").reshape(()))) < 1e-6,
          "no_bias_output is not what xb@weights gives for an all-zero image")


@pytest.mark.exercise("blank_image_quiz")
def test_blank_image_needs_a_bias(student):
    value = student.get("bias_needed_for_blank")
    check(isinstance(value, bool), "bias_needed_for_blank should be True or False")
    check(value is ref.bias_needed_for_blank, "bias_needed_for_blank is not right: think about "
                                              "what any weights times all-zero pixels give")


# ================================================================================ linear1
LINEAR1 = '''
f = _rebind(linear1, weights=w, bias=b)
result = f(x)
'''


@pytest.mark.exercise("linear1")
def test_linear1_values(student, rng):
    need(student, "linear1")
    n = int(rng.integers(5, 60))
    x, w, b = rand(rng, n, 784), randn(rng, 784, 1), randn(rng, 1)
    got = probe(student, LINEAR1, x=x, w=w, b=b)
    want = ref.with_globals(ref.linear1, weights=w, bias=b)(x)
    expect_close(got, want, "linear1(xb)", on=f"a batch of {n} random images with other weights and bias")


@pytest.mark.exercise("linear1")
def test_linear1_single_image_batch(student, rng):
    need(student, "linear1")
    x, w, b = rand(rng, 1, 784), randn(rng, 784, 1), randn(rng, 1)
    got = probe(student, LINEAR1, x=x, w=w, b=b)
    want = ref.with_globals(ref.linear1, weights=w, bias=b)(x)
    expect_close(got, want, "linear1(xb)", on="a batch holding a single image")


@pytest.mark.exercise("linear1")
def test_linear1_adds_the_bias(student, rng):
    need(student, "linear1")
    n = int(rng.integers(2, 10))
    x, w, b = torch.zeros(n, 784), randn(rng, 784, 1), randn(rng, 1, scale=3.0)
    got = probe(student, LINEAR1, x=x, w=w, b=b)
    expect_close(got, b.expand(n, 1), "linear1(xb)",
                 on="blank images (all pixels 0), where the prediction must be the bias")


@pytest.mark.exercise("linear1")
def test_linear1_has_no_python_loop(student, rng):
    need(student, "linear1")
    counts = probe(student, TORCH_CALLS + '''
f = _rebind(linear1, weights=w, bias=b)
result = []
for xb in (small, big):
    with TorchCalls() as counter:
        f(xb)
    result.append(len(counter))
''', small=rand(rng, 3, 784), big=rand(rng, 40, 784), w=randn(rng, 784, 1), b=randn(rng, 1))
    check(counts[0] == counts[1], "linear1 does more tensor operations for a bigger batch: use one "
                                  "matrix multiplication (@) for the whole batch, not a Python loop")


# ================================================================================ calc_grad
CALC_GRAD = '''
f = _rebind(calc_grad, mnist_loss=_refs["mnist_loss"])
ps = _leaves(params)
model = _model(kind, ps)
for _ in range(calls):
    f(x, y, model)
result = _grads(ps)
'''


def ref_calc_grad_grads(kind, params, x, y, calls=1):
    ps = leaves(params)
    model = ref_model(kind, ps)
    for _ in range(calls):
        ref.calc_grad(x, y, model)
    return [p.grad for p in ps]


@pytest.mark.exercise("calc_grad")
def test_calc_grad_linear_model(student, rng):
    need(student, "calc_grad")
    n = int(rng.integers(20, 100))
    x, y, params = rand(rng, n, 784), labels(rng, n), model_params(rng, "linear")
    got = probe(student, CALC_GRAD, x=x, y=y, params=params, kind="linear", calls=1)
    expect_grads(got, ref_calc_grad_grads("linear", params, x, y), "calc_grad",
                 on=f"a linear model and a random batch of {n}")


@pytest.mark.exercise("calc_grad")
def test_calc_grad_uses_the_model_it_is_given(student, rng):
    need(student, "calc_grad")
    n = int(rng.integers(20, 100))
    x, y = rand(rng, n, 784), labels(rng, n)
    params = model_params(rng, "net", hidden=int(rng.integers(3, 12)))
    got = probe(student, CALC_GRAD, x=x, y=y, params=params, kind="net", calls=1)
    expect_grads(got, ref_calc_grad_grads("net", params, x, y), "calc_grad",
                 on="a two-layer model passed as `model`")


@pytest.mark.exercise("calc_grad")
def test_calc_grad_adds_to_the_gradients(student, rng):
    need(student, "calc_grad")
    n = int(rng.integers(20, 100))
    x, y, params = rand(rng, n, 784), labels(rng, n), model_params(rng, "linear")
    got = probe(student, CALC_GRAD, x=x, y=y, params=params, kind="linear", calls=2)
    expect_grads(got, ref_calc_grad_grads("linear", params, x, y, calls=2),
                 "calc_grad called twice", on="the same batch (the second call should add the "
                 "same gradients again; do not reset them in calc_grad)")


# ================================================================================ train_epoch
TRAIN_EPOCH = '''
f = _rebind(train_epoch, dl=batches, calc_grad=_refs["calc_grad"], mnist_loss=_refs["mnist_loss"])
ps = _leaves(params)
model = _model(kind, ps)
for _ in range(epochs):
    f(model, lr, tuple(ps))
result = dict(params=[p.detach().clone() for p in ps], grads=_grads(ps))
'''


def train_data(rng, n=320, batch_size=64):
    x, y = rand(rng, n, 784), labels(rng, n)
    return ref.batches(x, y, batch_size)


def ref_train(kind, params, batches, lr, epochs):
    ps = leaves(params)
    model = ref_model(kind, ps)
    epoch = ref.with_globals(ref.train_epoch, dl=batches)
    for _ in range(epochs):
        epoch(model, lr, tuple(ps))
    return [p.detach() for p in ps]


def check_trained(got, want, on):
    check(isinstance(got, dict) and isinstance(got.get("params"), list), "train_epoch: no result")
    for i, (p, w) in enumerate(zip(got["params"], want)):
        expect_close(p, w, f"parameter {i} after train_epoch", on=on)


@pytest.mark.exercise("train_epoch")
def test_train_epoch_linear_model(student, rng):
    need(student, "train_epoch")
    batches, params = train_data(rng), model_params(rng, "linear")
    got = probe(student, TRAIN_EPOCH, batches=batches, params=params, kind="linear", lr=1.0, epochs=1)
    check_trained(got, ref_train("linear", params, batches, 1.0, 1),
                  on="one epoch of 5 random mini-batches, a linear model, lr=1")


@pytest.mark.exercise("train_epoch")
def test_train_epoch_learning_rate_and_two_epochs(student, rng):
    need(student, "train_epoch")
    lr = float(rng.uniform(0.05, 0.5))
    batches, params = train_data(rng, n=256, batch_size=32), model_params(rng, "linear")
    got = probe(student, TRAIN_EPOCH, batches=batches, params=params, kind="linear", lr=lr, epochs=2)
    check_trained(got, ref_train("linear", params, batches, lr, 2),
                  on=f"two epochs of 8 random mini-batches with lr={lr:.3f}")


@pytest.mark.exercise("train_epoch")
def test_train_epoch_any_parameters(student, rng):
    need(student, "train_epoch")
    params = model_params(rng, "net", hidden=int(rng.integers(3, 10)), scale=0.3)
    batches = train_data(rng, n=192, batch_size=48)
    got = probe(student, TRAIN_EPOCH, batches=batches, params=params, kind="net", lr=0.5, epochs=1)
    check_trained(got, ref_train("net", params, batches, 0.5, 1),
                  on="a two-layer model with 4 parameter tensors")


@pytest.mark.exercise("train_epoch")
def test_train_epoch_resets_the_gradients(student, rng):
    need(student, "train_epoch")
    batches, params = train_data(rng, n=128, batch_size=32), model_params(rng, "linear")
    got = probe(student, TRAIN_EPOCH, batches=batches, params=params, kind="linear", lr=0.1, epochs=1)
    check(isinstance(got, dict) and isinstance(got.get("grads"), list), "train_epoch: no result")
    for g in got["grads"]:
        check(g is None or bool((as_tensor(g, "a gradient") == 0).all()),
              "after train_epoch the gradients are not zero: reset each parameter's gradient "
              "after its step")


# ================================================================================ batch_accuracy
def check_accuracy(got, want, on):
    expect_number(got, want, "batch_accuracy(xb, yb)", on=on)


@pytest.mark.exercise("batch_accuracy")
def test_batch_accuracy_random_scores(student, rng):
    n = int(rng.integers(50, 300))
    xb, yb = randn(rng, n, 1, scale=2.0), labels(rng, n)
    check_accuracy(student.call("batch_accuracy", xb, yb), ref.batch_accuracy(xb, yb),
                   on=f"{n} random scores and labels")


@pytest.mark.exercise("batch_accuracy")
def test_batch_accuracy_small_positive_scores(student, rng):
    n = int(rng.integers(20, 80))
    xb, yb = torch.from_numpy(rng.uniform(0.01, 0.49, (n, 1)).astype("float32")), labels(rng, n)
    check_accuracy(student.call("batch_accuracy", xb, yb), ref.batch_accuracy(xb, yb),
                   on="scores between 0 and 0.5 (a positive score means a 3 once sigmoid is applied)")


@pytest.mark.exercise("batch_accuracy")
def test_batch_accuracy_all_right_and_all_wrong(student, rng):
    n = int(rng.integers(5, 40))
    yb = labels(rng, n)
    xb = (yb.float() * 2 - 1) * torch.from_numpy(rng.uniform(0.5, 5, (n, 1)).astype("float32"))
    check_accuracy(student.call("batch_accuracy", xb, yb), torch.tensor(1.0), on="a batch where every prediction is right")
    check_accuracy(student.call("batch_accuracy", -xb, yb), torch.tensor(0.0), on="a batch where every prediction is wrong")


# ================================================================================ validate_epoch
VALIDATE = '''
f = _rebind(validate_epoch, valid_dl=batches, batch_accuracy=_refs["batch_accuracy"])
ps = [w, b]
value = f(_model("linear", ps))
result = [type(value).__name__, value]
'''


def ref_validate(batches, w, b):
    return ref.with_globals(ref.validate_epoch, valid_dl=batches)(ref_model("linear", [w, b]))


@pytest.mark.exercise("validate_epoch")
def test_validate_epoch_random_model(student, rng):
    need(student, "validate_epoch")
    n = 50 * int(rng.integers(3, 7))
    batches = ref.batches(rand(rng, n, 784), labels(rng, n), 50)
    w, b = randn(rng, 784, 1, scale=0.1), randn(rng, 1, scale=0.1)
    _, value = probe(student, VALIDATE, batches=batches, w=w, b=b)
    expect_number(value, ref_validate(batches, w, b), "validate_epoch(model)",
                  on=f"{len(batches)} random validation batches", atol=1e-4)


@pytest.mark.exercise("validate_epoch")
def test_validate_epoch_averages_every_batch(student, rng):
    need(student, "validate_epoch")
    size = int(rng.integers(10, 40))
    w, b = torch.zeros(784, 1), torch.ones(1)  # always scores 1: says "3" for every image
    fractions = [1.0, 0.0] + [float(f) for f in rng.uniform(0.2, 0.8, int(rng.integers(1, 4)))]
    batches = [(rand(rng, size, 784), torch.from_numpy((rng.random((size, 1)) < f).astype("int64")))
               for f in fractions]
    _, value = probe(student, VALIDATE, batches=batches, w=w, b=b)
    expect_number(value, ref_validate(batches, w, b), "validate_epoch(model)",
                  on="batches whose accuracies differ (use every batch of valid_dl)", atol=1e-4)


@pytest.mark.exercise("validate_epoch")
def test_validate_epoch_returns_a_rounded_float(student, rng):
    need(student, "validate_epoch")
    n = 30 * int(rng.integers(2, 5))
    batches = ref.batches(rand(rng, n, 784), labels(rng, n), 30)
    kind, value = probe(student, VALIDATE, batches=batches, w=randn(rng, 784, 1, scale=0.1),
                        b=randn(rng, 1, scale=0.1))
    check(kind == "float", f"validate_epoch should return a Python float (use .item()), got {kind}")
    check(round(value, 4) == value, "validate_epoch should round its result to 4 decimals")


# ================================================================================ BasicOptim
@pytest.mark.exercise("BasicOptim")
def test_basic_optim_step(student, rng):
    need(student, "BasicOptim")
    params = [randn(rng, int(rng.integers(2, 9)), 3), randn(rng, 3)]
    grads = [randn(rng, *p.shape) for p in params]
    lr = float(rng.uniform(0.01, 2.0))
    got = probe(student, '''
ps = _leaves(params)
for p, g in zip(ps, grads):
    p.grad = g.clone()
opt = BasicOptim(ps, lr)
opt.step()
result = [p.detach().clone() for p in ps]
''', params=params, grads=grads, lr=lr)
    for i, (p, g, after) in enumerate(zip(params, grads, got)):
        expect_close(after, p - g * lr, f"parameter {i} after step()", on=f"lr={lr:.3f}")


@pytest.mark.exercise("BasicOptim")
def test_basic_optim_zero_grad(student, rng):
    need(student, "BasicOptim")
    got = probe(student, '''
ps = _leaves(params)
for p in ps:
    p.grad = _torch.ones_like(p)
opt = BasicOptim(ps, 0.1)
opt.zero_grad()
result = _grads(ps)
''', params=[randn(rng, 4, 2), randn(rng, 2)])
    for g in got:
        check(g is None or bool((as_tensor(g, "a gradient") == 0).all()),
              "after zero_grad() the parameters' gradients should be None or zero")


@pytest.mark.exercise("BasicOptim")
def test_basic_optim_trains_a_module_for_several_steps(student, rng):
    need(student, "BasicOptim")
    n, steps, lr = 64, 3, float(rng.uniform(0.1, 1.0))
    x, y = rand(rng, n, 784), labels(rng, n)
    w, b = randn(rng, 1, 784, scale=0.05), randn(rng, 1, scale=0.05)
    got = probe(student, '''
m = _torch.nn.Linear(784, 1)
with _torch.no_grad():
    m.weight.copy_(w)
    m.bias.copy_(b)
opt = BasicOptim(m.parameters(), lr)
for _ in range(steps):
    _refs["calc_grad"](x, y, m)
    opt.step()
    opt.zero_grad()
result = [m.weight.detach().clone(), m.bias.detach().clone()]
''', x=x, y=y, w=w, b=b, lr=lr, steps=steps)
    ps = leaves([w, b])
    for _ in range(steps):
        ref.calc_grad(x, y, lambda xb: xb @ ps[0].T + ps[1])
        for p in ps:
            p.data -= p.grad * lr
            p.grad = None
    for i, (g, want) in enumerate(zip(got, ps)):
        expect_close(g, want.detach(), f"parameter {i} of an nn.Linear",
                     on=f"{steps} steps with BasicOptim(model.parameters(), lr) (a generator: "
                        "keep the parameters as a list)")


# ================================================================================ make_learner
MAKE_LEARNER = '''
from fastai.data.core import DataLoaders as _DataLoaders
from fastai.data.load import DataLoader as _DataLoader
dls = _DataLoaders(_DataLoader(list(zip(x, y)), batch_size=16),
                   _DataLoader(list(zip(x, y)), batch_size=16))
f = _rebind(make_learner, mnist_loss=_refs["mnist_loss"], batch_accuracy=_refs["batch_accuracy"])
learn = f(dls)
'''


def learner_data(rng, n=48):
    return dict(x=rand(rng, n, 784), y=labels(rng, n))


@pytest.mark.exercise("make_learner")
def test_make_learner_uses_the_dataloaders(student, rng):
    need(student, "make_learner")
    res = probe(student, MAKE_LEARNER + '''
from fastai.learner import Learner as _Learner
result = [isinstance(learn, _Learner), learn.dls is dls if isinstance(learn, _Learner) else False]
''', **learner_data(rng))
    check(res[0], "make_learner should return a fastai Learner")
    check(res[1], "the Learner should be built from the DataLoaders passed to make_learner")


@pytest.mark.exercise("make_learner")
def test_make_learner_fresh_linear_model(student, rng):
    need(student, "make_learner")
    n = int(rng.integers(2, 20))
    res = probe(student, MAKE_LEARNER + '''
out = learn.model(probe_x)
other = f(dls)
result = [out, sum(p.numel() for p in learn.model.parameters()), other.model is not learn.model]
''', probe_x=rand(rng, n, 784), **learner_data(rng))
    out, count, fresh = res
    expect_shape(out, (n, 1), "the Learner's model output for a batch of flattened images")
    check(count == 785, "the model should be one linear layer from 784 pixels to 1 number "
                        "(784 weights and 1 bias)")
    check(fresh, "make_learner should build a new model each time it is called")


@pytest.mark.exercise("make_learner")
def test_make_learner_loss_function(student, rng):
    need(student, "make_learner")
    n = int(rng.integers(10, 60))
    preds, targs = randn(rng, n, 1, scale=2.0), labels(rng, n)
    got = probe(student, MAKE_LEARNER + '''
try:
    result = float(learn.loss_func(preds, targs))
except Exception as exc:
    raise RuntimeError(f"the Learner's loss function failed on scores and 0/1 labels: {exc}") from None
''', preds=preds, targs=targs, **learner_data(rng))
    expect_number(got, ref.mnist_loss(preds, targs), "the Learner's loss function",
                  on="random scores and labels (use mnist_loss)")


@pytest.mark.exercise("make_learner")
def test_make_learner_sgd_optimizer(student, rng):
    need(student, "make_learner")
    p0, g = randn(rng, 5, 3), randn(rng, 5, 3)
    lr = float(rng.uniform(0.1, 1.0))
    res = probe(student, MAKE_LEARNER + '''
from fastai.optimizer import Optimizer as _Optimizer
p = p0.clone().requires_grad_()
opt = learn.opt_func([p], lr=lr)
p.grad = g.clone()
opt.step()
result = [isinstance(opt, _Optimizer), p.detach().clone()]
''', p0=p0, g=g, lr=lr, **learner_data(rng))
    is_fastai, stepped = res
    check(is_fastai, "the Learner's opt_func should make a fastai optimizer (use SGD)")
    expect_close(stepped, p0 - lr * g, "a parameter after one step of the Learner's optimizer",
                 on="plain SGD was expected (opt_func=SGD)")


@pytest.mark.exercise("make_learner")
def test_make_learner_metric(student, rng):
    need(student, "make_learner")
    n = int(rng.integers(20, 80))
    preds, targs = randn(rng, n, 1, scale=2.0), labels(rng, n)
    values = probe(student, MAKE_LEARNER + '''
result = []
for m in learn.metrics:
    try:
        result.append(float(m.func(preds, targs)))
    except Exception:
        pass  # not a metric of scores and labels: it cannot be batch_accuracy
''', preds=preds, targs=targs, **learner_data(rng))
    want = float(ref.batch_accuracy(preds, targs))
    check(any(abs(v - want) < 1e-5 for v in values),
          "the Learner should report batch_accuracy as its metric (metrics=batch_accuracy)")


# ================================================================================ simple_net
SIMPLE_NET = '''
f = _rebind(simple_net, w1=p[0], b1=p[1], w2=p[2], b2=p[3])
result = f(x)
'''


def net_params(rng, hidden, b1_shift=0.0):
    return [randn(rng, 784, hidden, scale=0.1), randn(rng, hidden) + b1_shift,
            randn(rng, hidden, 1), randn(rng, 1)]


def ref_net(params, x):
    return ref.with_globals(ref.simple_net, w1=params[0], b1=params[1], w2=params[2], b2=params[3])(x)


@pytest.mark.exercise("simple_net")
def test_simple_net_values(student, rng):
    need(student, "simple_net")
    n, hidden = int(rng.integers(5, 50)), int(rng.integers(5, 20))
    params, x = net_params(rng, hidden), rand(rng, n, 784)
    got = probe(student, SIMPLE_NET, p=params, x=x)
    expect_close(got, ref_net(params, x), "simple_net(xb)",
                 on=f"a batch of {n} random images and a hidden layer of {hidden}")


@pytest.mark.exercise("simple_net")
def test_simple_net_one_image(student, rng):
    need(student, "simple_net")
    params, x = net_params(rng, 30), rand(rng, 1, 784)
    got = probe(student, SIMPLE_NET, p=params, x=x)
    expect_close(got, ref_net(params, x), "simple_net(xb)", on="a batch holding a single image")


@pytest.mark.exercise("simple_net")
def test_simple_net_applies_relu(student, rng):
    need(student, "simple_net")
    n, hidden = int(rng.integers(3, 20)), int(rng.integers(4, 12))
    params, x = net_params(rng, hidden, b1_shift=-1000.0), rand(rng, n, 784)
    got = probe(student, SIMPLE_NET, p=params, x=x)
    expect_close(got, ref_net(params, x), "simple_net(xb)",
                 on="parameters that make every first-layer output negative (ReLU must zero them)")


# ================================================================================ relu
@pytest.mark.exercise("relu")
def test_relu_random_tensor(student, rng):
    shape = tuple(int(s) for s in rng.integers(2, 7, int(rng.integers(1, 4))))
    x = randn(rng, *shape)
    expect_close(student.call("relu", x), torch.relu(x), "relu(x)", on=f"a random tensor of shape {shape}")


@pytest.mark.exercise("relu")
def test_relu_from_minus_2_to_2(student, rng):
    x = torch.linspace(-2, 2, 41)
    expect_close(student.call("relu", x), torch.relu(x), "relu(x)",
                 on="41 evenly spaced numbers from -2 to 2", check_dtype=True)


@pytest.mark.exercise("relu")
def test_relu_leaves_its_input_alone(student, rng):
    need(student, "relu")
    x = randn(rng, int(rng.integers(5, 30)))
    unchanged = probe(student, '''
before = x.clone()
relu(x)
result = bool(_torch.equal(x, before))
''', x=x)
    check(unchanged is True, "relu changed the tensor it was given: return a new tensor instead")


# ================================================================================ relu_module
@pytest.mark.exercise("relu_module")
def test_relu_module_is_a_module(student, rng):
    need(student, "relu_module")
    res = probe(student, '''
result = isinstance(relu_module(), _torch.nn.Module)
''')
    check(res is True, "relu_module() should return an nn.Module object (an instance, not the class "
                       "or a function)")


@pytest.mark.exercise("relu_module")
def test_relu_module_computes_relu(student, rng):
    need(student, "relu_module")
    x = randn(rng, int(rng.integers(2, 10)), int(rng.integers(2, 10)))
    got = probe(student, '''
result = relu_module()(x)
''', x=x)
    expect_close(got, torch.relu(x), "relu_module()(x)", on="a random tensor")


@pytest.mark.exercise("relu_module")
def test_relu_module_inside_sequential(student, rng):
    need(student, "relu_module")
    w1, b1, w2, b2 = randn(rng, 3, 4), randn(rng, 3), randn(rng, 1, 3), randn(rng, 1)
    x = randn(rng, 6, 4)
    got = probe(student, '''
nn_ = _torch.nn
seq = nn_.Sequential(nn_.Linear(4, 3), relu_module(), nn_.Linear(3, 1))
with _torch.no_grad():
    seq[0].weight.copy_(w1); seq[0].bias.copy_(b1)
    seq[2].weight.copy_(w2); seq[2].bias.copy_(b2)
    result = seq(x)
''', w1=w1, b1=b1, w2=w2, b2=b2, x=x)
    want = torch.relu(x @ w1.T + b1) @ w2.T + b2
    expect_close(got, want, "nn.Sequential(nn.Linear(4, 3), relu_module(), nn.Linear(3, 1))(x)",
                 on="a random batch")
