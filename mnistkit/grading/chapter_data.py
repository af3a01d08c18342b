"""The chapter's tensors, rebuilt in the grader from the shipped MNIST file (no PNG reading).

The hidden tests compare students' answers on the chapter's own data (a1's mean images, a3's
``train_x``), which the notebooks load from fastai's PNG folders. Those folders name every image
by its MNIST index, so the same tensors come out of ``mnistkit.data.load_mnist()`` at a fraction
of the cost. Grader-side only: nothing here is sent into a sandbox.
"""
from __future__ import annotations

import torch

A_3_INDEX = 10000  # the chapter's `threes[1]`: the 2nd name of train/3 sorted as text, 10000.png


def digit_images(images, labels, digit) -> torch.Tensor:
    """All images of one digit as a float (n, 28, 28) tensor in 0..1, in MNIST order."""
    return torch.from_numpy(images[labels == digit]).float() / 255


def chapter_data(mnist) -> dict:
    """a1's tensors: training and validation 3s and 7s, the two means and ``a_3``."""
    threes = digit_images(mnist.train_images, mnist.train_labels, 3)
    sevens = digit_images(mnist.train_images, mnist.train_labels, 7)
    return dict(
        threes=threes, sevens=sevens,
        valid_threes=digit_images(mnist.test_images, mnist.test_labels, 3),
        valid_sevens=digit_images(mnist.test_images, mnist.test_labels, 7),
        mean3=threes.mean(0), mean7=sevens.mean(0),
        a_3=torch.from_numpy(mnist.train_images[A_3_INDEX]).float() / 255,
    )


def digit_images_as_listed(images, labels, digit) -> torch.Tensor:
    """All images of one digit in a3's order: the notebook sorts the PNG names as text
    (10.png, 10000.png, 10011.png, ...)."""
    indices = sorted((int(i) for i in (labels == digit).nonzero()[0]), key=lambda i: f"{i}.png")
    return torch.from_numpy(images[indices]).float() / 255


def chapter_tensors(mnist) -> dict:
    """a3's train_x/train_y/valid_x/valid_y (threes labelled 1, sevens 0), in its order."""
    threes = digit_images_as_listed(mnist.train_images, mnist.train_labels, 3)
    sevens = digit_images_as_listed(mnist.train_images, mnist.train_labels, 7)
    valid_3 = digit_images_as_listed(mnist.test_images, mnist.test_labels, 3)
    valid_7 = digit_images_as_listed(mnist.test_images, mnist.test_labels, 7)
    return dict(
        train_x=torch.cat([threes, sevens]).view(-1, 28 * 28),
        train_y=torch.tensor([1] * len(threes) + [0] * len(sevens)).unsqueeze(1),
        valid_x=torch.cat([valid_3, valid_7]).view(-1, 28 * 28),
        valid_y=torch.tensor([1] * len(valid_3) + [0] * len(valid_7)).unsqueeze(1),
    )


def batches(x, y, batch_size):
    """(xb, yb) pairs in order, like an unshuffled DataLoader over zip(x, y)."""
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
