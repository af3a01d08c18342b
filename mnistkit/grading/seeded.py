"""Seeded inputs: random tensors, labels, words, models and image folders drawn from a check's
``rng``.

Why: the hidden checks of several assignments draw the same kinds of inputs (random images,
normal weights, 0/1 labels, parameter lists of a linear model or a two-layer net, a random
image folder, a random model description). They live here once, so a test module says *what*
it draws (``rand(rng, n, 784)``) and not how. Every function draws from the ``rng`` it is given
and nothing else, in a fixed order: the same seed gives the same inputs, so the same grade.
Keep the draws of an existing function in their order, or every grading changes.
"""
from __future__ import annotations

import numpy as np
import torch


def randn(rng, *shape, scale=1.0):
    """Normal float32 numbers of standard deviation ``scale``."""
    return torch.from_numpy((rng.standard_normal(shape) * scale).astype("float32"))


def rand(rng, *shape):
    """Uniform float32 numbers in [0, 1) (random images)."""
    return torch.from_numpy(rng.random(shape, dtype="float32"))


def uniform(rng, *shape, lo=0.0, hi=1.0):
    """Uniform float32 numbers in [lo, hi)."""
    return torch.from_numpy(np.asarray(rng.uniform(lo, hi, size=shape), dtype="float32"))


def labels(rng, n):
    """``n`` random 0/1 labels, a column of shape (n, 1) (3 or not 3)."""
    return torch.from_numpy(rng.integers(0, 2, (n, 1)))


def random_word(rng, n):
    """``n`` random lowercase letters."""
    return "".join(chr(ord("a") + int(i)) for i in rng.integers(0, 26, n))


def model_params(rng, kind, hidden=8, scale=0.1):
    """The parameter tensors of a linear model (784 -> 1) or of a two-layer net (784 -> hidden
    -> 1), for ``training_probes.model``."""
    if kind == "linear":
        return [randn(rng, 784, 1, scale=scale), randn(rng, 1, scale=scale)]
    return [randn(rng, 784, hidden, scale=scale), randn(rng, hidden, scale=scale),
            randn(rng, hidden, 1, scale=scale), randn(rng, 1, scale=scale)]


LETTERS = list("abcdefghijklmnopqrstuvwxyz")


def folder_case(rng):
    """A random image folder in fastai's layout: train/ and valid/ (and a test/ folder that is
    neither), one subfolder per class with random names, small random grey images."""
    n_classes = int(rng.integers(2, 4))
    classes = sorted({"".join(rng.choice(LETTERS, 4)) for _ in range(n_classes)})
    bs = int(rng.integers(2, 5))
    side = int(rng.integers(8, 14))
    files, images, split = [], [], {"train": [], "valid": []}
    for part, (low, high) in (("train", (bs, bs + 3)), ("valid", (bs, bs + 3)), ("test", (1, 3))):
        for label in classes:
            for number in rng.choice(100_000, size=int(rng.integers(low, high)), replace=False):
                name = f"{part}/{label}/{number}.png"
                files.append(name)
                images.append(rng.integers(0, 256, (side, side), dtype=np.uint8))
                if part in split:
                    split[part].append(name)
    return dict(files=files, images=images, bs=bs, as_path=bool(rng.random() < 0.5)), classes, split


PLAIN_LAYERS = (["ReLU", [], {}], ["Flatten", [], {}], ["MaxPool2d", [2], {}],
                ["Dropout", [0.5], {}], ["Sigmoid", [], {}])


def random_spec(rng, batch_norm=False, weighted=True, depth=0):
    """A random ``nn.Sequential`` as plain data (``model_probes.build_from_spec``): linear and
    convolutional layers (with and without bias), nested blocks, activations, pooling and, with
    ``batch_norm``, batch norm layers; ``weighted=False``: no linear or convolutional layer."""
    layers = []
    for _ in range(int(rng.integers(3, 7))):
        r = rng.random()
        n_in, n_out = (int(v) for v in rng.integers(1, 40, 2))
        if weighted and r < 0.3:
            layers.append(["Linear", [n_in, n_out], {"bias": bool(rng.random() < 0.7)}])
        elif weighted and r < 0.5:
            layers.append(["Conv2d", [n_in, n_out, int(rng.integers(1, 6))],
                           {"bias": bool(rng.random() < 0.7)}])
        elif r < 0.65 and depth < 2:
            layers.append(["Sequential", random_spec(rng, batch_norm, weighted, depth + 1), {}])
        elif batch_norm and r < 0.85:
            layers.append([str(rng.choice(["BatchNorm1d", "BatchNorm2d"])), [n_in], {}])
        else:
            layers.append(list(PLAIN_LAYERS[int(rng.integers(len(PLAIN_LAYERS)))]))
    if depth == 0 and weighted:   # always a weight layer nested two deep, and a batch norm
        inner = [["Linear", [int(rng.integers(2, 9)), 3], {}]] + \
                ([["BatchNorm2d", [int(rng.integers(2, 9))], {}]] if batch_norm else [])
        layers.append(["Sequential", [["ReLU", [], {}], ["Sequential", inner, {}]], {}])
    return layers


def learner_inputs(rng, kind):
    """Model weights and uneven mini-batches for one scenario of a4's ``Learner`` probe
    (``training_probes.learner_run``; plain data, for both runs): "3v7" (a linear model, 0/1
    float targets), "10" (a 10-class net), else "modes" (a 10-class net with batch norm)."""
    if kind == "3v7":
        weights = [randn(rng, 1, 784, scale=0.05), randn(rng, 1, scale=0.05)]
        classes, lr, epochs = None, float(rng.uniform(0.5, 1.5)), 1
    elif kind == "10":
        weights = [randn(rng, 16, 784, scale=0.05), randn(rng, 16, scale=0.05),
                   randn(rng, 10, 16, scale=0.3), randn(rng, 10, scale=0.1)]
        classes, lr, epochs = 10, float(rng.uniform(0.05, 0.3)), 2
    else:
        weights = [randn(rng, 12, 784, scale=0.05), randn(rng, 12, scale=0.05),
                   1 + randn(rng, 12, scale=0.1), randn(rng, 12, scale=0.1),
                   randn(rng, 10, 12, scale=0.3), randn(rng, 10, scale=0.1)]
        classes, lr, epochs = 10, float(rng.uniform(0.05, 0.2)), 2

    def batches(sizes):
        xs = [torch.from_numpy(rng.random((n, 784), dtype="float32")) for n in sizes]
        if classes is None:
            ys = [torch.from_numpy(rng.integers(0, 2, (n, 1)).astype("float32")) for n in sizes]
        else:
            ys = [torch.from_numpy(rng.integers(0, classes, n)) for n in sizes]
        return xs, ys

    bs = int(rng.integers(6, 12))
    train_x, train_y = batches([bs] * int(rng.integers(3, 5)) + [int(rng.integers(2, bs))])
    valid_x, valid_y = batches([bs + 2, int(rng.integers(2, bs))])
    return dict(kind=kind, weights=weights, train_x=train_x, train_y=train_y,
                valid_x=valid_x, valid_y=valid_y, lr=lr, epochs=epochs)
