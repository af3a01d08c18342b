"""Reference solutions for a1_pixel_similarity (notebook `pixel_similarity`).

Every auto-graded exercise of the notebook is defined here under its exercise id; the source
notebook's solution blocks behave the same (the hidden autograder gives it full marks).
The chapter: https://github.com/fastai/fastbook/blob/master/04_mnist_basics.ipynb

``chapter_data`` rebuilds the chapter's tensors from ``mnistkit.data.load_mnist()`` without
reading PNG files: the PNG folders name every image by its MNIST index, so the same images,
the same means and the same accuracies come out.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

# --- Questionnaire 1: how an image is stored --------------------------------------------------


def pixel_layout(img):
    """(height, width, channels) of an image tensor made with ``tensor(Image.open(...))``:
    greyscale images are (height, width), colour images are (height, width, 3)."""
    if img.ndim == 2:
        height, width = img.shape
        return (int(height), int(width), 1)
    height, width, channels = img.shape
    return (int(height), int(width), int(channels))


# --- Questionnaire 2: the dataset's folders ---------------------------------------------------


def count_images(folder):
    """{label folder name: number of files in it} for every sub-folder of ``folder``."""
    folder = Path(folder)
    return {sub.name: len(os.listdir(sub)) for sub in folder.iterdir() if sub.is_dir()}


# --- Questionnaire 4: list comprehension ------------------------------------------------------


def odd_doubled(xs):
    return [x * 2 for x in xs if x % 2 == 1]


# --- Questionnaire 5: a rank-3 tensor ---------------------------------------------------------


def stack_images(images):
    """A list of (h, w) uint8 image tensors -> one float (n, h, w) tensor with pixels in 0..1."""
    return torch.stack(images).float() / 255


# --- Questionnaire 6: rank vs shape -----------------------------------------------------------


def rank_from_shape(shape):
    return len(shape)


# --- Questionnaire 7: L1 norm and RMSE --------------------------------------------------------


def l1_distance(a, b):
    return (a - b).abs().mean()


def rmse_distance(a, b):
    return ((a - b) ** 2).mean().sqrt()


# --- Questionnaire 9: tensor indexing ---------------------------------------------------------


def doubled_corner(n, k=2):
    """Numbers 1..n*n in an n x n tensor (row by row), doubled; the bottom-right k x k block."""
    grid = torch.arange(1, n * n + 1).view(n, n) * 2
    return grid[n - k:, n - k:]


# --- Questionnaire 10 and 3: broadcasting, the pixel-similarity classifier --------------------


def mnist_distance(a, b):
    return (a - b).abs().mean((-1, -2))


def is_3(x, mean3, mean7):
    return mnist_distance(x, mean3) < mnist_distance(x, mean7)


def baseline_accuracy(threes, sevens, mean3, mean7):
    """(accuracy on the threes, accuracy on the sevens, the average of the two)."""
    accuracy_3s = is_3(threes, mean3, mean7).float().mean()
    accuracy_7s = (1 - is_3(sevens, mean3, mean7).float()).mean()
    return accuracy_3s, accuracy_7s, (accuracy_3s + accuracy_7s) / 2


# --- Questionnaire 11: multiple choice --------------------------------------------------------

validation_metrics_choice = "b"


# --- The chapter's data, from the shipped MNIST file ------------------------------------------

A_3_INDEX = 10000  # the chapter's `threes[1]`: the 2nd name of train/3 sorted as text, 10000.png


def digit_images(images, labels, digit) -> torch.Tensor:
    """All images of one digit as a float (n, 28, 28) tensor in 0..1 (MNIST order)."""
    return torch.from_numpy(images[labels == digit]).float() / 255


def chapter_data(mnist) -> dict:
    """The chapter's tensors: training and validation 3s and 7s, the two means and `a_3`."""
    threes = digit_images(mnist.train_images, mnist.train_labels, 3)
    sevens = digit_images(mnist.train_images, mnist.train_labels, 7)
    return dict(
        threes=threes, sevens=sevens,
        valid_threes=digit_images(mnist.test_images, mnist.test_labels, 3),
        valid_sevens=digit_images(mnist.test_images, mnist.test_labels, 7),
        mean3=threes.mean(0), mean7=sevens.mean(0),
        a_3=torch.from_numpy(mnist.train_images[A_3_INDEX]).float() / 255,
    )
