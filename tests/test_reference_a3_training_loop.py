"""Checking the reference solutions of a3_training_loop against the chapter's printed numbers.

No notebook runs here: the reference functions get the chapter's images straight from the
shipped MNIST file (``mnistkit.data.load_mnist``), in the notebook's order, and the globals the
chapter's functions read (`weights`, `dl`, `valid_dl`, ...) are supplied with
``ref.with_globals``.
"""
import functools

import pytest
import torch
from torch import nn

from mnistkit.data import load_mnist
from solutions import a3_training_loop as ref


@functools.lru_cache(maxsize=None)
def data():
    return ref.chapter_tensors(load_mnist())


@functools.lru_cache(maxsize=None)
def loaders():
    d = data()
    return ref.batches(d["train_x"], d["train_y"], 256), ref.batches(d["valid_x"], d["valid_y"], 256)


def validate(model):
    return ref.with_globals(ref.validate_epoch, valid_dl=loaders()[1])(model)


def test_training_set_shapes():
    """Does the reference build the chapter's training set: 12396 x 784 images, 12396 x 1 labels?"""
    d = data()
    assert d["train_x"].shape == (12396, 784) and d["train_y"].shape == (12396, 1)
    assert d["train_y"][:6131].eq(1).all() and d["train_y"][6131:].eq(0).all(), "3s are 1, 7s are 0"


def test_flatten_images_is_the_chapters_view():
    """Does `flatten_images` give the chapter's `view(-1, 28*28)`, sharing memory?"""
    images = torch.rand(5, 28, 28)
    flat = ref.flatten_images(images)
    assert torch.equal(flat, images.view(-1, 28 * 28))
    assert flat.untyped_storage().data_ptr() == images.untyped_storage().data_ptr()


def test_first_item_of_the_dataset():
    """Is the dataset's first item a 784-pixel image with label tensor([1]), as the chapter prints?"""
    d = data()
    x, y = ref.zip_pairs(d["train_x"], d["train_y"])[0]
    assert x.shape == (784,) and torch.equal(y, torch.tensor([1]))
    assert ref.zip_pairs([1, 2, 3, 4], "abcd") == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


def test_dataloader_batch_shapes():
    """Does a fastai DataLoader with batch size 256 give the chapter's [256, 784] and [256, 1]?"""
    from fastai.data.load import DataLoader
    d = data()
    xb, yb = next(iter(DataLoader(ref.zip_pairs(d["train_x"], d["train_y"]), batch_size=256)))
    assert xb.shape == (256, 784) and yb.shape == (256, 1)


def test_validation_set_size():
    """Is the validation set the chapter's 2038 images (1010 threes, then 1028 sevens)?"""
    d = data()
    assert d["valid_x"].shape == (2038, 784)
    assert int(d["valid_y"].sum()) == 1010


def test_init_params_shape_and_spread():
    """Does `init_params` give a leaf tensor of the asked shape that tracks gradients, spread by std?"""
    torch.manual_seed(0)
    p = ref.init_params((28 * 28, 1))
    assert p.shape == (784, 1) and p.requires_grad and p.is_leaf
    assert abs(ref.init_params(100_000, std=0.3).std().item() - 0.3) < 0.01


def test_linear1_matches_the_one_image_calculation():
    """Is linear1's first prediction the chapter's one-image `(train_x[0]*weights.T).sum() + bias`?"""
    torch.manual_seed(42)
    w, b = ref.init_params((28 * 28, 1)), ref.init_params(1)
    batch = data()["train_x"][:4]
    preds = ref.with_globals(ref.linear1, weights=w, bias=b)(batch)
    assert preds.shape == (4, 1)
    assert torch.allclose(preds[0], (batch[0] * w.T).sum() + b, atol=1e-4)
    assert torch.allclose(ref.with_globals(ref.linear1, weights=w, bias=b)(torch.zeros(1, 784)), b)


def test_calc_grad_accumulates_like_the_chapter():
    """Do repeated backward passes add up (1x, 2x, 3x the gradient), as the chapter shows?"""
    torch.manual_seed(42)
    w, b = ref.init_params((28 * 28, 1)), ref.init_params(1)
    linear1 = ref.with_globals(ref.linear1, weights=w, bias=b)
    batch, labels = data()["train_x"][:4], data()["train_y"][:4]
    ref.mnist_loss(linear1(batch), labels).backward()
    first = w.grad.clone(), b.grad.clone()
    for times in (2, 3):
        ref.calc_grad(batch, labels, linear1)
        assert torch.allclose(w.grad, times * first[0]) and torch.allclose(b.grad, times * first[1])


def test_batch_accuracy_agrees_with_the_sign_of_the_score():
    """Does batch_accuracy call a score a 3 exactly when it is above 0 (sigmoid above 0.5)?"""
    scores = torch.tensor([[2.0], [-1.0], [0.3], [-0.2]])
    labels = torch.tensor([[1], [0], [0], [0]])
    assert ref.batch_accuracy(scores, labels).item() == pytest.approx(0.75)
    assert ref.batch_accuracy(scores, ((scores > 0).long())).item() == 1.0


def test_always_three_scores_04932():
    """Does a model that always says 3 get the 0.4932 the chapter prints after one epoch?"""
    assert validate(lambda xb: torch.ones(len(xb), 1)) == 0.4932


def test_one_epoch_of_basic_optim_gives_04932():
    """Does nn.Linear trained for one epoch at lr=1 with BasicOptim score the chapter's 0.4932?"""
    train_dl, _ = loaders()
    torch.manual_seed(42)
    model = nn.Linear(28 * 28, 1)
    opt = ref.BasicOptim(model.parameters(), 1.0)
    for xb, yb in train_dl:
        ref.calc_grad(xb, yb, model)
        opt.step()
        opt.zero_grad()
    assert validate(model) == 0.4932


def test_training_the_linear_model_reaches_the_chapters_accuracy():
    """Does the reference training loop take the linear model above 95% in 11 epochs (chapter: ~97% in 21)?"""
    train_dl, _ = loaders()
    torch.manual_seed(42)
    w, b = ref.init_params((28 * 28, 1)), ref.init_params(1)
    linear1 = ref.with_globals(ref.linear1, weights=w, bias=b)
    train_epoch = ref.with_globals(ref.train_epoch, dl=train_dl)
    before = validate(linear1)
    for _ in range(11):
        train_epoch(linear1, 1.0, (w, b))
    after = validate(linear1)
    assert after > 0.95 and after > before
    assert w.grad is not None and bool((w.grad == 0).all()), "train_epoch leaves gradients zeroed"


def test_simple_net_and_its_relu():
    """Does simple_net give one score per image, with ReLU zeroing negative hidden values?"""
    torch.manual_seed(0)
    params = dict(w1=ref.init_params((784, 30)), b1=ref.init_params(30),
                  w2=ref.init_params((30, 1)), b2=ref.init_params(1))
    net = ref.with_globals(ref.simple_net, **params)
    batch = data()["train_x"][:4]
    assert net(batch).shape == (4, 1)
    assert torch.allclose(net(batch), torch.relu(batch @ params["w1"] + params["b1"]) @ params["w2"]
                          + params["b2"])
    assert torch.equal(ref.relu(torch.tensor([-2.0, 0.0, 1.5])), torch.tensor([0.0, 0.0, 1.5]))
    x = torch.randn(3, 5)
    assert isinstance(ref.relu_module(), nn.Module) and torch.equal(ref.relu_module()(x), torch.relu(x))


def test_no_bias_quiz_answers():
    """Is a bias-free model's score for a blank image 0 whatever the weights (so a bias is needed)?"""
    w = torch.randn(784, 1)
    assert (torch.zeros(1, 784) @ w).item() == ref.no_bias_output
    assert ref.bias_needed_for_blank is True
