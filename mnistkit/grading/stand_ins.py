"""The grader's own functions that stand in for a dependency while it checks another exercise.

Why: an exercise that uses another (a2's ``descent_path`` uses ``gradient_at`` and
``sgd_step``, a3's ``train_epoch`` uses ``calc_grad``) must not lose points twice for one bug,
and the reference must not be sent into the sandbox (the trust rule). So for the length of one
probe the dependency is replaced by one of these (``isolation.Neutral.of(name, function)``: the
function's source, renamed ``name``, is what is sent), and the grader computes the expected
result with the reference rebound to the same stand-in (``Neutral.rebind``).

Each is kit code and *not* the answer to any exercise: another loss, another gradient helper,
another metric, a coarse or partial step. Not even a line may look like the reference's (the
wire audit, tests/test_grade_assignments.py, looks for the reference's lines of 30 characters or
more): hence the signatures split over two lines where the renamed line would be one of them.
"""
from __future__ import annotations


# -------------------------------------------------------------------------------------- a2
def kit_gradient_at(f, x):
    """The grader's stand-in while it checks another exercise: forward differences with a
    coarse step of 1/8 (no autograd, and not exact: not an answer to gradient_at)."""
    import torch
    start = torch.as_tensor(x).detach().to(torch.float32)
    here = f(start).detach()
    slopes = torch.zeros(start.numel())
    for i in range(start.numel()):
        moved = start.clone().reshape(-1)
        moved[i] = moved[i] + 0.125
        slopes[i] = (f(moved.reshape(start.shape)).detach() - here) / 0.125
    return slopes.reshape(start.shape)


def kit_sgd_step(
        params, grads, lr):
    """The grader's stand-in while it checks another exercise: three quarters of a step
    (not an answer to sgd_step)."""
    return [q - 0.75 * lr * d for q, d in zip(params, grads)]


def kit_fourth_power_loss(
        inputs, targets):
    """The grader's stand-in while it checks another exercise: the mean fourth power of the
    distance from the targets (a different loss, not an answer to mnist_loss)."""
    return ((inputs - targets) ** 4).mean()


# -------------------------------------------------------------------------------------- a3
def kit_loss(scores, targets):
    """A loss of the grader's own, standing in for the notebook's."""
    gap = scores.tanh() - (targets * 1.5 - 0.5)
    return gap.cosh().log().mean() * 3 + scores.mean() / 10


def kit_calc_grad(inputs, targets, model):
    """The grader's own gradient helper: another loss, its gradients added to .grad."""
    gap = model(inputs).tanh() - (targets * 1.5 - 0.5)
    (gap.cosh().log().mean() * 3).backward()


def kit_metric(scores, targets):
    """A metric of the grader's own, standing in for batch_accuracy (not an accuracy)."""
    return ((scores.tanh() + 1) * (targets * 2 - 1)).mean()
