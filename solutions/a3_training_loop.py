"""Reference solutions for a3_training_loop (notebook `training_loop`): fastbook chapter 4 from
"Putting it all together" to the end of "Adding a non-linearity". Names are exercise ids.
The chapter: https://github.com/fastai/fastbook/blob/master/04_mnist_basics.ipynb

Like the chapter, some functions read notebook globals: ``linear1`` reads ``weights`` and
``bias``, ``simple_net`` reads ``w1, b1, w2, b2``, ``train_epoch`` loops over ``dl`` and
``validate_epoch`` over ``valid_dl``. ``with_globals`` gives a copy of such a function that
sees other values for those names (the hidden autograder gives student functions its own
values for them through ``mnistkit.grading.isolation``; no reference code enters the sandbox).
fastai and torchvision are imported lazily (only ``make_learner``, ``image_dls``,
``resnet_learner`` and ``resnet_model`` need them) to keep this module quick to import.
"""
from __future__ import annotations

import types

import torch
from torch import nn
import torch.nn.functional as F

# Module-level stand-ins for the notebook's globals; use ``with_globals`` to supply real ones.
weights = bias = w1 = b1 = w2 = b2 = None
dl = valid_dl = ()


def with_globals(fn, **names):
    """A copy of function ``fn`` whose global names include ``names`` (``fn`` is unchanged)."""
    scope = dict(fn.__globals__)
    scope.update(names)
    copy = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


# --- Given code in the notebook ---------------------------------------------------------------
def mnist_loss(predictions, targets):
    """The chapter's loss: sigmoid squashes each score into (0, 1), then the distance from the
    target (1 for a three, 0 for a seven) is averaged."""
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


# --- Q27: view ---------------------------------------------------------------------------------
def flatten_images(images):
    """A stack of n images (n, h, w) as an (n, h*w) matrix that shares the images' storage."""
    return images.view(-1, images.shape[-2] * images.shape[-1])


# --- Q26: zip ------------------------------------------------------------------------------------
def zip_pairs(a, b):
    """[(a[0], b[0]), (a[1], b[1]), ...], as long as the shorter input (like zip)."""
    return list(zip(a, b))


# --- Q15: initialising parameters ----------------------------------------------------------------
def init_params(size, std=1.0):
    """Normally distributed random numbers (mean 0, standard deviation ``std``) that track
    gradients: a leaf tensor with requires_grad=True."""
    return (torch.randn(size) * std).requires_grad_()


# --- Q28: what a model without a bias does on a blank image --------------------------------------
no_bias_output = 0.0             # xb@weights for an all-zero image, whatever the weights
bias_needed_for_blank = True     # only a bias lets the output for a blank image differ from 0


# --- Q29: a linear model with @ --------------------------------------------------------------------
def linear1(xb):
    return xb @ weights + bias


# --- Q30: backward ----------------------------------------------------------------------------------
def calc_grad(xb, yb, model):
    """Add the gradients of the loss on (xb, yb) to the parameters' .grad."""
    preds = model(xb)
    loss = mnist_loss(preds, yb)
    loss.backward()


# --- Q25, Q31, Q33: one epoch of SGD ----------------------------------------------------------------
def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad * lr
            p.grad.zero_()


# --- Metrics -------------------------------------------------------------------------------------------
def batch_accuracy(xb, yb):
    preds = xb.sigmoid()
    correct = (preds > 0.5) == yb
    return correct.float().mean()


def validate_epoch(model):
    accs = [batch_accuracy(model(xb), yb) for xb, yb in valid_dl]
    return round(torch.stack(accs).mean().item(), 4)


# --- An optimizer -------------------------------------------------------------------------------------
class BasicOptim:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self, *args, **kwargs):
        for p in self.params:
            p.data -= p.grad.data * self.lr

    def zero_grad(self, *args, **kwargs):
        for p in self.params:
            p.grad = None


# --- Q32: what a Learner needs --------------------------------------------------------------------------
def make_learner(dls):
    from fastai.learner import Learner
    from fastai.optimizer import SGD
    return Learner(dls, nn.Linear(28 * 28, 1), opt_func=SGD, loss_func=mnist_loss,
                   metrics=batch_accuracy)


# --- Adding a non-linearity ---------------------------------------------------------------------------
def simple_net(xb):
    res = xb @ w1 + b1
    res = res.max(torch.tensor(0.0))
    res = res @ w2 + b2
    return res


# --- Q34: ReLU -----------------------------------------------------------------------------------------------
def relu(x):
    return x.max(torch.tensor(0.0))


# --- Q36: F.relu vs nn.ReLU ---------------------------------------------------------------------------------
def relu_module():
    return nn.ReLU()


# --- Q35: why an activation function goes between linear layers ----------------------------------
def collapse_linear(w1, b1, w2, b2):
    """The one linear layer (w, b) that two linear layers with nothing between them equal:
    (x@w1 + b1)@w2 + b2 == x@(w1@w2) + (b1@w2 + b2)."""
    return w1 @ w2, b1 @ w2 + b2


# --- Q37: why deeper models (the chapter's answer, as claims to mark True or False) -------------
deeper_claims = {
    "one_nonlinearity_can_approximate_any_function": True,
    "stacked_linear_layers_without_activations_add_power": False,
    "more_smaller_layers_beat_fewer_larger_ones_in_practice": True,
    "deeper_models_are_easier_to_optimise": False,
}


# --- Going deeper: fastai's ResNet-18 -----------------------------------------------------------
def image_dls(path, bs=64):
    from fastai.vision.data import ImageDataLoaders
    return ImageDataLoaders.from_folder(path, train="train", valid="valid", bs=bs)


def resnet_learner(dls):
    from fastai.metrics import accuracy
    from fastai.vision.learner import vision_learner
    from torchvision.models import resnet18
    return vision_learner(dls, resnet18, pretrained=False, loss_func=F.cross_entropy,
                          metrics=accuracy)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def count_weight_layers(model):
    return sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model.modules())


class ConcatPool(nn.Module):
    """fastai's AdaptiveConcatPool2d: max pooling and average pooling side by side."""

    def forward(self, x):
        return torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], 1)


def resnet_model(n_out):
    """The model ``resnet_learner`` builds, with torch and torchvision only: the ResNet-18 body
    (torchvision's network without its pooling and last layer) and fastai's default head. The
    hidden grader compares students' models with this one, so that grading imports no fastai
    (8-9 CPU-s a notebook); tests/test_reference_a3_training_loop.py checks that it computes
    what fastai's ``vision_learner`` model computes, weight for weight."""
    from torchvision.models import resnet18
    body = nn.Sequential(*list(resnet18(weights=None).children())[:-2])
    head = nn.Sequential(ConcatPool(), nn.Flatten(),
                         nn.BatchNorm1d(1024), nn.Dropout(0.25), nn.Linear(1024, 512, bias=False),
                         nn.ReLU(inplace=True),
                         nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, n_out, bias=False))
    return nn.Sequential(body, head)


# --- Helpers for the kit's own tests (not exercises) ------------------------------------------------------
def digit_images(images, labels, digit) -> torch.Tensor:
    """All MNIST images of one digit as a float (n, 28, 28) tensor in 0..1, in the notebook's
    order: the PNG folders name each image by its MNIST index and the notebook sorts the file
    names as text (10.png, 10000.png, 10011.png, ...)."""
    indices = sorted((int(i) for i in (labels == digit).nonzero()[0]), key=lambda i: f"{i}.png")
    return torch.from_numpy(images[indices]).float() / 255


def chapter_tensors(mnist) -> dict:
    """The notebook's train_x/train_y/valid_x/valid_y (threes labelled 1, sevens 0) from
    ``mnistkit.data.load_mnist()``: the same images as the PNG folders, in the same order."""
    threes = digit_images(mnist.train_images, mnist.train_labels, 3)
    sevens = digit_images(mnist.train_images, mnist.train_labels, 7)
    valid_3 = digit_images(mnist.test_images, mnist.test_labels, 3)
    valid_7 = digit_images(mnist.test_images, mnist.test_labels, 7)
    return dict(
        train_x=torch.cat([threes, sevens]).view(-1, 28 * 28),
        train_y=torch.tensor([1] * len(threes) + [0] * len(sevens)).unsqueeze(1),
        valid_x=torch.cat([valid_3, valid_7]).view(-1, 28 * 28),
        valid_y=torch.tensor([1] * len(valid_3) + [0] * len(valid_7)).unsqueeze(1),
    )


def batches(x, y, batch_size):
    """(xb, yb) pairs in order, like an unshuffled DataLoader over zip(x, y)."""
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
