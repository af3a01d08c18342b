"""Reference solutions for a2_gradient_descent (fastbook chapter 4, from "Stochastic Gradient
Descent" to "Stochastic gradient descent and mini-batches"). Names are exercise ids.

The source notebook's solution blocks behave the same way; the hidden autograder
(autograder/test_a2_gradient_descent.py) compares student answers with these on fresh inputs,
in the grader only: nothing of this module is sent into the student's sandbox.
fastai is imported lazily (only ``batches_of`` needs it) to keep this module quick to import.
"""
from __future__ import annotations

import torch

# --- Q14: the seven steps, in order --------------------------------------------------------
# The notebook hands students these names shuffled; the answer is their order.
STEP_NAMES = ["gradient", "stop", "predict", "init", "repeat", "loss", "step"]
seven_steps = ["init", "predict", "loss", "gradient", "step", "repeat", "stop"]


# --- Q18/Q19: gradients with autograd ------------------------------------------------------
def gradient_at(f, x):
    """The gradient of ``f`` (a tensor -> scalar tensor function) at ``x``, via ``backward``.
    Works on a copy: the caller's ``x`` is left alone and calls never accumulate."""
    xt = torch.as_tensor(x).detach().clone().float().requires_grad_()
    f(xt).backward()
    return xt.grad


# --- Q23: one optimizer step -----------------------------------------------------------------
def sgd_step(params, grads, lr):
    """New parameters ``p - lr * g`` for each pair; returns a new list, changes nothing."""
    return [p - lr * g for p, g in zip(params, grads)]


# --- Q17: learning rates on f(x) = x**2 ------------------------------------------------------
def descent_path(x0, lr, n_steps):
    """Positions of gradient descent on x**2 from x0: a tensor of n_steps + 1 floats, x0 first."""
    x = torch.tensor(float(x0))
    path = [x]
    for _ in range(n_steps):
        g = gradient_at(lambda t: t ** 2, x)
        (x,) = sgd_step([x], [g], lr)
        path.append(x)
    return torch.stack(path)


# --- Q12: the seven steps end to end, fitting a quadratic ------------------------------------
def quad(t, params):
    """a*t**2 + b*t + c for params = (a, b, c). Given code in the notebook."""
    a, b, c = params
    return a * t ** 2 + b * t + c


def mse(preds, targets):
    """Mean squared error. Given code in the notebook."""
    return ((preds - targets) ** 2).mean()


def train_quadratic(t, y, params, lr, n_steps):
    """Fit quad(t, params) to y by gradient descent, starting from a copy of ``params``.
    Returns (final params as a tensor of 3 floats, list of the n_steps losses, each computed
    with the parameters used for that step's prediction, i.e. before the step)."""
    p = torch.as_tensor(params).detach().clone().float().requires_grad_()
    losses = []
    for _ in range(n_steps):
        loss = mse(quad(t, p), y)          # predict, loss
        losses.append(loss.item())
        loss.backward()                    # gradient
        with torch.no_grad():
            p -= lr * p.grad               # step
        p.grad = None                      # zero it, or the next step adds to it
    return p.detach(), losses


# --- the chapter's loss, without and with sigmoid --------------------------------------------
def mnist_loss(inputs, targets):
    """How far each prediction (a number in [0, 1]) is from its target (1 or 0), averaged."""
    return torch.where(targets == 1, 1 - inputs, inputs).mean()


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def mnist_loss_sigmoid(inputs, targets):
    """mnist_loss on sigmoid(inputs): any real-valued score becomes a number in (0, 1) first."""
    return mnist_loss(sigmoid(inputs), targets)


# --- Q20: accuracy's slope is zero almost everywhere -----------------------------------------
def accuracy(preds, targets):
    return ((preds > 0.5) == (targets == 1)).float().mean()


def accuracy_slope(preds, targets, eps):
    """For each prediction i: (accuracy with preds[i] raised by eps - accuracy) / eps."""
    base = accuracy(preds, targets)
    slopes = torch.zeros(preds.shape)
    flat = slopes.view(-1)
    for i in range(preds.numel()):
        nudged = preds.clone()
        nudged.view(-1)[i] += eps
        flat[i] = (accuracy(nudged, targets) - base) / eps
    return slopes


# --- Q16/Q20/Q22: which of these could train a model by gradient descent? --------------------
usable_as_loss = {
    "accuracy": False,
    "error_rate": False,
    "count_wrong": False,
    "mean_squared_error": True,
    "mean_absolute_error": True,
    "mnist_loss_sigmoid": True,
}


# --- Q13/Q24: mini-batches with fastai's DataLoader ------------------------------------------
def batches_of(collection, batch_size, shuffle=True):
    """Every mini-batch fastai's DataLoader makes from ``collection``, as a list."""
    from fastai.data.load import DataLoader
    return list(DataLoader(collection, batch_size=batch_size, shuffle=shuffle))
