"""Probes that call a student's function in ways one ``student.call`` cannot: twice with the same
tensors, on a tensor that tracks gradients, under a seed, or on an object only the sandbox can
make (a torch.Size, a lambda, a fastai collection).

Why here: these are the programs a1's and a2's hidden checks send into the sandbox (``probes``:
their source text is what is sent). What they bring back is plain data the grader compares
with the reference computed on its side: "changes nothing in place" is decided from what a
second call returns, never from what the sandbox reports about the tensors.

Kit code only (the trust rule): nothing here comes from ``solutions/``. Where a check names
the function or collection it uses (``"lambda t: (t**2).sum()"``, ``"range(20)"``), that
expression is a plain input, evaluated in the sandbox with ``torch`` at hand.
"""
from __future__ import annotations


def kept(v):
    """A detached copy of ``v`` (tensors, and lists or tuples of them), out of reach of later
    calls that could change it in place."""
    import torch
    if isinstance(v, torch.Tensor):
        return v.detach().clone()
    return [kept(x) for x in v] if isinstance(v, (list, tuple)) else v


def kept_tensor(v):
    """A detached copy of ``v`` if it is a tensor, else ``v`` itself."""
    import torch
    return v.detach().clone() if isinstance(v, torch.Tensor) else v


# ------------------------------------------------------------------------- a1: rank_from_shape
def rank_of_a_tensor_shape(shape):
    """``rank_from_shape`` of a real ``torch.Size`` (a zero tensor's ``.shape``)."""
    import torch
    return rank_from_shape(torch.zeros(*shape).shape)  # noqa: F821 (the student's, in the sandbox)


# ----------------------------------------------------------------------------- a2: gradient_at
def gradient_of(f_src, x):
    """``gradient_at(f, x)`` of the function the expression ``f_src`` makes, on a copy of ``x``."""
    import torch
    f = eval(f_src, {"torch": torch})
    return gradient_at(f, x.clone())  # noqa: F821


def gradient_three_times(x):
    """``gradient_at`` twice on the same ``x``, then on ``x * 2``: piled-up gradients change the
    second answer; an ``x`` left requiring gradients changes the third."""
    f = lambda t: (t**2 + 3*t).sum()  # noqa: E731
    x = x.clone()
    first = kept_tensor(gradient_at(f, x))  # noqa: F821
    second = kept_tensor(gradient_at(f, x))  # noqa: F821
    third = kept_tensor(gradient_at(f, x * 2))  # noqa: F821
    return [first, second, third]


# -------------------------------------------------------------------------------- a2: sgd_step
def sgd_step_again_and_shared(params, grads, twice, g1, g2, lr):
    """``sgd_step`` twice with the same lists, then on a list holding one tensor twice."""
    ps = [p.clone() for p in params]
    gs = [g.clone() for g in grads]
    first = kept(sgd_step(ps, gs, lr))  # noqa: F821
    second = kept(sgd_step(ps, gs, lr))  # noqa: F821
    w = twice.clone()
    shared = kept(sgd_step([w, w], [g1.clone(), g2.clone()], lr))  # noqa: F821
    return [first, second, shared]


def sgd_step_on_grad_tracking(params, grads, lr):
    """``sgd_step`` on copies of ``params`` that require gradients (answers detached)."""
    import torch
    ps = [p.clone().requires_grad_() for p in params]
    out = sgd_step(ps, grads, lr)  # noqa: F821
    return [q.detach() if isinstance(q, torch.Tensor) else q for q in out] \
        if isinstance(out, (list, tuple)) else out


# ------------------------------------------------------------------------- a2: train_quadratic
def train_quadratic_twice(t, y, init):
    """``train_quadratic`` twice from the same ``params`` tensor (3 steps, lr=0.05)."""
    p = init.clone()
    first = kept(train_quadratic(t, y, p, 0.05, 3))  # noqa: F821
    second = kept(train_quadratic(t, y, p, 0.05, 3))  # noqa: F821
    return [first, second]


# ------------------------------------------------------------------------------ a2: batches_of
def batches_of_seeded(coll_src, bs, shuffle, seed):
    """``batches_of(coll, bs, shuffle)`` of the collection the expression ``coll_src`` makes
    (evaluated among the notebook's names), with Python's and torch's generators seeded."""
    import random
    import torch
    random.seed(seed)
    torch.manual_seed(seed)
    coll = eval(coll_src)
    return batches_of(coll, bs, shuffle)  # noqa: F821
