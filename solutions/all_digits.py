"""Reference model for the "further research: all 10 digits" assignment (fastbook chapter 4).

The chapter ends by asking for a model of all ten digits. This module is the kit's reference:
a small convolutional network trained with plain PyTorch (no fastai ``Learner``), and the
10-digit version of the chapter's pixel-similarity baseline to compare it with.

All functions take MNIST as ``mnistkit.data.load_mnist()`` returns it: uint8 images
``(n, 28, 28)`` and integer labels ``(n,)`` (NumPy arrays or tensors); scaling to floats happens
inside. Training is deterministic on the CPU for a given ``seed`` (same machine, same thread
count); on a GPU cuDNN may pick non-deterministic kernels, so results match only closely.

The reference (``fit(train_x, train_y)``: ``make_model()`` + ``train()`` with the defaults below):
four convolutions with stride 2 (16, 32, 64, 128 channels; 5x5 then 3x3 kernels; 28 -> 14 -> 7
-> 4 -> 2 pixels), each followed by batch norm and ReLU, then a linear layer from the 2x2x128
features to the 10 digits (about 100k parameters). Adam with a one-cycle learning-rate schedule
(``OneCycleLR``, peak 0.02), 2 epochs of batch 128, label smoothing 0.1, and every training
image shifted by a random whole pixel (at most 1 in each direction). It reaches about 99.35% on
the 10,000 test images (99.29-99.39% over the seeds tried). Strided convolutions instead of
conv + max-pool keep it cheap on a CPU: most of the cost of a conv + pool network is at the
full 28x28 resolution. ``mnistkit bench`` trains and times it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

# Training recipe of the reference model (what ``mnistkit bench`` uses by default).
EPOCHS = 2
BATCH_SIZE = 128
LR = 2e-2                 # peak learning rate of the one-cycle schedule
LABEL_SMOOTHING = 0.1
MAX_SHIFT = 1             # augmentation: random shifts of up to 1 pixel
WIDTHS = (16, 32, 64, 128)

# MNIST's training-set pixel mean and standard deviation (on the 0..1 scale).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BACKGROUND = -MNIST_MEAN / MNIST_STD   # a black pixel after scale_images
EVAL_BATCH = 1000


def to_tensor(a) -> torch.Tensor:
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))


def scale_images(images) -> torch.Tensor:
    """uint8 images (n, 28, 28) -> float32 (n, 1, 28, 28), normalised to mean 0, std 1."""
    x = to_tensor(images)
    x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
    return ((x - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, *x.shape[-2:])


def _conv_block(c_in: int, c_out: int, kernel: int = 3, stride: int = 2) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def make_model(widths=WIDTHS, first_kernel: int = 5) -> nn.Sequential:
    """The reference CNN: stride-2 conv + batch norm + ReLU blocks (28 -> 14 -> 7 -> 4 -> 2
    pixels; the first kernel is 5x5, the others 3x3), then a linear layer to 10 scores."""
    layers, c_in, size = [], 1, 28
    for i, width in enumerate(widths):
        layers += _conv_block(c_in, width, kernel=first_kernel if i == 0 else 3)
        c_in, size = width, (size + 1) // 2
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, 10)]
    return nn.Sequential(*layers)


def resolve_device(device=None) -> torch.device:
    """``None``/"auto" -> cuda when available, else cpu; anything else as given."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


@dataclass
class History:
    """What ``train`` did: one entry per epoch (mean training loss, seconds since the start)."""
    epochs: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def train_seconds(self) -> float:
        return self.seconds[-1] if self.seconds else 0.0


Progress = Callable[[int, int, float, float], None]   # (epoch, epochs, seconds, loss)


def _memory_format(device: torch.device):
    # channels_last makes oneDNN's CPU convolutions markedly faster for these small channel
    # counts (measured: 1.3-3x per layer); on the GPU cuDNN is fine either way.
    return torch.channels_last


def random_shift(xb: torch.Tensor, max_shift: int, generator: torch.Generator,
                 fill: float = 0.0) -> torch.Tensor:
    """Each image of ``xb`` (n, 1, h, w) moved by its own random whole-pixel offset of at most
    ``max_shift`` in each direction (offsets drawn on the CPU from ``generator``); the uncovered
    border is set to ``fill``."""
    n, _, h, w = xb.shape
    pad = max_shift
    padded = F.pad(xb, (pad, pad, pad, pad), value=fill)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator).to(xb.device)
    rows = (dy + torch.arange(h, device=xb.device))[:, :, None]
    cols = (dx + torch.arange(w, device=xb.device))[:, None, :]
    return padded[torch.arange(n, device=xb.device)[:, None, None], 0, rows, cols].unsqueeze(1)


def train(model: nn.Module, train_x, train_y, *, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE,
          lr: float = LR, device=None, seed: int = 0, label_smoothing: float = LABEL_SMOOTHING,
          max_shift: int = MAX_SHIFT, progress: Progress | None = None) -> History:
    """Train ``model`` in place on uint8 images ``train_x`` and labels ``train_y`` with Adam and
    a one-cycle schedule; returns the per-epoch history. The data are shuffled each epoch by a
    generator seeded with ``seed`` (the model's initial weights are the caller's business:
    seed ``torch.manual_seed`` before ``make_model``, as ``fit`` does)."""
    device = resolve_device(device)
    fmt = _memory_format(device)
    model.to(device=device, memory_format=fmt).train()
    x = scale_images(train_x).to(device)
    y = to_tensor(train_y).long().to(device)
    n = len(x)
    steps_per_epoch = math.ceil(n / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    history = History(epochs=epochs)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb = x[idx]
            if max_shift:
                xb = random_shift(xb, max_shift, gen, fill=BACKGROUND)
            xb = xb.contiguous(memory_format=fmt)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach() * len(idx)
        mean_loss = total.item() / n           # .item() also waits for the GPU
        history.losses.append(mean_loss)
        history.seconds.append(time.perf_counter() - start)
        if progress:
            progress(epoch + 1, epochs, history.seconds[-1], mean_loss)
    return history


@torch.no_grad()
def predict(model: nn.Module, images, device=None, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Predicted digit (int64, on the CPU) for every uint8 image."""
    device = resolve_device(device)
    fmt = _memory_format(device)
    model.to(device=device, memory_format=fmt).eval()
    x = scale_images(images)
    out = [model(x[i:i + batch_size].to(device, non_blocking=True).contiguous(memory_format=fmt))
           .argmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def accuracy(predictions, labels) -> float:
    """Fraction of predictions equal to the labels."""
    return (to_tensor(predictions).long() == to_tensor(labels).long()).float().mean().item()


def fit(train_x, train_y, *, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, lr: float = LR,
        device=None, seed: int = 0, progress: Progress | None = None, max_shift: int = MAX_SHIFT,
        label_smoothing: float = LABEL_SMOOTHING, **model_options):
    """Seeded ``make_model`` + ``train``: (model, history)."""
    torch.manual_seed(seed)
    model = make_model(**model_options)
    history = train(model, train_x, train_y, epochs=epochs, batch_size=batch_size, lr=lr,
                    device=device, seed=seed, progress=progress, max_shift=max_shift,
                    label_smoothing=label_smoothing)
    return model, history


# --- The chapter's pixel-similarity baseline, for ten digits --------------------------------------
def digit_means(train_x, train_y) -> torch.Tensor:
    """The "ideal" digit of each class: the mean float image (10, 28, 28) on the 0..1 scale."""
    x = to_tensor(train_x).float() / 255
    y = to_tensor(train_y).long()
    return torch.stack([x[y == d].mean(0) for d in range(10)])


def nearest_mean_predict(means, images, norm: str = "l2") -> torch.Tensor:
    """Each image's digit = the mean image it is closest to (``"l1"``: mean absolute difference,
    the chapter's ``mnist_distance``; ``"l2"``: root mean squared difference)."""
    x = to_tensor(images).float() / 255
    diff = x[:, None] - means[None]                # (n, 10, 28, 28), broadcast like the chapter
    dist = diff.abs().mean((-1, -2)) if norm == "l1" else diff.pow(2).mean((-1, -2)).sqrt()
    return dist.argmin(1)


def nearest_mean_accuracy(train_x, train_y, test_x, test_y, norm: str = "l2",
                          batch_size: int = 1000) -> float:
    """Accuracy on the test images of the nearest-digit-mean classifier (the chapter's pixel
    similarity for all ten digits): about 82% with L2 distance, 67% with L1."""
    means = digit_means(train_x, train_y)
    test_x = to_tensor(test_x)
    preds = torch.cat([nearest_mean_predict(means, test_x[i:i + batch_size], norm)
                       for i in range(0, len(test_x), batch_size)])
    return accuracy(preds, test_y)


# --- The chapter's linear 3-vs-7 model, for comparison ----------------------------------------------
LINEAR_EPOCHS = 5


def mnist_loss(predictions, targets):
    """The chapter's loss: sigmoid, then the distance from the target (1 = three, 0 = seven)."""
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


def threes_and_sevens(images, labels):
    """The chapter's tensors from MNIST: (n, 784) floats in 0..1 and (n, 1) targets, 1 for a
    three and 0 for a seven (all threes first, then all sevens)."""
    images, labels = to_tensor(images), to_tensor(labels).long()
    threes, sevens = images[labels == 3], images[labels == 7]
    x = torch.cat([threes, sevens]).float().div(255).reshape(-1, 28 * 28)
    y = torch.cat([torch.ones(len(threes)), torch.zeros(len(sevens))]).unsqueeze(1)
    return x, y


def train_linear_3v7(train_x, train_y, *, epochs: int = LINEAR_EPOCHS, batch_size: int = 256,
                     lr: float = 1.0, seed: int = 0) -> nn.Linear:
    """The chapter's model: ``nn.Linear(784, 1)`` trained with ``mnist_loss`` and plain SGD
    (``p -= lr * p.grad``) on shuffled mini-batches of the training threes and sevens."""
    x, y = threes_and_sevens(train_x, train_y)
    torch.manual_seed(seed)
    model = nn.Linear(28 * 28, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = mnist_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


@torch.no_grad()
def linear_3v7_accuracy(model: nn.Module, test_x, test_y) -> float:
    """The chapter's ``batch_accuracy`` on the test threes and sevens (1010 + 1028 images):
    a three is predicted when sigmoid(score) > 0.5."""
    x, y = threes_and_sevens(test_x, test_y)
    return ((model(x).sigmoid() > 0.5).float() == y).float().mean().item()
