"""Hidden tests for a4_further_research (notebook `further_research`): one group per exercise.

Learner: the same probe (``LEARNER_RUN``) trains a grader-built model on grader data with a
grader optimizer (plain SGD that records the gradients it is handed) and a spy model that logs
every forward pass; it runs once in the sandbox with the student's ``Learner`` and once here with
the reference one, for a 3-vs-7 linear model and a 10-class MLP, and each check compares one
aspect of the two runs (parameters, per-step gradients, recorded values, validation mode).

train_digits: the grader trains the student's ``make_model`` with their ``train_digits`` on the
60,000 training images within ``ref.TRAIN_SECONDS``, then gives ``predict_digits`` the 10,000
test images, shuffled and with faint noise, without labels (the sandbox sees only a stand-in of
mnist_png, made of training images); accuracy is computed here, one check per threshold.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnistkit.data import shipped_mnist
from mnistkit.grading.probes import TORCH_CALLS
from mnistkit.grading.expect import Mismatch, as_tensor, check, expect_close, expect_shape
from mnistkit.grading.plugin import seeded_rng
from mnistkit.grading.student import NotDefined
from solutions import a4_further_research as ref



def rand(rng, *shape, scale=1.0):
    return torch.from_numpy((rng.standard_normal(shape) * scale).astype("float32"))


# ================================================================================ MomentumSGD
MOMENTUM_STEPS = '''
import torch
ps = [torch.as_tensor(p).clone().requires_grad_() for p in start]
opt = MomentumSGD(ps, lr) if mom is None else MomentumSGD(ps, lr, mom=mom)
for step_grads in grads:
    for p, g in zip(ps, step_grads):
        p.grad = torch.as_tensor(g).clone()
    opt.step()
result = dict(values=[p.detach().numpy() for p in ps], leaves=[p.is_leaf and p.requires_grad for p in ps])
'''


def momentum_case(student, rng, mom, steps=4):
    start = [rand(rng, 5, 3), rand(rng, 3)]
    grads = [[rand(rng, 5, 3), rand(rng, 3)] for _ in range(steps)]
    lr = float(rng.uniform(0.01, 0.3))
    got = student.run(MOMENTUM_STEPS, start=start, grads=grads, lr=lr, mom=mom)
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
        expect_close(g, w, f"parameter {i} after 2 steps", on="mom=0 (plain SGD)")
    check(all(got["leaves"]), "after step() the parameters should still be leaf tensors that "
                              "require gradients: update them in place under torch.no_grad()")


@pytest.mark.exercise("MomentumSGD")
def test_momentum_zero_grad_and_missing_grads(student, rng):
    got = student.run('''
import torch
a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
opt = MomentumSGD([a, b], 0.1)
a.grad = torch.ones_like(a)
opt.step()                        # b has no gradient: left alone
untouched = torch.equal(b.detach(), b0)
opt.zero_grad()
result = dict(untouched=untouched,
              cleared=[p.grad is None or bool((p.grad == 0).all()) for p in (a, b)])
''', a0=rand(rng, 4), b0=rand(rng, 2))
    check(got["untouched"], "step() should leave a parameter whose .grad is None unchanged")
    check(all(got["cleared"]), "zero_grad() should reset every parameter's gradient (None or zeros)")


# ================================================================================ Learner
LEARNER_RUN = '''
import types
import torch
from torch import nn
import torch.nn.functional as F

_log = dict(opt_calls=[], steps=[], forwards=[])

class _GraderSGD:
    """Plain SGD that records the gradients it is asked to step with."""
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr
        _log["opt_calls"].append([len(self.params), float(lr)])
    def step(self):
        _log["steps"].append([torch.zeros(()) if p.grad is None else p.grad.detach().clone()
                              for p in self.params])
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p -= self.lr * p.grad
    def zero_grad(self):
        for p in self.params:
            p.grad = None

class _Spy(nn.Module):
    """The grader's model, logging every forward pass: which batch, gradients on, train mode."""
    def __init__(self, inner, kinds):
        super().__init__()
        self.inner, self.kinds = inner, kinds
    def forward(self, x):
        _log["forwards"].append([self.kinds.get(x.data_ptr(), "other"),
                                 torch.is_grad_enabled(), self.training])
        return self.inner(x)

def _mnist_loss(predictions, targets):
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()

def _accuracy_3v7(preds, targets):
    return ((preds.sigmoid() > 0.5) == targets).float().mean()

def _accuracy(preds, targets):
    return (preds.argmax(1) == targets).float().mean()

def _target_probability(preds, targets):
    return preds.softmax(1)[torch.arange(len(targets)), targets].mean()

if kind == "3v7":
    inner = nn.Linear(784, 1)
    loss_func, metrics = _mnist_loss, _accuracy_3v7
else:
    inner = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    loss_func, metrics = F.cross_entropy, [_accuracy, _target_probability]
with torch.no_grad():
    for p, w in zip(inner.parameters(), weights):
        p.copy_(torch.as_tensor(w))
train = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(train_x, train_y)]
valid = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(valid_x, valid_y)]
kinds = {xb.data_ptr(): "train" for xb, _ in train}
kinds.update({xb.data_ptr(): "valid" for xb, _ in valid})
dls = types.SimpleNamespace(train=train, valid=valid)
learn = Learner(dls, _Spy(inner, kinds), opt_func=_GraderSGD, loss_func=loss_func, metrics=metrics)
learn.fit(epochs, lr)
rec = learn.recorder
result = dict(params=[p.detach().clone() for p in inner.parameters()],
              steps=_log["steps"], opt_calls=_log["opt_calls"], forwards=_log["forwards"],
              losses=[float(v) for v in rec.losses],
              values=[[float(v) for v in row] for row in rec.values])
'''


def learner_inputs(rng, kind):
    """Model weights and uneven mini-batches for one scenario (plain data, for both runs)."""
    if kind == "3v7":
        weights = [rand(rng, 1, 784, scale=0.05), rand(rng, 1, scale=0.05)]
        classes, lr, epochs = None, float(rng.uniform(0.5, 1.5)), 1
    else:
        weights = [rand(rng, 16, 784, scale=0.05), rand(rng, 16, scale=0.05),
                   rand(rng, 10, 16, scale=0.3), rand(rng, 10, scale=0.1)]
        classes, lr, epochs = 10, float(rng.uniform(0.05, 0.3)), 2

    def batches(sizes):
        xs = [torch.from_numpy(rng.random((n, 784), dtype="float32")) for n in sizes]
        if classes is None:
            ys = [torch.from_numpy(rng.integers(0, 2, (n, 1)).astype("float32")) for n in sizes]
        else:
            ys = [torch.from_numpy(rng.integers(0, classes, n)) for n in sizes]
        return xs, ys

    bs = int(rng.integers(6, 12))
    train_x, train_y = batches([bs] * int(rng.integers(3, 5)) + [int(rng.integers(1, bs))])
    valid_x, valid_y = batches([bs + 2, int(rng.integers(1, bs))])
    return dict(kind=kind, weights=weights, train_x=train_x, train_y=train_y,
                valid_x=valid_x, valid_y=valid_y, lr=lr, epochs=epochs)


def run_reference(code, **inputs):
    scope = {"Learner": ref.Learner}
    scope.update(inputs)
    exec(compile(code, "<reference run>", "exec"), scope)
    return scope["result"]


def _learner_runs(student, config, kind):
    if not student.has("Learner"):
        raise NotDefined("Learner")
    inputs = learner_inputs(seeded_rng(config, f"learner::{kind}"), kind)
    got = student.run(LEARNER_RUN, **inputs)
    return got, run_reference(LEARNER_RUN, **inputs), inputs


@pytest.fixture(scope="module")
def learner_3v7(student, request):
    return _learner_runs(student, request.config, "3v7")


@pytest.fixture(scope="module")
def learner_10(student, request):
    return _learner_runs(student, request.config, "10")


SCENARIOS = {"3v7": "the 3-vs-7 linear model with mnist_loss, one epoch",
             "10": "a 10-class model with cross-entropy and two metrics, two epochs"}


def scenario(request, kind):
    return request.getfixturevalue("learner_3v7" if kind == "3v7" else "learner_10")


def expect_list(value, what):
    check(isinstance(value, list), f"{what} should be a list")
    return value


@pytest.mark.exercise("Learner")
@pytest.mark.parametrize("kind", ["3v7", "10"])
def test_learner_fit_moves_parameters_like_reference(request, kind):
    got, want, _ = scenario(request, kind)
    check(len(got["opt_calls"]) == 1, f"fit should create the optimizer once, with opt_func(params, lr) "
                                      f"(it was called {len(got['opt_calls'])} times) on {SCENARIOS[kind]}")
    check(got["opt_calls"] == want["opt_calls"],
          "opt_func should get the list of all the model's parameters and the learning rate given to fit")
    for i, (g, w) in enumerate(zip(got["params"], want["params"])):
        expect_close(g, w, f"parameter {i} after fit", on=SCENARIOS[kind])


@pytest.mark.exercise("Learner")
def test_learner_steps_with_fresh_gradients(learner_10):
    got, want, inputs = learner_10
    steps = expect_list(got["steps"], "the optimizer steps")
    check(len(steps) == len(want["steps"]),
          f"the optimizer should step once per training batch ({len(want['steps'])} steps in "
          f"{inputs['epochs']} epochs), it stepped {len(steps)} times")
    for n, (g_step, w_step) in enumerate(zip(steps, want["steps"]), 1):
        for i, (g, w) in enumerate(zip(g_step, w_step)):
            try:
                expect_close(g, w, f"the gradient of parameter {i} at step {n}")
            except Mismatch as exc:
                hint = (" (it still holds the previous batches' gradients: zero them after each step)"
                        if n > 1 else "")
                raise Mismatch(f"{exc}{hint}") from None


@pytest.mark.exercise("Learner")
def test_learner_validates_without_gradients_in_eval_mode(learner_10):
    got, want, _ = learner_10
    forwards = expect_list(got["forwards"], "the forward passes")
    valid = [f for f in forwards if f[0] == "valid"]
    check(len(valid) == sum(1 for f in want["forwards"] if f[0] == "valid"),
          "each epoch should run the model once on every validation batch")
    check(not any(f[1] for f in valid), "validation should run with gradients off (torch.no_grad())")
    check(not any(f[2] for f in valid), "validation should run with the model in evaluation mode (model.eval())")
    train = [f for f in forwards if f[0] == "train"]
    check(len(train) == sum(1 for f in want["forwards"] if f[0] == "train") and all(f[1] and f[2] for f in train),
          "training batches should run once each per epoch, with gradients on and the model in "
          "training mode (model.train() at the start of every epoch)")


@pytest.mark.exercise("Learner")
@pytest.mark.parametrize("kind", ["3v7", "10"])
def test_learner_records_batch_losses(request, kind):
    got, want, _ = scenario(request, kind)
    losses = expect_list(got["losses"], "recorder.losses")
    check(len(losses) == len(want["losses"]),
          f"recorder.losses should hold one loss per training batch ({len(want['losses'])}), "
          f"it has {len(losses)} on {SCENARIOS[kind]}")
    expect_close(losses, want["losses"], "recorder.losses", on=SCENARIOS[kind])


@pytest.mark.exercise("Learner")
@pytest.mark.parametrize("kind", ["3v7", "10"])
def test_learner_records_epoch_rows(request, kind):
    got, want, _ = scenario(request, kind)
    values = expect_list(got["values"], "recorder.values")
    check(len(values) == len(want["values"]) and all(len(r) == len(want["values"][0]) for r in values),
          f"recorder.values should hold one row per epoch, [train_loss, valid_loss, metrics...] "
          f"({len(want['values'][0])} numbers per row on {SCENARIOS[kind]})")
    expect_close(values, want["values"], "recorder.values (averages over items, each batch weighted "
                                         "by its size)", on=SCENARIOS[kind])


# ================================================================================ load_split
LOAD_SPLIT = '''
import tempfile, pathlib
import numpy as np
from PIL import Image
root = pathlib.Path(tempfile.mkdtemp())
for digit, name, image in zip(digits, names, images):
    (root / str(digit)).mkdir(exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(root / str(digit) / name)
x, y = load_split(str(root) if as_text else root)
result = dict(x=x, y=y)
'''


def load_split_case(student, rng, digits_present, per_digit, as_text=False):
    digits, names, images = [], [], []
    for d in digits_present:
        numbers = rng.choice(100_000, size=per_digit, replace=False)
        for k in numbers:
            digits.append(int(d))
            names.append(f"{k}.png")
            images.append(rng.integers(0, 256, (28, 28), dtype=np.uint8))
    got = student.run(LOAD_SPLIT, digits=digits, names=names, images=images, as_text=as_text)
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


# ================================================================================ softmax
FORBIDDEN_SOFTMAX = {"softmax", "log_softmax", "_softmax"}
FORBIDDEN_CE = {"cross_entropy", "nll_loss", "log_softmax", "softmax", "_softmax"}


@pytest.mark.exercise("softmax")
def test_softmax_random_scores(student, rng):
    x = rand(rng, int(rng.integers(2, 30)), int(rng.integers(2, 12)), scale=3)
    expect_close(student.call("softmax", x), ref.softmax(x), "softmax(x)", on=f"random scores {tuple(x.shape)}")


@pytest.mark.exercise("softmax")
def test_softmax_last_axis_of_rank_3(student, rng):
    x = rand(rng, 3, int(rng.integers(2, 6)), int(rng.integers(2, 9)), scale=2)
    expect_close(student.call("softmax", x), ref.softmax(x), "softmax(x)",
                 on=f"a rank-3 tensor {tuple(x.shape)} (softmax along the last axis)")


@pytest.mark.exercise("softmax")
def test_softmax_huge_scores_stay_finite(student, rng):
    x = rand(rng, 6, 10, scale=400) + 1000
    expect_close(student.call("softmax", x), ref.softmax(x), "softmax(x)",
                 on="scores near 1000 (subtract each row's max before exp)")


@pytest.mark.exercise("softmax")
def test_softmax_written_by_hand(student, rng):
    names = student.run(TORCH_CALLS + '''
with TorchCalls() as calls:
    softmax(x)
result = calls.names
''', x=rand(rng, 4, 7))
    used = sorted(set(names) & FORBIDDEN_SOFTMAX)
    check(not used, f"softmax should be written with exp and sum, not PyTorch's {used[0]}" if used else "")


# ================================================================================ cross_entropy
@pytest.mark.exercise("cross_entropy")
def test_cross_entropy_random_scores(student, rng):
    n, k = int(rng.integers(2, 40)), int(rng.integers(2, 12))
    logits, targets = rand(rng, n, k, scale=3), torch.from_numpy(rng.integers(0, k, n))
    got = expect_shape(student.call("cross_entropy", logits, targets), (), "cross_entropy(logits, targets)")
    expect_close(got, F.cross_entropy(logits, targets), "cross_entropy(logits, targets)",
                 on=f"random scores for {n} items and {k} classes")


@pytest.mark.exercise("cross_entropy")
def test_cross_entropy_huge_scores_stay_finite(student, rng):
    logits = rand(rng, 8, 10, scale=300) + 1000
    targets = torch.from_numpy(rng.integers(0, 10, 8))
    expect_close(student.call("cross_entropy", logits, targets), F.cross_entropy(logits, targets),
                 "cross_entropy(logits, targets)", on="scores near 1000 (use logsumexp)")


@pytest.mark.exercise("cross_entropy")
def test_cross_entropy_written_by_hand(student, rng):
    names = student.run(TORCH_CALLS + '''
with TorchCalls() as calls:
    cross_entropy(logits, targets)
result = calls.names
''', logits=rand(rng, 5, 4), targets=torch.from_numpy(rng.integers(0, 4, 5)))
    used = sorted(set(names) & FORBIDDEN_CE)
    check(not used, f"cross_entropy should be written by hand (indexing and logsumexp), not with "
                    f"PyTorch's {used[0]}" if used else "")


# ================================================================================ digit_means
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
@pytest.mark.exercise("nearest_mean")
def test_nearest_mean_random_images(student, rng):
    means = torch.from_numpy(rng.random((10, 28, 28), dtype="float32"))
    n = int(rng.integers(5, 50))
    pick = torch.from_numpy(rng.integers(0, 10, n))
    x = means[pick] + rand(rng, n, 28, 28, scale=0.3)
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
    x = rand(rng, 1, 4, 4, scale=0.01)
    got = as_tensor(student.call("nearest_mean", means, x), "nearest_mean(means, x)")
    check(got.flatten().tolist() == [a], "nearest_mean should measure closeness by the root mean "
                                         "squared difference (RMSE), not the mean absolute difference")


@pytest.mark.exercise("nearest_mean")
def test_nearest_mean_broadcasts(student, rng):
    counts = student.run(TORCH_CALLS + '''
counts = []
for x in (small, big):
    with TorchCalls() as calls:
        nearest_mean(means, x)
    counts.append(len(calls.names))
result = counts
''', means=rand(rng, 10, 28, 28), small=rand(rng, 3, 28, 28), big=rand(rng, 30, 28, 28))
    check(counts[0] == counts[1], "nearest_mean does more tensor operations for more images: "
                                  "compare all images with all means at once (broadcasting), not in a loop")


# ================================================================================ pick_device
PICK_DEVICE = '''
import torch
_real = torch.cuda.is_available
torch.cuda.is_available = lambda: gpu
try:
    result = str(torch.device(pick_device()).type)
finally:
    torch.cuda.is_available = _real
'''


@pytest.mark.exercise("pick_device")
def test_pick_device_cpu_without_gpu(student):
    kind = student.run(PICK_DEVICE, gpu=False)
    check(kind == "cpu", f"without a GPU pick_device() should give the CPU, not {kind!r}")


@pytest.mark.exercise("pick_device")
def test_pick_device_cuda_with_gpu(student):
    kind = student.run(PICK_DEVICE, gpu=True)
    check(kind == "cuda", f"when torch.cuda.is_available() is true pick_device() should give cuda, not {kind!r}")


# ================================================================================ train_digits
# make_model's contract is checked in its own checks (so a model too heavy for the budget loses
# only the accuracy checks); the accuracy comes from one grader-side training run.
MODEL_SHAPE = '''
import torch
from torch import nn
m = make_model()
ok_module = isinstance(m, nn.Module)
n_params = sum(p.numel() for p in m.parameters()) if ok_module else -1
m.eval()
with torch.no_grad():
    out = m(x)
m2 = make_model()
fresh = all(a is not b for a, b in zip(m.parameters(), m2.parameters()))
result = dict(module=ok_module, params=int(n_params), out=out, fresh=fresh,
              trainable=all(p.requires_grad for p in m.parameters()))
'''


@pytest.mark.exercise("train_digits")
def test_make_model_shape_and_size(student, rng):
    n = int(rng.integers(2, 9))
    got = student.run(MODEL_SHAPE, x=torch.from_numpy(rng.random((n, 1, 28, 28), dtype="float32")))
    check(got["module"], "make_model() should return an nn.Module")
    check(0 < got["params"] <= ref.MAX_PARAMETERS,
          f"the model should have between 1 and {ref.MAX_PARAMETERS:,} parameters, it has {got['params']:,}")
    expect_shape(got["out"], (n, 10), f"the model's output for {n} images")
    check(got["fresh"] and got["trainable"], "make_model() should build a new model with trainable "
                                             "parameters on every call")


TRAIN_AND_PREDICT = '''
import torch
model = make_model()
train_digits(model, torch.from_numpy(train_images).float().div_(255).unsqueeze(1),
             torch.from_numpy(train_labels).long())
preds = predict_digits(model, torch.from_numpy(test_images).float().div_(255).unsqueeze(1))
result = torch.as_tensor(preds).detach().cpu()
'''


def graded_test_set(config):
    """The test images in an order of the course seed, with faint noise (+-2 of 255) so that a
    lookup of exact images gets nothing; and their labels, which stay here."""
    rng = seeded_rng(config, "train_digits::test-set")
    mnist = shipped_mnist()
    order = rng.permutation(len(mnist.test_images))
    images = mnist.test_images[order].astype(np.int16) + rng.integers(-2, 3, (len(order), 28, 28))
    return np.clip(images, 0, 255).astype(np.uint8), mnist.test_labels[order].astype(np.int64)


@pytest.fixture(scope="module")
def digit_accuracy(student, request):
    """(accuracy, seconds) of the student's model, trained by the grader on the training set."""
    import time
    for name in ("make_model", "train_digits", "predict_digits"):
        if not student.has(name):
            raise NotDefined(name)
    test_images, test_labels = graded_test_set(request.config)
    mnist = shipped_mnist()
    start = time.perf_counter()
    preds = student.run_for(ref.TRAIN_SECONDS, TRAIN_AND_PREDICT, train_images=mnist.train_images,
                            train_labels=mnist.train_labels.astype(np.int64), test_images=test_images)
    seconds = time.perf_counter() - start
    preds = expect_shape(preds, (len(test_labels),), "predict_digits(model, test_images)")
    check(not preds.dtype.is_floating_point, "predict_digits should return whole numbers (the digits)")
    return (preds.long().numpy() == test_labels).mean(), seconds


@pytest.mark.exercise("train_digits")
@pytest.mark.parametrize("threshold", ref.ACCURACY_THRESHOLDS, ids=lambda t: f"{t:.0%}")
def test_trained_model_accuracy(digit_accuracy, threshold):
    accuracy, seconds = digit_accuracy
    check(accuracy >= threshold, f"test accuracy {accuracy:.2%} (trained in {seconds:.0f} s) is below "
                                 f"{threshold:.0%}")
