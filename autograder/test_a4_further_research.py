"""Hidden tests for a4_further_research (notebook `further_research`): one group per exercise.

What decides a point (issue 10's trust rule): only outputs of the student's code compared here
with the reference computed here, and facts read here from the submitted notebook's source.
A value the sandbox reports *about* the student's code (a log, a flag) is the student's claim:
the few checks that still rest on one weigh 0.1 (``CLAIM``), at most a tenth of their exercise.

Learner: the same probe (``training_probes.learner_run``) trains a grader-built model on grader data with a
grader optimizer (plain SGD whose step shrinks with every step it takes, so a second optimizer
made by ``fit`` shows in the parameters; it records the gradients it is handed) and runs once in
the sandbox with the student's ``Learner`` and once here with the reference one; each check
compares one part of the two runs' outputs. In the "modes" scenario the model has batch norm and
computes something else when called in evaluation mode with gradients on (or in training mode
with them off), so how validation runs shows in the recorded values and the batch-norm
statistics, not in a log.

softmax, cross_entropy, nearest_mean: the technique (written by hand, no Python loop) is read
from the notebook's source (mnistkit.grading.source_checks), not measured in the sandbox.

train_digits: the model must be an ``nn.Sequential`` of the layers in ``LAYERS`` (the notebook
lists them). The sandbox hands back its architecture as plain data; the grader rebuilds it with
its own torch.nn classes (size = parameters and buffers, at most ``MAX_PARAMETERS``; cost per
image bounded), initialises it itself (PyTorch's default initialisation, seeded), sends those
untrained weights into the sandbox for ``train_digits`` to train on the 60,000 training images
within ``TRAIN_SECONDS``, and takes the trained weights back as plain data. The accuracy on
the 10,000 test images is computed here, by the grader's own rebuilt model: test images never
enter the sandbox, and the sandbox's data folder holds no test label (mnistkit.data's stand-ins).
MNIST's test set is public, so two rules keep a model from scoring by what was carried in rather
than learned (issue 18). The digits are relabeled: the grader gives ``train_digits`` its training
labels through a random derangement of the ten classes (``relabeling``: drawn per grading from
the course seed and the notebook's text) and scores the test images against the same relabeling,
so weights prepared elsewhere predict the wrong digits unless the code learns from the labels it
is given. And the information the notebook carries in is bounded (``carried_bytes``): its text,
every cell the sandbox can read, compressed with the released notebook as context, at most
``MAX_CARRIED_BYTES``, or no accuracy point. The notebook the sandbox gets is rebuilt from
sources (mnistkit.grading.submission.clean: kit-made cell ids, no outputs, attachments or
metadata but nbgrader's, which the grader restored), so the text is all the student controls.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mnistkit.catalog import read_cells
from mnistkit.data import shipped_mnist
from mnistkit.grading import folder_probes, model_probes, model_rebuild, probes, source_checks
from mnistkit.grading import training_probes as training
from mnistkit.grading.carried_in import carried_bytes, notebook_text, released_cells, relabeling
from mnistkit.grading.code_reading import expect_written_by_hand
from mnistkit.grading.expect import Mismatch, check, expect_close, expect_shape, kind_of
from mnistkit.grading.plugin import seeded_rng
from mnistkit.grading.seeded import learner_inputs, randn
from mnistkit.grading.student import NotDefined
from solutions import a4_further_research as ref

# The limits a4's prompt states for the student's model (the grader's 2-core CPU).
TRAIN_SECONDS = 150           # train_digits + predict_digits
ACCURACY_THRESHOLDS = (0.90, 0.95, 0.98, 0.99)
MAX_PARAMETERS = 2_000_000

CLAIM = 0.1     # weight of a check resting on what the sandbox reports about the student's code

# ================================================================================ MomentumSGD
def momentum_case(student, rng, mom, steps=4):
    """The probe's own tensors after ``steps`` steps (so a step that rebinds new tensors instead
    of changing them in place leaves them unchanged), and what torch's SGD makes of them."""
    start = [randn(rng, 5, 3), randn(rng, 3)]
    grads = [[randn(rng, 5, 3), randn(rng, 3)] for _ in range(steps)]
    lr = float(rng.uniform(0.01, 0.3))
    got = probes.run(student, training.momentum_steps, start=start, grads=grads, lr=lr, mom=mom)
    want_ps = [p.clone().requires_grad_() for p in start]
    opt = torch.optim.SGD(want_ps, lr=lr, momentum=0.9 if mom is None else mom)
    for step_grads in grads:
        for p, g in zip(want_ps, step_grads):
            p.grad = g.clone()
        opt.step()
    return got, [p.detach() for p in want_ps]


@pytest.mark.exercise("MomentumSGD")
def test_momentum_steps_match_sgd_with_momentum(student, rng):
    mom = float(rng.uniform(0.5, 0.95))
    got, want = momentum_case(student, rng, mom)
    for i, (g, w) in enumerate(zip(got["values"], want)):
        expect_close(g, w, f"parameter {i} after 4 steps", on=f"random gradients with mom={mom:.2f}")


@pytest.mark.exercise("MomentumSGD")
def test_momentum_defaults_to_0_9(student, rng):
    got, want = momentum_case(student, rng, None, steps=3)
    for i, (g, w) in enumerate(zip(got["values"], want)):
        expect_close(g, w, f"parameter {i} after 3 steps", on="MomentumSGD(params, lr) (mom left at its default 0.9)")


@pytest.mark.exercise("MomentumSGD")
def test_momentum_zero_is_plain_sgd_in_place(student, rng):
    got, want = momentum_case(student, rng, 0.0, steps=2)
    for i, (g, w) in enumerate(zip(got["values"], want)):
        expect_close(g, w, f"parameter {i} after 2 steps", on="mom=0 (plain SGD; the parameters "
                                                              "given to MomentumSGD must change in place)")


@pytest.mark.exercise("MomentumSGD", weight=CLAIM)
def test_momentum_keeps_leaf_parameters(student, rng):
    """A claim of the sandbox (is_leaf, requires_grad): weight 0.1, as the notebook says."""
    got, _ = momentum_case(student, rng, 0.5, steps=1)
    check(got["leaves"] == [True, True], "after step() the parameters should still be leaf tensors "
                                         "that require gradients: update them under torch.no_grad()")


@pytest.mark.exercise("MomentumSGD")
def test_momentum_zero_grad_and_missing_grads(student, rng):
    a0, b0 = randn(rng, 4), randn(rng, 2)
    got = probes.run(student, training.momentum_zero_grad_and_missing_grads, a0=a0, b0=b0)
    expect_close(got["b"], b0, "a parameter whose .grad is None", on="step() (it should stay unchanged)",
                 rtol=0, atol=0)
    grads = got["grads"]
    check(isinstance(grads, list) and len(grads) == 2, "zero_grad() should reset every parameter's gradient")
    for g, p in zip(grads, (a0, b0)):
        if g is not None:
            expect_close(g, torch.zeros_like(p), "a gradient after zero_grad()", on="(None or zeros)",
                         rtol=0, atol=0)


# ================================================================================ Learner
def _learner_runs(student, config, kind):
    if not student.has("Learner"):
        raise NotDefined("Learner")
    inputs = learner_inputs(seeded_rng(config, f"learner::{kind}"), kind)
    got = probes.run(student, training.learner_run, **inputs)
    check(isinstance(got, dict) and {"state", "steps", "losses", "values", "opt_calls",
                                     "forwards"} <= set(got),
          "the Learner check produced no readable result")
    return got, probes.run_here(training.learner_run, names={"Learner": ref.Learner}, **inputs), inputs


@pytest.fixture(scope="module")
def learner_runs(student, request):
    """The three scenarios, each run once (lazily) and shared by the checks."""
    return probes.shared(lambda kind: _learner_runs(student, request.config, kind))


SCENARIOS = {"3v7": "the 3-vs-7 linear model with a margin loss, one epoch",
             "10": "a 10-class model with cross-entropy and two metrics, two epochs",
             "modes": "a 10-class model with batch norm, two epochs"}


def expect_list(value, what):
    check(isinstance(value, list), f"{what} should be a list")
    return value


def expect_state(got, want, what, on):
    check(isinstance(got, dict) and set(got) == set(want), f"{what}: the grader's model came back changed")
    for name, w in want.items():
        expect_close(got[name], w, f"{what} ({name})", on=on)


@pytest.mark.exercise("Learner")
@pytest.mark.parametrize("kind", ["3v7", "10"])
def test_learner_fit_moves_parameters_like_reference(learner_runs, kind):
    got, want, _ = learner_runs(kind)
    expect_state(got["state"], want["state"], "the parameters after fit",
                 on=f"{SCENARIOS[kind]} (one optimizer, made once by fit with opt_func(params, lr))")


@pytest.mark.exercise("Learner")
def test_learner_steps_with_fresh_gradients(learner_runs):
    got, want, inputs = learner_runs("10")
    steps = expect_list(got["steps"], "the optimizer steps")
    check(len(steps) == len(want["steps"]),
          f"the optimizer should step once per training batch ({len(want['steps'])} steps in "
          f"{inputs['epochs']} epochs), it stepped {len(steps)} times")
    for n, (g_step, w_step) in enumerate(zip(steps, want["steps"]), 1):
        check(isinstance(g_step, list) and len(g_step) == len(w_step), f"step {n} got the wrong parameters")
        for i, (g, w) in enumerate(zip(g_step, w_step)):
            try:
                expect_close(g, w, f"the gradient of parameter {i} at step {n}")
            except Mismatch as exc:
                hint = (" (it still holds the previous batches' gradients: zero them after each step)"
                        if n > 1 else "")
                raise Mismatch(f"{exc}{hint}") from None


@pytest.mark.exercise("Learner")
def test_learner_trains_in_train_mode_and_validates_in_eval_mode_without_gradients(learner_runs):
    got, want, _ = learner_runs("modes")
    on = (f"{SCENARIOS['modes']} whose scores change when it is run in evaluation mode with "
          "gradients on (validate with model.eval() and torch.no_grad(); model.train() at the "
          "start of every epoch)")
    values = expect_list(got["values"], "recorder.values")
    check(len(values) == len(want["values"]), "recorder.values should hold one row per epoch")
    expect_close(values, want["values"], "recorder.values", on=on)
    expect_state(got["state"], want["state"], "the model's parameters and batch-norm statistics", on=on)


@pytest.mark.exercise("Learner")
@pytest.mark.parametrize("kind", ["3v7", "10"])
def test_learner_records_batch_losses(learner_runs, kind):
    got, want, _ = learner_runs(kind)
    losses = expect_list(got["losses"], "recorder.losses")
    check(len(losses) == len(want["losses"]),
          f"recorder.losses should hold one loss per training batch ({len(want['losses'])}), "
          f"it has {len(losses)} on {SCENARIOS[kind]}")
    expect_close(losses, want["losses"], "recorder.losses (floats: loss.item())", on=SCENARIOS[kind])


@pytest.mark.exercise("Learner")
@pytest.mark.parametrize("kind", ["3v7", "10"])
def test_learner_records_epoch_rows(learner_runs, kind):
    got, want, _ = learner_runs(kind)
    values = expect_list(got["values"], "recorder.values")
    check(len(values) == len(want["values"]) and all(isinstance(r, list) and len(r) == len(want["values"][0])
                                                     for r in values),
          f"recorder.values should hold one row per epoch, [train_loss, valid_loss, metrics...] "
          f"({len(want['values'][0])} numbers per row on {SCENARIOS[kind]})")
    expect_close(values, want["values"], "recorder.values (averages over items, each batch weighted "
                                         "by its size)", on=SCENARIOS[kind])


@pytest.mark.exercise("Learner", weight=CLAIM)
def test_learner_calls_optimizer_once_and_model_once_per_batch(learner_runs):
    """Rests on the sandbox's log of calls (a claim): weight 0.1, as the notebook says."""
    got, want, _ = learner_runs("10")
    check(got["opt_calls"] == want["opt_calls"],
          "fit should make the optimizer once, with opt_func(list of all the model's parameters, lr)")
    check(got["forwards"] == want["forwards"],
          "each epoch should run the model once on every training batch (training mode, gradients "
          "on), then once on every validation batch (evaluation mode, gradients off)")


# ================================================================================ load_split
def load_split_case(student, rng, digits_present, per_digit, as_text=False):
    digits, names, images = [], [], []
    for d in digits_present:
        numbers = rng.choice(100_000, size=per_digit, replace=False)
        for k in numbers:
            digits.append(int(d))
            names.append(f"{k}.png")
            images.append(rng.integers(0, 256, (28, 28), dtype=np.uint8))
    got = probes.run(student, folder_probes.load_split_of_folder, digits=digits, names=names,
                     images=images, as_text=as_text)
    check(isinstance(got, dict) and {"x", "y"} <= set(got), "load_split should return (x, y)")
    order = sorted(range(len(digits)), key=lambda i: (digits[i], names[i]))
    want_x = torch.from_numpy(np.stack([images[i] for i in order])).float() / 255
    want_y = torch.tensor([digits[i] for i in order], dtype=torch.int64)
    return got, want_x, want_y


@pytest.mark.exercise("load_split")
def test_load_split_images_in_order(student, rng):
    present = sorted(rng.choice(10, size=3, replace=False).tolist())
    got, want_x, _ = load_split_case(student, rng, present, per_digit=int(rng.integers(2, 5)))
    expect_close(got["x"], want_x, "x", on=f"a folder with digits {present} and random file names",
                 check_dtype=True)


@pytest.mark.exercise("load_split")
def test_load_split_labels(student, rng):
    present = sorted(rng.choice(10, size=4, replace=False).tolist())
    got, _, want_y = load_split_case(student, rng, present, per_digit=2)
    expect_close(got["y"], want_y, "y (each image's digit: the name of its folder)",
                 on=f"a folder with digits {present}", check_dtype=True)


@pytest.mark.exercise("load_split")
def test_load_split_all_ten_digits_from_a_string_path(student, rng):
    got, want_x, want_y = load_split_case(student, rng, range(10), per_digit=2, as_text=True)
    expect_close(got["y"], want_y, "y", on="all ten digit folders, the folder given as a string")
    expect_close(got["x"], want_x, "x", on="all ten digit folders, the folder given as a string")


# ================================================================================ digit_means
# Mean images: floating-point numbers only, shape (10, h, w) exactly.
@pytest.mark.exercise("digit_means")
def test_digit_means_random_images(student, rng):
    n = int(rng.integers(25, 60))
    y = torch.from_numpy(np.concatenate([np.arange(10), rng.integers(0, 10, n - 10)]))
    y = y[torch.from_numpy(rng.permutation(n))]
    x = torch.from_numpy(rng.random((n, 28, 28), dtype="float32"))
    expect_close(student.call("digit_means", x, y), ref.digit_means(x, y), "digit_means(x, y)",
                 on=f"{n} random images in random order")


@pytest.mark.exercise("digit_means")
def test_digit_means_other_image_size(student, rng):
    y = torch.from_numpy(rng.permutation(np.repeat(np.arange(10), 3)))
    x = torch.from_numpy(rng.random((30, 5, 7), dtype="float32"))
    expect_close(student.call("digit_means", x, y), ref.digit_means(x, y), "digit_means(x, y)",
                 on="images of 5 x 7 pixels")


# ================================================================================ nearest_mean
# Digits: integers only (True/False or floats are not digits).
@pytest.mark.exercise("nearest_mean")
def test_nearest_mean_random_images(student, rng):
    means = torch.from_numpy(rng.random((10, 28, 28), dtype="float32"))
    n = int(rng.integers(5, 50))
    pick = torch.from_numpy(rng.integers(0, 10, n))
    x = means[pick] + randn(rng, n, 28, 28, scale=0.3)
    got = student.call("nearest_mean", means, x)
    expect_close(got, ref.nearest_mean(means, x), "nearest_mean(means, x)", on=f"{n} noisy random images")


@pytest.mark.exercise("nearest_mean")
def test_nearest_mean_uses_squared_differences(student, rng):
    # A blank image: mean `a` is 1 on every pixel, mean `b` is blank but for one pixel of 6.
    # Squared differences (RMSE) pick `a` (1 < 36/16); the mean absolute difference picks `b`.
    a, b = (int(v) for v in rng.choice(10, size=2, replace=False))
    means = torch.full((10, 4, 4), 50.0) + torch.arange(10.)[:, None, None]
    means[a] = 1.0
    means[b] = 0.0
    means[b, int(rng.integers(4)), int(rng.integers(4))] = 6.0
    x = randn(rng, 1, 4, 4, scale=0.01)
    got = student.call("nearest_mean", means, x)
    expect_close(got, torch.tensor([a]), "nearest_mean(means, x)",
                 on="an image whose nearest mean by root mean squared difference (RMSE) is not the "
                    "nearest by mean absolute difference")


@pytest.mark.exercise("nearest_mean")
def test_nearest_mean_broadcasts(student, rng, notebook):
    """Read from the source; only for a nearest_mean that works."""
    means, x = randn(rng, 10, 6, 6), randn(rng, 7, 6, 6)
    expect_close(student.call("nearest_mean", means, x), ref.nearest_mean(means, x),
                 "nearest_mean(means, x)", on="7 random images")
    source_checks.expect_no_evasion(notebook, "nearest_mean")
    source_checks.expect_no_python_loop(
        notebook, "nearest_mean", "compare all images with all means at once (broadcasting)")


# ================================================================================ softmax
# Names whose call means PyTorch did the work (functions, methods and modules).
FORBIDDEN_SOFTMAX = {"softmax", "log_softmax", "_softmax", "Softmax", "LogSoftmax", "softmin"}
FORBIDDEN_CE = FORBIDDEN_SOFTMAX | {"cross_entropy", "nll_loss", "CrossEntropyLoss", "NLLLoss"}


@pytest.mark.exercise("softmax")
def test_softmax_random_scores(student, rng):
    x = randn(rng, int(rng.integers(2, 30)), int(rng.integers(2, 12)), scale=3)
    expect_close(student.call("softmax", x), ref.softmax(x), "softmax(x)", on=f"random scores {tuple(x.shape)}")


@pytest.mark.exercise("softmax")
def test_softmax_last_axis_of_rank_3(student, rng):
    x = randn(rng, 3, int(rng.integers(2, 6)), int(rng.integers(2, 9)), scale=2)
    expect_close(student.call("softmax", x), ref.softmax(x), "softmax(x)",
                 on=f"a rank-3 tensor {tuple(x.shape)} (softmax along the last axis)")


@pytest.mark.exercise("softmax")
def test_softmax_huge_scores_stay_finite(student, rng):
    x = randn(rng, 6, 10, scale=400) + 1000
    expect_close(student.call("softmax", x), ref.softmax(x), "softmax(x)",
                 on="scores near 1000 (subtract each row's max before exp)")


@pytest.mark.exercise("softmax")
def test_softmax_written_by_hand(student, rng, notebook):
    """Read from the source; only for a softmax that works (a stub is not "by hand")."""
    x = randn(rng, 4, 7)
    expect_close(student.call("softmax", x), ref.softmax(x), "softmax(x)", on="random scores (4, 7)")
    expect_written_by_hand(notebook, "softmax", FORBIDDEN_SOFTMAX, "with exp and sum")


# ================================================================================ cross_entropy
# A single floating-point number of shape () (the notebook asks for "a tensor with no
# dimensions"); True/False values or integers are not a loss.
@pytest.mark.exercise("cross_entropy")
def test_cross_entropy_random_scores(student, rng):
    n, k = int(rng.integers(2, 40)), int(rng.integers(2, 12))
    logits, targets = randn(rng, n, k, scale=3), torch.from_numpy(rng.integers(0, k, n))
    expect_close(student.call("cross_entropy", logits, targets), ref.cross_entropy(logits, targets),
                 "cross_entropy(logits, targets)", on=f"random scores for {n} items and {k} classes")


@pytest.mark.exercise("cross_entropy")
def test_cross_entropy_huge_scores_stay_finite(student, rng):
    logits = randn(rng, 8, 10, scale=300) + 1000
    targets = torch.from_numpy(rng.integers(0, 10, 8))
    expect_close(student.call("cross_entropy", logits, targets), ref.cross_entropy(logits, targets),
                 "cross_entropy(logits, targets)", on="scores near 1000 (use logsumexp)")


@pytest.mark.exercise("cross_entropy")
def test_cross_entropy_written_by_hand(student, rng, notebook):
    """Read from the source; only for a cross_entropy that works."""
    logits, targets = randn(rng, 5, 4), torch.from_numpy(rng.integers(0, 4, 5))
    expect_close(student.call("cross_entropy", logits, targets), ref.cross_entropy(logits, targets),
                 "cross_entropy(logits, targets)", on="random scores for 5 items and 4 classes")
    expect_written_by_hand(notebook, "cross_entropy", FORBIDDEN_CE, "indexing and logsumexp")


# ================================================================================ pick_device
@pytest.mark.exercise("pick_device")
def test_pick_device_cpu_without_gpu(student):
    kind = probes.run(student, model_probes.device_picked, gpu=False)
    check(kind == "cpu", "without a GPU pick_device() should give the CPU")


@pytest.mark.exercise("pick_device")
def test_pick_device_cuda_with_gpu(student):
    kind = probes.run(student, model_probes.device_picked, gpu=True)
    check(kind == "cuda", "when torch.cuda.is_available() is true pick_device() should give cuda")


# ================================================================================ train_digits
# The layers a model may use (the notebook lists them), with the constructor arguments the
# grader rebuilds each from: read from the module's attributes of the same name in the sandbox
# (``bias``: whether there is one). Containers: nn.Sequential only.
LAYERS: dict[str, tuple[str, ...]] = {
    "Linear": ("in_features", "out_features", "bias"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups", "bias", "padding_mode"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine", "bias"),
    "ReLU": (), "LeakyReLU": ("negative_slope",), "GELU": ("approximate",), "SiLU": (),
    "Tanh": (), "Sigmoid": (), "Softmax": ("dim",), "LogSoftmax": ("dim",),
    "Flatten": ("start_dim", "end_dim"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "AdaptiveAvgPool2d": ("output_size",), "AdaptiveMaxPool2d": ("output_size",),
    "Dropout": ("p",), "Dropout2d": ("p",), "Identity": (),
}
MAX_LAYERS = 200               # modules in the model, nn.Sequential blocks included
MAX_MACS = 25_000_000          # multiply-adds per image, so the grader can test 10,000 images
MAX_ACTIVATIONS = 1_000_000    # numbers in any layer's output, per image
EVAL_SECONDS = 60              # the grader's own time for the 10,000 test images
EVAL_NUMBERS = 20_000_000      # the grader tests images in chunks of at most this many outputs
PREDICT_PROBE = 500            # training images predict_digits is asked about (after training)
# What a notebook may carry in beyond the release (see carried_bytes), in compressed bytes.
# Measured (tests/test_a4_data_limit.py): the reference answers ~1,070, verbose honest notebooks
# (docstrings, comments, prints, plots, helper cells, notes, experiments) ~2,000-3,900, at about
# 0.3 bytes a character: the limit is what 40,000 characters of such text hold (the old limit, in
# characters), three times the most verbose notebook measured. The corpus's table of the test set
# carries over three times the limit. Weights are stopped by the relabeling rather than by this
# limit: a test-set model that learns the relabeling fits under any limit honest code fits under.
MAX_CARRIED_BYTES = 12_000

LIMITS = model_rebuild.Limits(layers=LAYERS, max_layers=MAX_LAYERS, max_state=MAX_PARAMETERS,
                              max_macs=MAX_MACS, max_activations=MAX_ACTIVATIONS)
RELEASED = Path("a4_further_research") / "further_research.ipynb"   # carried_bytes' context
LAYER_ARGS = {k: list(v) for k, v in LAYERS.items()}     # what the sandbox describes a layer by


@pytest.fixture(scope="module")
def model_spec(student):
    """make_model()'s architecture as plain data, checked here: (spec, cost)."""
    if not student.has("make_model"):
        raise NotDefined("make_model")
    spec = probes.run(student, model_probes.model_described, model_probes.describe,
                      layer_args=LAYER_ARGS)
    return spec, model_rebuild.model_cost(spec, LIMITS)


@pytest.fixture(scope="module")
def relabel(notebook, request) -> np.ndarray:
    """This grading's relabeling: from the course seed and the notebook's text, so it differs
    between courses and between submissions, and a regrading of the same notebook repeats it."""
    digest = hashlib.sha256(notebook_text(read_cells(notebook))).hexdigest()[:16]
    return relabeling(seeded_rng(request.config, f"train_digits::relabel::{digest}"))


@pytest.fixture(scope="module")
def trained(student, model_spec, relabel, request):
    """The grader's untrained model of the student's architecture, trained in the sandbox by
    ``train_digits`` on the 60,000 training images, their digits relabeled (``relabel``):
    (rebuilt trained model, sandbox answer, probe images, seconds)."""
    for name in ("train_digits", "predict_digits"):
        if not student.has(name):
            raise NotDefined(name)
    spec, cost = model_spec
    rng = seeded_rng(request.config, "train_digits::init")
    seed = int(rng.integers(2**31))
    torch.manual_seed(seed)
    model = model_rebuild.build_model(spec, LIMITS)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    mnist = shipped_mnist()
    probe = rng.choice(len(mnist.train_images), PREDICT_PROBE, replace=False)
    start = time.perf_counter()
    got = probes.run_for(student, TRAIN_SECONDS, model_probes.train_and_predict,
                         model_probes.describe, layer_args=LAYER_ARGS, seed=seed, state=state,
                         train_images=mnist.train_images,
                         train_labels=relabel[mnist.train_labels].astype(np.int64),
                         probe_images=mnist.train_images[probe])
    seconds = time.perf_counter() - start
    check(isinstance(got, dict) and {"before", "after", "state", "preds"} <= set(got),
          "training produced no readable result")
    check(got["before"] == spec, "make_model() built a different model on a second call")
    check(got["after"] == spec, "train_digits should train the model's weights, not change its layers")
    model_rebuild.load_trained(model, state, got["state"], cost["biggest"], EVAL_NUMBERS)
    return model, got, mnist.train_images[probe], seconds


def grader_predictions(model, images):
    """The rebuilt model's digits for uint8 images, computed here within ``EVAL_SECONDS``."""
    return model_rebuild.grader_predictions(model, images, EVAL_SECONDS)


@pytest.fixture(scope="module")
def digit_accuracy(trained, relabel, notebook, request):
    """(accuracy on the 10,000 test images against their relabeled digits, training seconds),
    computed here; no accuracy at all for a notebook over ``MAX_CARRIED_BYTES``."""
    carried = carried_bytes(read_cells(notebook), released_cells(request.config, RELEASED),
                            stop_above=MAX_CARRIED_BYTES)
    check(carried <= MAX_CARRIED_BYTES,
          f"your notebook's text (code, comments, markdown, written answers) holds at least "
          f"{carried / 1000:.1f} KB once compressed, beyond the notebook as released; at most "
          f"{MAX_CARRIED_BYTES // 1000} KB "
          "are allowed while the grader measures accuracy (no data may be carried in: remove "
          "pasted tables, numbers or long texts)")
    model, _, _, seconds = trained
    mnist = shipped_mnist()
    preds = grader_predictions(model, mnist.test_images)
    return float((preds.numpy() == relabel[mnist.test_labels]).mean()), seconds


@pytest.mark.exercise("train_digits")
def test_make_model_shape_and_size(model_spec):
    """Allowed layers, state (parameters and buffers) and cost within the limits, scores of shape
    (n, 10): all checked in model_cost, from the architecture as plain data."""
    spec, cost = model_spec        # the checks are in model_cost: reaching here means all held


@pytest.mark.exercise("train_digits")
def test_predict_digits_gives_the_models_digits(trained):
    model, got, images, _ = trained
    preds = expect_shape(got["preds"], (len(images),), "predict_digits(model, x)")
    check(kind_of(preds) == "i", f"predict_digits should return whole numbers (int64 digits), not {preds.dtype}")
    want = grader_predictions(model, images)
    agree = float((preds.long() == want).float().mean())
    check(agree >= 0.98, f"predict_digits gave another digit than the trained model's highest score "
                         f"for {1 - agree:.0%} of {len(images)} training images")


@pytest.mark.exercise("train_digits")
@pytest.mark.parametrize("threshold", ACCURACY_THRESHOLDS, ids=lambda t: f"{t:.0%}")
def test_trained_model_accuracy(digit_accuracy, threshold):
    accuracy, seconds = digit_accuracy
    check(accuracy >= threshold, f"test accuracy {accuracy:.2%} (trained in {seconds:.0f} s) is below "
                                 f"{threshold:.0%}")
