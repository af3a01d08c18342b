"""Probes that build models in the sandbox from plain data, or describe the student's models as
plain data.

Why here: a model cannot cross between sandbox and grader, only its description, its weights
or its outputs can. These are the programs a hidden check sends (``probes``: their source text
is what is sent) to build a model from a plain description (a3's ``count_parameters``), to fill
a model with the grader's weights so that equal outputs mean the same architecture (a3's
``resnet_learner``), to put the student's ``relu_module`` inside a network, to describe the
student's ``make_model()`` as plain data and train it (a4's ``train_digits``), and to ask
``pick_device`` with and without a GPU. The functions that also run in the grader
(``fill_weights``, ``build_from_spec``) are the same code on both sides.

Kit code only (the trust rule): nothing here comes from ``solutions/``.
"""
from __future__ import annotations

from mnistkit.grading import probes


# --------------------------------------------------------------------- a3: the grader's weights
def fill_weights(model, seed):
    """``model`` with every floating-point tensor of its state filled from a generator seeded
    with ``seed`` (in the sandbox and in the grader alike), in evaluation mode."""
    import torch
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                u = torch.rand(t.shape, generator=g, dtype=t.dtype)
                scale = (3.0 / t[0].numel()) ** 0.5 if t.dim() >= 2 else None
                t.copy_((u * 2 - 1) * scale if scale else u + 0.5)
    return model.eval()


# ------------------------------------------------------------------------ a3: resnet_learner
def resnet_learner_for(images, labels, n_classes):
    """``resnet_learner(dls)`` for DataLoaders of (image, label) pairs whose dataset names a
    loss of the grader's own: a Learner built without a loss function takes its dataset's, so
    leaving out loss_func shows."""
    from fastai.data import core, load

    class Items(list):
        @staticmethod
        def loss_func(out, targ):
            return (out.float().mean() - targ.float().mean()) ** 2 + 42.0

    pairs = list(zip(images, labels))
    dls = core.DataLoaders(load.DataLoader(Items(pairs), bs=4), load.DataLoader(Items(pairs), bs=4))
    dls.c = n_classes
    return resnet_learner(dls)  # noqa: F821 (the student's, in the sandbox)


def resnet_scores(images, labels, n_classes, seed, x):
    """The Learner's model, filled with the grader's weights (``fill_weights``), on ``x``."""
    import torch
    model = fill_weights(resnet_learner_for(images, labels, n_classes).model, seed)
    with torch.no_grad():
        return torch.Tensor.as_subclass(model(x.to(next(model.parameters()).device)),
                                        torch.Tensor).cpu()


def resnet_loss(images, labels, n_classes, out, targ):
    """The Learner's loss function on the scores ``out`` and targets ``targ``."""
    return resnet_learner_for(images, labels, n_classes).loss_func(out, targ)


def resnet_metric_values(images, labels, n_classes, out, targ):
    """Each of the Learner's metrics, accumulated on the scores ``out`` and targets ``targ``."""
    learn = resnet_learner_for(images, labels, n_classes)
    learn.pred, learn.yb = out, (targ,)
    values = []
    for metric in learn.metrics:
        metric.reset()
        metric.accumulate(learn)
        values.append(float(metric.value))
    return values


# ------------------------------------------------------------------------- a3: relu_module
def relu_module_on(x):
    """``relu_module()`` applied to ``x``."""
    return relu_module()(x)  # noqa: F821


def relu_module_in_sequential(w1, b1, w2, b2, x):
    """``nn.Sequential(nn.Linear(4, 3), relu_module(), nn.Linear(3, 1))`` with the given
    weights, on ``x``."""
    import torch
    nn = torch.nn
    seq = nn.Sequential(nn.Linear(4, 3), relu_module(), nn.Linear(3, 1))  # noqa: F821
    with torch.no_grad():
        seq[0].weight.copy_(w1)
        seq[0].bias.copy_(b1)
        seq[2].weight.copy_(w2)
        seq[2].bias.copy_(b2)
        return seq(x)


# ------------------------------------------------- a3: count_parameters, count_weight_layers
def build_from_spec(spec):
    """An nn.Sequential from a plain description (``seeded.random_spec``): a list of
    ``[layer class name, args, kwargs]``, ``["Sequential", [children], {}]`` for a block."""
    import torch
    layers = []
    for kind, args, kwargs in spec:
        if kind == "Sequential":
            layers.append(build_from_spec(args))
        else:
            layers.append(getattr(torch.nn, kind)(*args, **kwargs))
    return torch.nn.Sequential(*layers)


def count_parameters_of(spec):
    """``count_parameters`` of the model described by ``spec``."""
    return count_parameters(build_from_spec(spec))  # noqa: F821


def count_weight_layers_of(spec):
    """``count_weight_layers`` of the model described by ``spec``."""
    return count_weight_layers(build_from_spec(spec))  # noqa: F821


# ---------------------------------------------------------------------- a4: train_digits
def describe(m, layer_args, depth=0):
    """A module as plain data: ``[class name, [children]]`` for nn.Sequential, else
    ``[class name, {argument: value}]`` with the arguments ``layer_args`` names for its class
    (``bias``: whether there is one); a class outside torch.nn by its full name."""
    from torch import nn
    t = type(m)
    name = t.__name__ if t.__module__.startswith("torch.nn.modules.") else f"{t.__module__}.{t.__qualname__}"
    if t is nn.Sequential and depth < 8:
        return [name, [describe(c, layer_args, depth + 1) for c in m]]
    args = {}
    for a in layer_args.get(name, []):
        v = getattr(m, a, None)
        args[a] = (v is not None) if a == "bias" else (list(v) if isinstance(v, tuple) else v)
    return [name, args]


def model_described(layer_args):
    """``make_model()`` (torch seeded with 0) as plain data."""
    import torch
    torch.manual_seed(0)
    return describe(make_model(), layer_args)  # noqa: F821


def train_and_predict(layer_args, seed, state, train_images, train_labels, probe_images):
    """A fresh ``make_model()`` loaded with the grader's untrained weights ``state``, trained by
    ``train_digits`` on the images (uint8, scaled here to 0..1) and labels: its description
    before and after, its trained weights, and ``predict_digits`` on ``probe_images``."""
    import torch
    torch.manual_seed(seed)
    model = make_model()  # noqa: F821
    before = describe(model, layer_args)
    model.load_state_dict({k: torch.as_tensor(v).clone() for k, v in state.items()})
    train_digits(model, torch.from_numpy(train_images).float().div_(255).unsqueeze(1),  # noqa: F821
                 torch.from_numpy(train_labels).long())
    after = describe(model, layer_args)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    preds = predict_digits(model, torch.from_numpy(probe_images).float().div_(255).unsqueeze(1))  # noqa: F821
    return dict(before=before, after=after, state=weights, preds=torch.as_tensor(preds).detach().cpu())


# ------------------------------------------------------------------------ a4: pick_device
def device_picked(gpu):
    """The device type ``pick_device()`` gives while ``torch.cuda.is_available()`` says ``gpu``."""
    import torch
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: gpu
    try:
        return str(torch.device(pick_device()).type)  # noqa: F821
    finally:
        torch.cuda.is_available = real


# The text of ``fill_weights`` as the name ``_fill`` (tests/test_reference_a3_training_loop.py
# fills fastai's own model with it, to compare with the grader's torch-only reference).
FILL_WEIGHTS = probes.source(fill_weights) + "\n_fill = fill_weights\n"
