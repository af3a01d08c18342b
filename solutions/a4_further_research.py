"""Reference solutions for a4_further_research (notebook `further_research`): the chapter's two
further-research tasks. Names are exercise ids.

Part 1, a Learner from scratch: ``MomentumSGD`` (the optimizer step) and ``Learner`` (fit,
validate, record), with the given ``Recorder``. Part 2, all ten digits: ``load_digits``,
``softmax`` and ``cross_entropy`` written by hand, the pixel-similarity baseline for ten digits
(``digit_means``, ``nearest_mean``), and a model (``pick_device``, ``make_model``,
``train_digits``, ``predict_digits``) that the grader trains itself on the 60,000 training
images and tests on the 10,000 test images. The model is the CNN of ``solutions.all_digits``,
trained here with the reference ``Learner`` and the notebook's given tools (``OneCycleAdam``,
``ShuffledBatches``; ``ShiftedBatches`` in the notebook).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from solutions import all_digits

# What the grader gives train_digits, and how long it may take (stated in the notebook).
TRAIN_SECONDS = 150           # train_digits + predict_digits on the grader's 2-core CPU
ACCURACY_THRESHOLDS = (0.90, 0.95, 0.98, 0.99)
MAX_PARAMETERS = 2_000_000


# --- Given in the notebook ----------------------------------------------------------------------
class Recorder:
    """What a Learner saw: every training batch's loss, and one row per epoch:
    [train_loss, valid_loss, metric_1, metric_2, ...] (averages over items)."""

    def __init__(self):
        self.losses, self.values = [], []

    def plot_loss(self, ax=None):
        import matplotlib.pyplot as plt
        ax = ax or plt.subplots(figsize=(4, 2.5))[1]
        ax.plot(self.losses, lw=0.8)
        ax.set_xlabel("batch")
        ax.set_ylabel("training loss")
        return ax


# --- Part 1: the optimizer step ---------------------------------------------------------------------
class MomentumSGD:
    """SGD with momentum: each step moves a parameter by ``lr`` times a running sum of its
    gradients, ``v = mom * v + grad``; ``mom=0`` is the chapter's plain SGD."""

    def __init__(self, params, lr, mom=0.9):
        self.params, self.lr, self.mom = list(params), lr, mom
        self.velocity = [None] * len(self.params)

    @torch.no_grad()
    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            v = self.velocity[i]
            v = p.grad.clone() if v is None else v.mul_(self.mom).add_(p.grad)
            self.velocity[i] = v
            p -= self.lr * v

    def zero_grad(self):
        for p in self.params:
            p.grad = None


# --- Part 1: the Learner ------------------------------------------------------------------------------
class Learner:
    """fastai's Learner, small: ``fit(epochs, lr)`` trains ``model`` on ``dls.train`` with an
    optimizer made by ``opt_func(params, lr)``, validates on ``dls.valid`` after each epoch
    (no gradients, eval mode) and records in ``self.recorder``."""

    def __init__(self, dls, model, opt_func=MomentumSGD, loss_func=F.cross_entropy, metrics=()):
        self.dls, self.model, self.opt_func, self.loss_func = dls, model, opt_func, loss_func
        self.metrics = [metrics] if callable(metrics) else list(metrics)
        self.recorder = Recorder()

    def _device(self):
        return next(self.model.parameters()).device

    def one_batch(self, xb, yb):
        loss = self.loss_func(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()
        return loss.item()

    def train_epoch(self):
        self.model.train()
        device, total, count = self._device(), 0.0, 0
        for xb, yb in self.dls.train:
            xb, yb = xb.to(device), yb.to(device)
            loss = self.one_batch(xb, yb)
            self.recorder.losses.append(loss)
            total, count = total + loss * len(xb), count + len(xb)
        return total / count if count else float("nan")

    @torch.no_grad()
    def validate(self):
        """[valid_loss, metric values...], averaged over the validation items."""
        self.model.eval()
        device = self._device()
        totals, count = [0.0] * (1 + len(self.metrics)), 0
        for xb, yb in self.dls.valid:
            xb, yb = xb.to(device), yb.to(device)
            preds = self.model(xb)
            values = [self.loss_func(preds, yb)] + [m(preds, yb) for m in self.metrics]
            totals = [t + float(v) * len(xb) for t, v in zip(totals, values)]
            count += len(xb)
        return [t / count if count else float("nan") for t in totals]

    def fit(self, epochs, lr, show=False):
        self.opt = self.opt_func(list(self.model.parameters()), lr)
        start = time.perf_counter()
        for epoch in range(epochs):
            row = [self.train_epoch()] + self.validate()
            self.recorder.values.append(row)
            if show:
                cells = "  ".join(f"{v:.4f}" for v in row)
                print(f"epoch {epoch}  {cells}  {time.perf_counter() - start:.1f}s", flush=True)


# --- Part 2: the data ----------------------------------------------------------------------------------
def load_digits(folder):
    """Every image of ``folder/<digit>/*.png`` as floats (n, 28, 28) in 0..1, and the digits
    (n,) as int64: digit folders in order, files sorted by name within each."""
    from PIL import Image
    xs, ys = [], []
    for sub in sorted((p for p in Path(folder).iterdir() if p.is_dir()), key=lambda p: int(p.name)):
        for f in sorted(sub.iterdir(), key=lambda p: p.name):
            xs.append(torch.from_numpy(np.array(Image.open(f))))
            ys.append(int(sub.name))
    return torch.stack(xs).float() / 255, torch.tensor(ys, dtype=torch.int64)


# --- Part 2: softmax and cross-entropy by hand -------------------------------------------------------
def softmax(x):
    """exp(x) / sum(exp(x)) along the last axis; subtracting the max first keeps exp finite."""
    e = (x - x.max(-1, keepdim=True).values).exp()
    return e / e.sum(-1, keepdim=True)


def cross_entropy(logits, targets):
    """Mean over the batch of -log(softmax(logits)[target]), computed as
    logsumexp(logits) - logits[target] so that large scores do not overflow."""
    picked = logits[torch.arange(len(targets)), targets]
    return (logits.logsumexp(-1) - picked).mean()


# --- Part 2: the pixel-similarity baseline for ten digits -------------------------------------------
def digit_means(x, y):
    """The mean image of each digit, (10, h, w)."""
    return torch.stack([x[y == d].mean(0) for d in range(10)])


def nearest_mean(means, x):
    """The digit whose mean image is closest (root mean squared difference) to each image."""
    return (x[:, None] - means[None]).pow(2).mean((-1, -2)).argmin(1)


# --- Part 2: the model the grader trains ---------------------------------------------------------------
def pick_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_model():
    """The reference CNN of solutions.all_digits. No input normalisation: batch norm right
    after the first (bias-free) convolution removes any shift and scale of the pixels."""
    return all_digits.make_model()


class ShuffledBatches:
    """Mini-batches of (x, y), reshuffled on every pass, each image shifted by up to one pixel."""

    def __init__(self, x, y, bs, seed=0):
        self.x, self.y, self.bs = x, y, bs
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self):
        return math.ceil(len(self.x) / self.bs)

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=self.gen)
        for i in range(0, len(self.x), self.bs):
            idx = order[i:i + self.bs]
            xb = all_digits.random_shift(self.x[idx], all_digits.MAX_SHIFT, self.gen)
            yield xb.contiguous(memory_format=torch.channels_last), self.y[idx]


class OneCycleAdam:
    """Adam whose learning rate follows a one-cycle schedule over ``total_steps`` steps."""

    def __init__(self, params, lr, total_steps):
        self.opt = torch.optim.Adam(params, lr=lr)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=lr, total_steps=total_steps)

    def step(self):
        self.opt.step()
        if self.sched.last_epoch + 1 < self.sched.total_steps:
            self.sched.step()

    def zero_grad(self):
        self.opt.zero_grad(set_to_none=True)


class DataLoaders:
    def __init__(self, train, valid):
        self.train, self.valid = train, valid


def train_digits(model, x, y, epochs=all_digits.EPOCHS):
    """Train ``model`` in place on images ``x`` (n, 1, 28, 28) in 0..1 and digits ``y`` (n,),
    with the reference Learner: Adam with a one-cycle schedule, label smoothing, shifts."""
    device = pick_device()
    model.to(device=device, memory_format=torch.channels_last)
    batches = ShuffledBatches(x, y, all_digits.BATCH_SIZE)
    opt_func = lambda params, lr: OneCycleAdam(params, lr, total_steps=epochs * len(batches))
    loss_func = lambda preds, targets: F.cross_entropy(preds, targets,
                                                       label_smoothing=all_digits.LABEL_SMOOTHING)
    learn = Learner(DataLoaders(batches, []), model, opt_func, loss_func)
    learn.fit(epochs, all_digits.LR)
    return model


@torch.no_grad()
def predict_digits(model, x):
    """The predicted digit of each image, int64 on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(x[i:i + 1000].to(device).contiguous(memory_format=torch.channels_last))
                      .argmax(1).cpu() for i in range(0, len(x), 1000)])
