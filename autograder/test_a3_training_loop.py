"""Hidden tests for a3_training_loop (notebook `training_loop`): one group of checks per exercise.

What the grader trusts (issue 10): only plain data the student's functions return, compared here
with the reference computed here, and the notebook's source, read here.

- Comparisons are kind-strict (``mnistkit.grading.expect``): True/False never passes for a
  number, a number never for True/False, and an integer only where the notebook allows one.
- Notebook globals the chapter's functions read (`linear1` reads `weights`/`bias`, `simple_net`
  `w1, b1, w2, b2`, `train_epoch` loops over `dl`, `validate_epoch` over `valid_dl`) get other
  values through ``isolation`` ``overrides``; the notebook itself is left alone.
- An exercise that uses another gets a stand-in for it (``mnistkit.grading.isolation``), never
  the reference: `calc_grad` and `make_learner` a loss of the grader's own in place of
  `mnist_loss`, `train_epoch` a `calc_grad` of the grader's own (another loss), `make_learner`
  a metric of the grader's own in place of `batch_accuracy` (``Neutral``: the grader computes
  the expected result with the reference rebound to the same stand-in), and `validate_epoch` a
  table of `batch_accuracy`'s results on exactly the scores it will see (``Answers``).
- Technique (`flatten_images` returns a view, `init_params` a leaf, `linear1` has no Python
  loop, `relu` leaves its input alone, `relu_module` builds a module) is decided from the answer's
  syntax tree (the rules of ``mnistkit.grading.code_reading``, stated in the notebook),
  never from anything computed inside the sandbox, where the student's code could patch it. Each
  technique check also needs the function to give right results, so a stub earns nothing.
- The ResNet-18 finale trains nothing here: `image_dls` is checked on a small random image folder
  written in the sandbox, `resnet_learner` on the model it builds for the grader's own
  `DataLoaders` (random class count), filled with the grader's weights on both sides (the
  reference is ``resnet_rebuild.resnet_model``, torch and torchvision only: no fastai import in the grader),
  and on its loss and metric applied to the grader's random scores.
Inputs come from the seeded `rng`; every training check is tiny (a few hundred random
784-pixel inputs, one or two epochs).
"""
from __future__ import annotations

import pytest
import torch

from mnistkit.grading import (chapter_data, folder_probes, isolation, model_probes, resnet_rebuild,
                              stand_ins)
from mnistkit.grading import training_probes as training
from mnistkit.grading.code_reading import (expect_technique, in_place_problems, leaf_problems,
                                           loop_problems, module_problems, view_problems)
from mnistkit.grading.expect import (Mismatch, as_tensor, check, expect_close, expect_equal,
                                     expect_number, expect_shape, expect_true_false, form_of,
                                     kind_of)
from mnistkit.grading.isolation import Answers, Neutral
from mnistkit.grading.model_probes import FILL_WEIGHTS  # noqa: F401 (tests/test_reference_a3_*)
from mnistkit.grading.seeded import folder_case, labels, model_params, rand, randn, random_spec, random_word
from mnistkit.grading.student import NotPlainData
from solutions import a3_training_loop as ref

ex = pytest.mark.exercise

# ------------------------------------------------------------------- the grader's own stand-ins
# A loss that is not the notebook's mnist_loss nor any exercise's answer (log-cosh of a squashed
# score against shifted targets), a gradient helper with another loss, a metric that is not an
# accuracy: the grader's own functions (mnistkit.grading.stand_ins), sent as source.
LOSS = Neutral.of("mnist_loss", stand_ins.kit_loss)
STEP = Neutral.of("calc_grad", stand_ins.kit_calc_grad)
METRIC = Neutral.of("batch_accuracy", stand_ins.kit_metric)


# ================================================================================ flatten_images
@ex("flatten_images")
def test_flatten_images_values(student, rng):
    n = int(rng.integers(2, 40))
    images = rand(rng, n, 28, 28)
    got = student.call("flatten_images", images)
    expect_close(got, ref.flatten_images(images), "flatten_images(images)",
                 on=f"a random stack of {n} images of 28x28")


@ex("flatten_images")
def test_flatten_images_any_image_size(student, rng):
    n, h, w = int(rng.integers(2, 20)), int(rng.integers(2, 12)), int(rng.integers(13, 27))
    images = rand(rng, n, h, w)
    got = student.call("flatten_images", images)
    expect_close(got, ref.flatten_images(images), "flatten_images(images)",
                 on=f"a stack of {n} images of {h}x{w} pixels (not 28x28)")


@ex("flatten_images")
def test_flatten_images_one_image(student, rng):
    images = rand(rng, 1, 28, 28)
    got = student.call("flatten_images", images)
    expect_close(got, ref.flatten_images(images), "flatten_images(images)",
                 on="a stack holding a single image")


@ex("flatten_images")
def test_flatten_images_is_a_view(student, rng, notebook):
    """Decided from the source: the answer returns `images.view(...)` of its argument."""
    n, h, w = int(rng.integers(2, 30)), int(rng.integers(5, 29)), int(rng.integers(5, 29))
    images = rand(rng, n, h, w)
    expect_close(student.call("flatten_images", images), ref.flatten_images(images),
                 "flatten_images(images)", on=f"a stack of {n} images of {h}x{w}")
    expect_technique(notebook, "flatten_images", view_problems,
                     "return `images.view(...)` of the images you are given, so the result "
                     "shares their memory, with nothing that copies them")


# ================================================================================ zip_pairs
def call_zip_pairs(student, *args):
    try:
        return student.call("zip_pairs", *args)
    except NotPlainData as exc:
        raise Mismatch(f"zip_pairs should return a list (wrap zip(...) in list(...)): {exc}") from None


@ex("zip_pairs")
def test_zip_pairs_numbers_and_letters(student, rng):
    n = int(rng.integers(3, 12))
    a = [int(v) for v in rng.integers(-50, 50, n)]
    b = random_word(rng, n)
    expect_equal(call_zip_pairs(student, a, b), ref.zip_pairs(a, b), "zip_pairs(a, b)",
                 on=f"a list of {n} numbers and a string of {n} letters (expected the list of "
                    "(a[i], b[i]) tuples)")


@ex("zip_pairs")
def test_zip_pairs_returns_a_list_of_tuples(student, rng):
    n = int(rng.integers(2, 8))
    out = call_zip_pairs(student, list(range(n)), "x" * n)
    check(type(out) is list, f"zip_pairs should return a list, got {type(out).__name__} "
                             "(wrap zip(...) in list(...))")
    check(all(type(t) is tuple for t in out), "every item of the list should be a tuple")


@ex("zip_pairs")
def test_zip_pairs_images_and_labels(student, rng):
    n = int(rng.integers(3, 10))
    x, y = rand(rng, n, 6), labels(rng, n)
    got = call_zip_pairs(student, x, y)
    check(type(got) is list and len(got) == n,
          f"zip_pairs(x, y) should give a list of {n} pairs for {n} inputs and {n} labels")
    for i, pair in enumerate(got):
        check(type(pair) is tuple and len(pair) == 2, "every item should be an (x, y) tuple")
        expect_close(pair[0], x[i], f"the input of pair {i}", on="a tensor of inputs and labels")
        expect_close(pair[1], y[i], f"the label of pair {i}", on="a tensor of inputs and labels")


@ex("zip_pairs")
def test_zip_pairs_stops_at_the_shorter_input(student, rng):
    n, m = int(rng.integers(2, 6)), int(rng.integers(7, 12))
    a = [int(v) for v in rng.integers(0, 100, m)]
    b = random_word(rng, n)
    on = "inputs of different lengths (stop at the shorter one, like zip)"
    expect_equal(call_zip_pairs(student, a, b), ref.zip_pairs(a, b), "zip_pairs(a, b)", on=on)
    expect_equal(call_zip_pairs(student, b, a), ref.zip_pairs(b, a), "zip_pairs(b, a)", on=on)


# ================================================================================ init_params
@ex("init_params")
def test_init_params_shape(student, rng):
    rows, cols = int(rng.integers(2, 50)), int(rng.integers(1, 40))
    got = student.call("init_params", (rows, cols))
    t = expect_shape(got, (rows, cols), f"init_params(({rows}, {cols}))")
    check(t.dtype == torch.float32, f"init_params should make float32 numbers, got {t.dtype}")
    k = int(rng.integers(1, 60))
    expect_shape(student.call("init_params", k), (k,), f"init_params({k})")


@ex("init_params")
def test_init_params_tracks_gradients_as_a_leaf(student, rng, notebook):
    """Decided from the source: what init_params returns is made a leaf with requires_grad_()."""
    size = (int(rng.integers(2, 30)), 1)
    t = expect_shape(student.call("init_params", size), size, f"init_params({size})")
    check(kind_of(t) == "f", f"init_params should make floating-point numbers, got {t.dtype}")
    expect_technique(notebook, "init_params", leaf_problems,
                     "return the tensor that tracks gradients itself (a leaf): only a leaf gets "
                     "its .grad filled in by backward")


def spread_check(values, std, what):
    t = as_tensor(values, what)
    check(kind_of(t) == "f", f"{what} holds {t.dtype} values, expected floating-point numbers")
    v = t.double().flatten()
    mean, sd = v.mean().item(), v.std().item()
    check(abs(mean) < 0.03 * std, f"{what}: the values should be centred on 0")
    check(abs(sd - std) < 0.03 * std, f"{what}: the values should have standard deviation std")
    inside = (v.abs() < std).double().mean().item()
    check(abs(inside - 0.6827) < 0.015, f"{what}: the values should follow a normal distribution "
                                        "(about 68% within one standard deviation of 0)")


@ex("init_params")
def test_init_params_default_spread(student, rng):
    spread_check(student.call("init_params", (250, 400)), 1.0,
                 "init_params(size) with the default std")


@ex("init_params")
def test_init_params_std_sets_the_spread(student, rng):
    std = float(rng.uniform(0.05, 3.0))
    spread_check(student.call("init_params", (250, 400), std), std,
                 f"init_params(size, std={std:.3f})")


# ================================================================================ blank_image_quiz
@ex("blank_image_quiz")
def test_blank_image_output_without_bias(student):
    value = expect_number(student.get("no_bias_output"), "no_bias_output", kinds="fi")
    check(abs(value - ref.no_bias_output) < 1e-6,
          "no_bias_output is not what xb@weights gives for an all-zero image")


@ex("blank_image_quiz")
def test_blank_image_needs_a_bias(student):
    value = student.get("bias_needed_for_blank")
    check(isinstance(value, bool), "bias_needed_for_blank should be True or False")
    expect_equal(value, ref.bias_needed_for_blank, "bias_needed_for_blank",
                 on="think about what any weights times all-zero pixels give")


# ================================================================================ linear1
def call_linear1(student, x, w, b):
    return isolation.call(student, "linear1", x, overrides={"weights": w, "bias": b})


def ref_linear1(x, w, b):
    return isolation.rebind(ref.linear1, weights=w, bias=b)(x)


@ex("linear1")
def test_linear1_values(student, rng):
    n = int(rng.integers(5, 60))
    x, w, b = rand(rng, n, 784), randn(rng, 784, 1), randn(rng, 1)
    expect_close(call_linear1(student, x, w, b), ref_linear1(x, w, b), "linear1(xb)",
                 on=f"a batch of {n} random images with other weights and bias")


@ex("linear1")
def test_linear1_single_image_batch(student, rng):
    x, w, b = rand(rng, 1, 784), randn(rng, 784, 1), randn(rng, 1)
    expect_close(call_linear1(student, x, w, b), ref_linear1(x, w, b), "linear1(xb)",
                 on="a batch holding a single image")


@ex("linear1")
def test_linear1_adds_the_bias(student, rng):
    n = int(rng.integers(2, 10))
    x, w, b = torch.zeros(n, 784), randn(rng, 784, 1), randn(rng, 1, scale=3.0)
    expect_close(call_linear1(student, x, w, b), ref_linear1(x, w, b), "linear1(xb)",
                 on="blank images (all pixels 0), where the prediction must be the bias")


@ex("linear1")
def test_linear1_has_no_python_loop(student, rng, notebook):
    """Decided from the source: no loop, comprehension or iterating builtin in linear1."""
    n = int(rng.integers(20, 50))
    x, w, b = rand(rng, n, 784), randn(rng, 784, 1), randn(rng, 1)
    expect_close(call_linear1(student, x, w, b), ref_linear1(x, w, b), "linear1(xb)",
                 on=f"a batch of {n} random images")
    expect_technique(notebook, "linear1", loop_problems,
                     "use one matrix multiplication (@) for the whole batch, not a Python loop")


# ================================================================================ calc_grad
def ref_calc_grad_grads(kind, params, x, y, calls=1):
    ps = training.leaves(params)
    model = training.linear_or_net(kind, ps)
    calc_grad = LOSS.rebind(ref.calc_grad)
    for _ in range(calls):
        calc_grad(x, y, model)
    return [p.grad for p in ps]


def probe_calc_grad(student, kind, params, x, y, calls=1):
    return isolation.probe(student, "calc_grad", training.calc_grad_gradients, stand_ins=[LOSS],
                           helpers=training.MODEL_HELPERS,
                           x=x, y=y, params=params, kind=kind, calls=calls)


def expect_grads(got, want, what, on):
    check(isinstance(got, (list, tuple)) and len(got) == len(want), f"{what}: wrong number of gradients")
    for i, (g, w) in enumerate(zip(got, want)):
        check(g is not None, f"{what}: parameter {i} has no gradient{' on ' + on if on else ''} "
                             "(was backward called on the loss of this model?)")
        expect_close(g, w, f"{what}: the gradient of parameter {i}", on=on)


@ex("calc_grad")
def test_calc_grad_linear_model(student, rng):
    n = int(rng.integers(20, 100))
    x, y, params = rand(rng, n, 784), labels(rng, n), model_params(rng, "linear")
    expect_grads(probe_calc_grad(student, "linear", params, x, y),
                 ref_calc_grad_grads("linear", params, x, y), "calc_grad",
                 on=f"a linear model and a random batch of {n} (the grader's own loss in place "
                    "of mnist_loss: call mnist_loss by name)")


@ex("calc_grad")
def test_calc_grad_uses_the_model_it_is_given(student, rng):
    n = int(rng.integers(20, 100))
    x, y = rand(rng, n, 784), labels(rng, n)
    params = model_params(rng, "net", hidden=int(rng.integers(3, 12)))
    expect_grads(probe_calc_grad(student, "net", params, x, y),
                 ref_calc_grad_grads("net", params, x, y), "calc_grad",
                 on="a two-layer model passed as `model`")


@ex("calc_grad")
def test_calc_grad_adds_to_the_gradients(student, rng):
    n = int(rng.integers(20, 100))
    x, y, params = rand(rng, n, 784), labels(rng, n), model_params(rng, "linear")
    expect_grads(probe_calc_grad(student, "linear", params, x, y, calls=2),
                 ref_calc_grad_grads("linear", params, x, y, calls=2),
                 "calc_grad called twice", on="the same batch (the second call should add the "
                 "same gradients again; do not reset them in calc_grad)")


# ================================================================================ train_epoch
def train_data(rng, n=320, batch_size=64):
    x, y = rand(rng, n, 784), labels(rng, n)
    return chapter_data.batches(x, y, batch_size)


def probe_train(student, kind, params, batches, lr, epochs):
    got = isolation.probe(student, "train_epoch", training.train_epoch_epochs, stand_ins=[STEP],
                          helpers=training.MODEL_HELPERS,
                          overrides={"dl": batches}, params=params, kind=kind, lr=lr, epochs=epochs)
    check(isinstance(got, dict) and isinstance(got.get("params"), list)
          and isinstance(got.get("grads"), list) and len(got["params"]) == len(params),
          "train_epoch: the parameters could not be read back after training")
    return got


def ref_train(kind, params, batches, lr, epochs):
    ps = training.leaves(params)
    model = training.linear_or_net(kind, ps)
    epoch = STEP.rebind(ref.train_epoch, dl=batches)
    for _ in range(epochs):
        epoch(model, lr, tuple(ps))
    return [p.detach() for p in ps]


def check_trained(got, want, on):
    for i, (p, w) in enumerate(zip(got["params"], want)):
        expect_close(p, w, f"parameter {i} after train_epoch", on=on)


@ex("train_epoch")
def test_train_epoch_linear_model(student, rng):
    batches, params = train_data(rng), model_params(rng, "linear")
    got = probe_train(student, "linear", params, batches, 1.0, 1)
    check_trained(got, ref_train("linear", params, batches, 1.0, 1),
                  on="one epoch of 5 random mini-batches, a linear model, lr=1 (with the grader's "
                     "own calc_grad: call calc_grad by name)")


@ex("train_epoch")
def test_train_epoch_learning_rate_and_two_epochs(student, rng):
    lr = float(rng.uniform(0.05, 0.5))
    batches, params = train_data(rng, n=256, batch_size=32), model_params(rng, "linear")
    got = probe_train(student, "linear", params, batches, lr, 2)
    check_trained(got, ref_train("linear", params, batches, lr, 2),
                  on=f"two epochs of 8 random mini-batches with lr={lr:.3f}")


@ex("train_epoch")
def test_train_epoch_any_parameters(student, rng):
    params = model_params(rng, "net", hidden=int(rng.integers(3, 10)), scale=0.3)
    batches = train_data(rng, n=192, batch_size=48)
    got = probe_train(student, "net", params, batches, 0.5, 1)
    check_trained(got, ref_train("net", params, batches, 0.5, 1),
                  on="a two-layer model with 4 parameter tensors")


@ex("train_epoch")
def test_train_epoch_resets_the_gradients(student, rng):
    """After a right epoch the gradients are zero (or None); a function that does nothing
    leaves them None too, so the parameters must have been trained as well."""
    batches, params = train_data(rng, n=128, batch_size=32), model_params(rng, "linear")
    got = probe_train(student, "linear", params, batches, 0.1, 1)
    for g in got["grads"]:
        check(g is None or (kind_of(as_tensor(g, "a gradient")) == "f"
                            and bool((as_tensor(g, "a gradient") == 0).all())),
              "after train_epoch the gradients are not zero: reset each parameter's gradient "
              "after its step")
    check_trained(got, ref_train("linear", params, batches, 0.1, 1),
                  on="one epoch of 4 random mini-batches with lr=0.1")


# ================================================================================ batch_accuracy
def check_accuracy(got, want, on):
    """A rank-0 float tensor, as the prompt asks (a Python float is not one)."""
    expect_close(got, want, "batch_accuracy(xb, yb)", on=on)


@ex("batch_accuracy")
def test_batch_accuracy_random_scores(student, rng):
    n = int(rng.integers(50, 300))
    xb, yb = randn(rng, n, 1, scale=2.0), labels(rng, n)
    check_accuracy(student.call("batch_accuracy", xb, yb), ref.batch_accuracy(xb, yb),
                   on=f"{n} random scores and labels")


@ex("batch_accuracy")
def test_batch_accuracy_small_positive_scores(student, rng):
    n = int(rng.integers(20, 80))
    xb, yb = torch.from_numpy(rng.uniform(0.01, 0.49, (n, 1)).astype("float32")), labels(rng, n)
    check_accuracy(student.call("batch_accuracy", xb, yb), ref.batch_accuracy(xb, yb),
                   on="scores between 0 and 0.5 (a positive score means a 3 once sigmoid is applied)")


@ex("batch_accuracy")
def test_batch_accuracy_all_right_and_all_wrong(student, rng):
    n = int(rng.integers(5, 40))
    yb = labels(rng, n)
    xb = (yb.float() * 2 - 1) * torch.from_numpy(rng.uniform(0.5, 5, (n, 1)).astype("float32"))
    check_accuracy(student.call("batch_accuracy", xb, yb), ref.batch_accuracy(xb, yb),
                   on="a batch where every prediction is right")
    check_accuracy(student.call("batch_accuracy", -xb, yb), ref.batch_accuracy(-xb, yb),
                   on="a batch where every prediction is wrong")


# ================================================================================ validate_epoch
# The model is elementwise (no matrix product), so the scores the student's validate_epoch hands
# batch_accuracy are bit for bit the ones computed here, and the Answers table matches them.
def scores_of(xb, a, c):
    return xb[:, :1] * a + c


def probe_validate(student, batches, a, c):
    table = Answers("batch_accuracy")
    for xb, yb in batches:
        scores = scores_of(xb, a, c)
        table.add(scores, yb, result=ref.batch_accuracy(scores, yb))
    return isolation.probe(student, "validate_epoch", training.validate_epoch_of, stand_ins=[table],
                           overrides={"valid_dl": batches}, a=a, c=c)


def ref_validate(batches, a, c):
    return isolation.rebind(ref.validate_epoch, valid_dl=batches)(lambda xb: scores_of(xb, a, c))


@ex("validate_epoch")
def test_validate_epoch_random_model(student, rng):
    n = 50 * int(rng.integers(3, 7))
    batches = chapter_data.batches(rand(rng, n, 784), labels(rng, n), 50)
    a, c = float(rng.uniform(2, 6)), float(rng.uniform(-3, -1))
    expect_close(probe_validate(student, batches, a, c), ref_validate(batches, a, c),
                 "validate_epoch(model)", on=f"{len(batches)} random validation batches",
                 atol=1e-4)


@ex("validate_epoch")
def test_validate_epoch_averages_every_batch(student, rng):
    size = int(rng.integers(10, 40))
    fractions = [1.0, 0.0] + [float(f) for f in rng.uniform(0.2, 0.8, int(rng.integers(1, 4)))]
    batches = [(rand(rng, size, 784), torch.from_numpy((rng.random((size, 1)) < f).astype("int64")))
               for f in fractions]
    # a = 0, c = 1: the model always scores 1, "3" for every image
    expect_close(probe_validate(student, batches, 0.0, 1.0), ref_validate(batches, 0.0, 1.0),
                 "validate_epoch(model)", on="batches whose accuracies differ (use every batch "
                 "of valid_dl)", atol=1e-4)


@ex("validate_epoch")
def test_validate_epoch_returns_a_rounded_float(student, rng):
    n = 30 * int(rng.integers(2, 5))
    batches = chapter_data.batches(rand(rng, n, 784), labels(rng, n), 30)
    value = probe_validate(student, batches, float(rng.uniform(1, 4)), float(rng.uniform(-2, 0)))
    check(type(value) is float, f"validate_epoch should return a Python float (use .item()), "
                                f"got {type(value).__name__}")
    check(round(value, 4) == value, "validate_epoch should round its result to 4 decimals")


# ================================================================================ BasicOptim
@ex("BasicOptim")
def test_basic_optim_step(student, rng):
    params = [randn(rng, int(rng.integers(2, 9)), 3), randn(rng, 3)]
    grads = [randn(rng, *p.shape) for p in params]
    lr = float(rng.uniform(0.01, 2.0))
    got = isolation.probe(student, "BasicOptim", training.basic_optim_after_step,
                          helpers=(training.leaves,), params=params, grads=grads, lr=lr)
    check(isinstance(got, list) and len(got) == len(params), "BasicOptim: the parameters could "
                                                              "not be read back after step()")
    for i, (p, g, after) in enumerate(zip(params, grads, got)):
        expect_close(after, p - g * lr, f"parameter {i} after step()", on=f"lr={lr:.3f}")


@ex("BasicOptim")
def test_basic_optim_zero_grad(student, rng):
    got = isolation.probe(student, "BasicOptim", training.basic_optim_after_zero_grad,
                          helpers=(training.leaves, training.grads_of),
                          params=[randn(rng, 4, 2), randn(rng, 2)])
    check(isinstance(got, list) and len(got) == 2, "BasicOptim: the gradients could not be read back")
    for g in got:
        check(g is None or (kind_of(as_tensor(g, "a gradient")) == "f"
                            and bool((as_tensor(g, "a gradient") == 0).all())),
              "after zero_grad() the parameters' gradients should be None or zero")


@ex("BasicOptim")
def test_basic_optim_trains_a_module_for_several_steps(student, rng):
    n, steps, lr = 64, 3, float(rng.uniform(0.1, 1.0))
    x, y = rand(rng, n, 784), labels(rng, n)
    w, b = randn(rng, 1, 784, scale=0.05), randn(rng, 1, scale=0.05)
    got = isolation.probe(student, "BasicOptim", training.basic_optim_trains_linear,
                          helpers=(stand_ins.kit_loss,), x=x, y=y, w=w, b=b, lr=lr, steps=steps)
    kit_loss = LOSS.function()
    ps = training.leaves([w, b])
    for _ in range(steps):
        kit_loss(x @ ps[0].T + ps[1], y).backward()
        with torch.no_grad():
            for p in ps:
                p -= p.grad * lr
                p.grad = None
    check(isinstance(got, list) and len(got) == 2, "BasicOptim: the parameters could not be read back")
    for i, (g, want) in enumerate(zip(got, ps)):
        expect_close(g, want.detach(), f"parameter {i} of an nn.Linear",
                     on=f"{steps} steps with BasicOptim(model.parameters(), lr) (a generator: "
                        "keep the parameters as a list)")


# ================================================================================ make_learner
def learner_data(rng, n=48):
    return dict(x=rand(rng, n, 784), y=labels(rng, n), vx=rand(rng, n // 2, 784),
                vy=labels(rng, n // 2))


def probe_learner(student, body, **inputs):
    return isolation.probe(student, "make_learner", body, stand_ins=[LOSS, METRIC],
                           helpers=(training.learner_made, training.plain_tensor), **inputs)


@ex("make_learner")
def test_make_learner_uses_the_dataloaders(student, rng):
    data = learner_data(rng)
    got = probe_learner(student, training.learner_first_batches, **data)
    check(isinstance(got, list) and len(got) == 2 and all(isinstance(b, list) and len(b) == 2
                                                          for b in got),
          "the Learner's DataLoaders should give (inputs, labels) mini-batches")
    on = "the first mini-batches of the Learner's dls (build it from the dls passed in)"
    for (xb, yb), (x, y), part in zip(got, ((data["x"], data["y"]), (data["vx"], data["vy"])),
                                      ("training", "validation")):
        expect_close(xb, x[:16], f"the {part} inputs", on=on)
        expect_close(yb, y[:16], f"the {part} labels", on=on)


@ex("make_learner")
def test_make_learner_fresh_linear_model(student, rng):
    n = int(rng.integers(2, 20))
    probe_x = rand(rng, n, 784)
    got = probe_learner(student, training.learner_model, probe_x=probe_x, **learner_data(rng))
    check(isinstance(got, list) and len(got) == 3 and isinstance(got[0], list)
          and isinstance(got[2], list), "the Learner's model could not be read back")
    params, out, other = got
    shapes = [tuple(as_tensor(p, "a parameter").shape) for p in params]
    check(shapes == [(1, 784), (1,)], "the model should be one linear layer from 784 pixels to 1 "
                                      f"number (weights (1, 784) and bias (1,)), got {shapes}")
    weight, bias = (as_tensor(p, "a parameter") for p in params)
    expect_close(out, probe_x @ weight.T + bias, "the Learner's model output",
                 on="a batch of flattened images (a linear layer: xb @ weight.T + bias)")
    check(len(other) == 2 and not all(
        tuple(as_tensor(o, "a parameter").shape) == tuple(p.shape)
        and bool(torch.equal(as_tensor(o, "a parameter"), as_tensor(p, "a parameter")))
        for o, p in zip(other, params)),
        "make_learner should build a new model each time it is called")


@ex("make_learner")
def test_make_learner_loss_function(student, rng):
    n = int(rng.integers(10, 60))
    preds, targs = randn(rng, n, 1, scale=2.0), labels(rng, n)
    got = probe_learner(student, training.learner_loss, preds=preds, targs=targs, **learner_data(rng))
    expect_close(got, LOSS.function()(preds, targs), "the Learner's loss function", number=True,
                 on="random scores and labels, with the grader's own function in place of "
                    "mnist_loss (pass mnist_loss itself)")


@ex("make_learner")
def test_make_learner_sgd_optimizer(student, rng):
    p0, g1, g2 = randn(rng, 5, 3), randn(rng, 5, 3), randn(rng, 5, 3)
    lr = float(rng.uniform(0.1, 1.0))
    got = probe_learner(student, training.learner_optimizer_steps, p0=p0, g1=g1, g2=g2, lr=lr, **learner_data(rng))
    check(isinstance(got, list) and len(got) == 2, "the optimizer's parameters could not be read back")
    on = "plain SGD was expected (opt_func=SGD)"
    expect_close(got[0], p0 - lr * g1, "a parameter after one step of the Learner's optimizer", on=on)
    expect_close(got[1], p0 - lr * g1 - lr * g2, "a parameter after two steps", on=on)


@ex("make_learner")
def test_make_learner_metric(student, rng):
    n = int(rng.integers(20, 80))
    preds, targs = randn(rng, n, 1, scale=2.0), labels(rng, n)
    values = probe_learner(student, training.learner_metric_values, preds=preds, targs=targs, **learner_data(rng))
    want = METRIC.function()(preds, targs)

    def matches(v) -> bool:
        try:
            expect_close(v, want, "a metric", number=True)
            return True
        except Mismatch:
            return False
    check(isinstance(values, list) and any(matches(v) for v in values),
          "the Learner should report batch_accuracy as its metric (metrics=batch_accuracy; the "
          "grader passes its own function in place of batch_accuracy)")


# ================================================================================ simple_net
def call_net(student, params, x):
    return isolation.call(student, "simple_net", x,
                          overrides=dict(w1=params[0], b1=params[1], w2=params[2], b2=params[3]))


def net_params(rng, hidden, b1_shift=0.0):
    return [randn(rng, 784, hidden, scale=0.1), randn(rng, hidden) + b1_shift,
            randn(rng, hidden, 1), randn(rng, 1)]


def ref_net(params, x):
    return isolation.rebind(ref.simple_net, w1=params[0], b1=params[1], w2=params[2],
                            b2=params[3])(x)


@ex("simple_net")
def test_simple_net_values(student, rng):
    n, hidden = int(rng.integers(5, 50)), int(rng.integers(5, 20))
    params, x = net_params(rng, hidden), rand(rng, n, 784)
    expect_close(call_net(student, params, x), ref_net(params, x), "simple_net(xb)",
                 on=f"a batch of {n} random images and a hidden layer of {hidden}")


@ex("simple_net")
def test_simple_net_one_image(student, rng):
    params, x = net_params(rng, 30), rand(rng, 1, 784)
    expect_close(call_net(student, params, x), ref_net(params, x), "simple_net(xb)",
                 on="a batch holding a single image")


@ex("simple_net")
def test_simple_net_applies_relu(student, rng):
    n, hidden = int(rng.integers(3, 20)), int(rng.integers(4, 12))
    params, x = net_params(rng, hidden, b1_shift=-1000.0), rand(rng, n, 784)
    expect_close(call_net(student, params, x), ref_net(params, x), "simple_net(xb)",
                 on="parameters that make every first-layer output negative (ReLU must zero them)")


# ================================================================================ relu
@ex("relu")
def test_relu_random_tensor(student, rng):
    shape = tuple(int(s) for s in rng.integers(2, 7, int(rng.integers(1, 4))))
    x = randn(rng, *shape)
    expect_close(student.call("relu", x), ref.relu(x), "relu(x)", on=f"a random tensor of shape {shape}")


@ex("relu")
def test_relu_from_minus_2_to_2(student, rng):
    x = torch.linspace(-2, 2, 41)
    expect_close(student.call("relu", x), ref.relu(x), "relu(x)",
                 on="41 evenly spaced numbers from -2 to 2", check_dtype=True)


@ex("relu")
def test_relu_leaves_its_input_alone(student, rng, notebook):
    """Decided from the source: no in-place operation on relu's argument (or a view of it)."""
    x = randn(rng, int(rng.integers(5, 30)))
    expect_close(student.call("relu", x), ref.relu(x), "relu(x)", on="a random vector")
    expect_technique(notebook, "relu", in_place_problems,
                     "return a new tensor and leave the one you are given unchanged")


# ================================================================================ collapse_linear
def collapse_case(rng, n_in, hidden, n_out):
    return (randn(rng, n_in, hidden), randn(rng, hidden), randn(rng, hidden, n_out),
            randn(rng, n_out))


def collapsed(student, w1, b1, w2, b2):
    got = student.call("collapse_linear", w1, b1, w2, b2)
    check(isinstance(got, (tuple, list)) and len(got) == 2,
          "collapse_linear should return a pair (w, b)")
    return got


@ex("collapse_linear")
def test_collapse_linear_weights(student, rng):
    n_in, hidden, n_out = (int(v) for v in rng.integers(2, 30, 3))
    w1, b1, w2, b2 = collapse_case(rng, n_in, hidden, n_out)
    w, _ = collapsed(student, w1, b1, w2, b2)
    expect_close(w, ref.collapse_linear(w1, b1, w2, b2)[0], "w, the collapsed weights",
                 on=f"random layers {n_in} -> {hidden} -> {n_out}")


@ex("collapse_linear")
def test_collapse_linear_bias(student, rng):
    hidden = int(rng.integers(2, 40))
    w1, b1, w2, b2 = collapse_case(rng, 28 * 28, hidden, 1)   # simple_net's shapes
    b1 = b1 * 10                                              # the first bias matters here
    _, b = collapsed(student, w1, b1, w2, b2)
    expect_close(b, ref.collapse_linear(w1, b1, w2, b2)[1], "b, the collapsed bias",
                 on=f"random layers 784 -> {hidden} -> 1 (what does b1 become after w2?)")


# ================================================================================ relu_module
@ex("relu_module")
def test_relu_module_is_a_module(student, rng, notebook):
    """Decided from the source: relu_module creates a module (nn.ReLU() or an nn.Module class)."""
    x = randn(rng, int(rng.integers(2, 10)))
    got = isolation.probe(student, "relu_module", model_probes.relu_module_on, x=x)
    expect_close(got, ref.relu(x), "relu_module()(x)", on="a random vector")
    expect_technique(notebook, "relu_module", module_problems,
                     "return an nn.Module object (an instance, not the class or a function)")


@ex("relu_module")
def test_relu_module_computes_relu(student, rng):
    x = randn(rng, int(rng.integers(2, 10)), int(rng.integers(2, 10)))
    got = isolation.probe(student, "relu_module", model_probes.relu_module_on, x=x)
    expect_close(got, ref.relu(x), "relu_module()(x)", on="a random tensor")


@ex("relu_module")
def test_relu_module_inside_sequential(student, rng):
    w1, b1, w2, b2 = randn(rng, 3, 4), randn(rng, 3), randn(rng, 1, 3), randn(rng, 1)
    x = randn(rng, 6, 4)
    got = isolation.probe(student, "relu_module", model_probes.relu_module_in_sequential,
                          w1=w1, b1=b1, w2=w2, b2=b2, x=x)
    want = ref.relu(x @ w1.T + b1) @ w2.T + b2
    expect_close(got, want, "nn.Sequential(nn.Linear(4, 3), relu_module(), nn.Linear(3, 1))(x)",
                 on="a random batch")


# ================================================================================ image_dls
def probe_image_dls(student, case, batches=False):
    got = isolation.probe(student, "image_dls", folder_probes.image_dls_of_folder, **case)
    check(isinstance(got, dict) and isinstance(got.get("train"), list)
          and isinstance(got.get("valid"), list) and isinstance(got.get("vocab"), list),
          "image_dls should return fastai DataLoaders (with train_ds, valid_ds and vocab)")
    if batches:
        problem = got.get("batch_error")
        check(not problem, f"the DataLoaders gave no mini-batch of bs={case['bs']} images from "
                           f"a folder with more than bs images in each set ({problem})")
    return got


@ex("image_dls")
def test_image_dls_splits_by_folder(student, rng):
    case, classes, split = folder_case(rng)
    got = probe_image_dls(student, case)
    check(sorted(got["valid"]) == sorted(split["valid"]),
          "the validation set should be exactly the images under valid/ (not a random share, "
          "not the other folders)")
    check(sorted(got["train"]) == sorted(split["train"]),
          "the training set should be exactly the images under train/ (the folder also holds a "
          "test/ folder that is neither)")


@ex("image_dls")
def test_image_dls_batch_size(student, rng):
    case, _, _ = folder_case(rng)
    got = probe_image_dls(student, case, batches=True)
    bs = case["bs"]
    rows = as_tensor(got["valid_x"], "a validation batch").shape[:1]
    check(tuple(rows) == (bs,) and got["train_rows"] == bs,
          f"with bs={bs} every full mini-batch should hold {bs} images")


@ex("image_dls")
def test_image_dls_labels_and_pixels(student, rng):
    case, classes, _ = folder_case(rng)
    got = probe_image_dls(student, case, batches=True)
    check(got["vocab"] == classes, "the vocab should be the class folders' names, sorted")
    by_name = dict(zip(case["files"], case["images"]))
    first = got["valid"][:case["bs"]]
    check(all(name in by_name for name in first), "the validation items are not the folder's images")
    # fastai opens each grey image as RGB (three equal channels) and scales pixels to 0..1
    want_x = torch.stack([torch.from_numpy(by_name[n]).float().div(255).expand(3, -1, -1)
                          for n in first])
    want_y = torch.tensor([classes.index(n.split("/")[1]) for n in first])
    on = "the first validation mini-batch of a random image folder"
    expect_close(got["valid_x"], want_x, "the images of a mini-batch", on=on)
    expect_close(got["valid_y"], want_y, "the labels of a mini-batch (each image's folder, as "
                                         "its index in the vocab)", on=on)


# ================================================================================ resnet_learner
def learner_case(rng):
    n_classes = int(rng.integers(3, 7))     # never the notebook's 2
    n = 8
    return dict(images=rand(rng, n, 3, 32, 32), labels=torch.from_numpy(rng.integers(0, n_classes, n)),
                n_classes=n_classes)


def probe_resnet(student, body, **inputs):
    return isolation.probe(student, "resnet_learner", body, **inputs,
                           helpers=(model_probes.fill_weights, model_probes.resnet_learner_for))


def scores_case(rng, n_classes):
    n = int(rng.integers(10, 40))
    return randn(rng, n, n_classes, scale=2.0), torch.from_numpy(rng.integers(0, n_classes, n))


# The same code fills a model with the grader's weights in the sandbox (the student's model) and
# here (the reference's): equal outputs then mean the same architecture, layer for layer.
@ex("resnet_learner")
def test_resnet_learner_model_is_a_resnet18_with_fastais_head(student, rng):
    case = learner_case(rng)
    seed, x = int(rng.integers(0, 2**31)), rand(rng, 2, 3, 32, 32)
    got = probe_resnet(student, model_probes.resnet_scores, seed=seed, x=x, **case)
    with torch.no_grad():
        want = model_probes.fill_weights(resnet_rebuild.resnet_model(case["n_classes"]), seed)(x)
    expect_close(got, want, "learn.model(x) with the grader's weights", rtol=1e-3, atol=1e-4,
                 on=f"{case['n_classes']} classes: a ResNet-18 (not pretrained) with fastai's head "
                    "gives other scores")


@ex("resnet_learner")
def test_resnet_learner_loss_is_cross_entropy(student, rng):
    case = learner_case(rng)
    out, targ = scores_case(rng, case["n_classes"])
    got = probe_resnet(student, model_probes.resnet_loss, out=out, targ=targ, **case)
    expect_close(got, torch.nn.functional.cross_entropy(out, targ), "learn.loss_func(scores, targets)",
                 on="random scores for several classes")


@ex("resnet_learner")
def test_resnet_learner_metric_is_accuracy(student, rng):
    case = learner_case(rng)
    out, targ = scores_case(rng, case["n_classes"])
    got = probe_resnet(student, model_probes.resnet_metric_values, out=out, targ=targ, **case)
    check(isinstance(got, list) and len(got) == 1, "the Learner should report one metric")
    expect_close(torch.tensor(got[0]), (out.argmax(-1) == targ).float().mean().double(),
                 "the metric on random scores", on="random scores for several classes")


# ================================================================================ count_parameters
# A random nn.Sequential as plain data (seeded.random_spec), built in the sandbox and here alike
# (model_probes.build_from_spec).
COUNT_OF = {"count_parameters": model_probes.count_parameters_of,
            "count_weight_layers": model_probes.count_weight_layers_of}


def counted(student, name, spec, python_int: bool = False):
    """The count, a number of integers; a Python ``int`` only where the prompt asks for one
    (``count_parameters``: not a tensor)."""
    got = isolation.probe(student, name, COUNT_OF[name], helpers=(model_probes.build_from_spec,),
                          spec=spec)
    if python_int:
        check(isinstance(got, int) and not isinstance(got, bool),
              f"{name}(model) should return a Python int (.item() turns a rank-0 tensor into "
              f"one), got {form_of(got)}")
    return expect_number(got, f"{name}(model)", kinds="i")


def expect_count(student, name, spec, message):
    """``name(model)`` in the sandbox equals the reference's count for the same model (built
    here from the same ``spec``)."""
    want = getattr(ref, name)(model_probes.build_from_spec(spec))
    check(counted(student, name, spec, python_int=name == "count_parameters") == want, message)


@ex("count_parameters")
def test_count_parameters_random_model(student, rng):
    expect_count(student, "count_parameters", random_spec(rng),
                 "count_parameters(model) is not the number of numbers in the model's parameters, "
                 "on a random model of linear and convolutional layers (with and without biases, "
                 "some nested)")


@ex("count_parameters")
def test_count_parameters_batch_norm(student, rng):
    expect_count(student, "count_parameters", random_spec(rng, batch_norm=True),
                 "count_parameters(model) is wrong on a random model with batch norm layers "
                 "(their weight and bias are parameters; their running statistics are not)")


# ================================================================================ count_weight_layers
@ex("count_weight_layers")
def test_count_weight_layers_random_model(student, rng):
    expect_count(student, "count_weight_layers", random_spec(rng, batch_norm=True),
                 "count_weight_layers(model) is wrong on a random model with nested "
                 "nn.Sequential blocks, batch norm, activations and pooling")


@ex("count_weight_layers")
def test_count_weight_layers_none(student, rng):
    spec = random_spec(rng, batch_norm=True, weighted=False) + \
        [["Sequential", [["BatchNorm1d", [4], {}]], {}]]
    check(counted(student, "count_weight_layers", spec) == 0,
          "count_weight_layers(model) should be 0 for a model with no linear or convolutional "
          "layer (only activations, pooling, batch norm)")


# ================================================================================ deeper_claims
def _claims(student):
    return expect_true_false(student.get("deeper_claims"), ref.deeper_claims,
                             "deeper_claims should be the given dict with each claim set to True "
                             "or False")


# Each check pairs a true claim with a false one: answers that are all True or all False score 0.
@ex("deeper_claims")
def test_deeper_claims_what_the_theorem_says(student):
    got = _claims(student)
    keys = ("one_nonlinearity_can_approximate_any_function", "deeper_models_are_easier_to_optimise")
    check(all(got[k] == ref.deeper_claims[k] for k in keys),
          "one of the two claims about the universal approximation theorem and about training "
          "deep models is marked wrongly")


@ex("deeper_claims")
def test_deeper_claims_why_layers_help(student):
    got = _claims(student)
    keys = ("stacked_linear_layers_without_activations_add_power",
            "more_smaller_layers_beat_fewer_larger_ones_in_practice")
    check(all(got[k] == ref.deeper_claims[k] for k in keys),
          "one of the two claims about what extra layers add is marked wrongly")
