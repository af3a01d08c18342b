"""Checking the reference solutions of a3_training_loop against the chapter's printed numbers.

No notebook runs here: the reference functions get the chapter's images straight from the
shipped MNIST file (``mnistkit.data.load_mnist``), in the notebook's order, and the globals the
chapter's functions read (`weights`, `dl`, `valid_dl`, ...) are supplied with
``with_globals``. The last tests check pieces of the hidden grader that need no notebook run:
its technique rules (read from answer cells' syntax trees) and its stand-in functions.
"""
import functools
import importlib
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from mnistkit.data import load_mnist
from mnistkit.authoring.mutants import mutants as declared_mutants
from mnistkit.grading import chapter_data, resnet_rebuild
from solutions import a3_training_loop as ref


def with_globals(fn, **names):
    """A copy of function ``fn`` whose global names include ``names`` (``fn`` is unchanged):
    references such as ``linear1`` read notebook globals (``weights``, ``bias``)."""
    scope = dict(fn.__globals__)
    scope.update(names)
    copy = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


@functools.lru_cache(maxsize=None)
def data():
    return chapter_data.chapter_tensors(load_mnist())


@functools.lru_cache(maxsize=None)
def loaders():
    d = data()
    return chapter_data.batches(d["train_x"], d["train_y"], 256), chapter_data.batches(d["valid_x"], d["valid_y"], 256)


def validate(model):
    return with_globals(ref.validate_epoch, valid_dl=loaders()[1])(model)


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
    preds = with_globals(ref.linear1, weights=w, bias=b)(batch)
    assert preds.shape == (4, 1)
    assert torch.allclose(preds[0], (batch[0] * w.T).sum() + b, atol=1e-4)
    assert torch.allclose(with_globals(ref.linear1, weights=w, bias=b)(torch.zeros(1, 784)), b)


def test_calc_grad_accumulates_like_the_chapter():
    """Do repeated backward passes add up (1x, 2x, 3x the gradient), as the chapter shows?"""
    torch.manual_seed(42)
    w, b = ref.init_params((28 * 28, 1)), ref.init_params(1)
    linear1 = with_globals(ref.linear1, weights=w, bias=b)
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
    linear1 = with_globals(ref.linear1, weights=w, bias=b)
    train_epoch = with_globals(ref.train_epoch, dl=train_dl)
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
    net = with_globals(ref.simple_net, **params)
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


# --- Going deeper: the ResNet-18 finale --------------------------------------------------------
def test_collapse_linear_is_one_layer_for_two():
    """Is x@w + b from collapse_linear the two linear layers without a ReLU, and not with one?"""
    torch.manual_seed(0)
    w1, b1, w2, b2 = torch.randn(6, 4), torch.randn(4), torch.randn(4, 3), torch.randn(3)
    w, b = ref.collapse_linear(w1, b1, w2, b2)
    x = torch.randn(5, 6)
    assert torch.allclose(x @ w + b, (x @ w1 + b1) @ w2 + b2, atol=1e-5)
    assert not torch.allclose(x @ w + b, torch.relu(x @ w1 + b1) @ w2 + b2, atol=1e-3)


def test_deeper_claims_are_the_chapters():
    """Are the four claims marked as the chapter argues (two true, two false)?"""
    assert sorted(ref.deeper_claims.values()) == [False, False, True, True]
    assert ref.deeper_claims["one_nonlinearity_can_approximate_any_function"] is True
    assert ref.deeper_claims["deeper_models_are_easier_to_optimise"] is False


def test_image_dls_on_mnist_sample(mnist_data_dir):
    """Does image_dls give the chapter's split of mnist_sample (12,396 / 2,038, labels 3 and 7)
    and batches of 3x28x28 images?"""
    dls = ref.image_dls(mnist_data_dir / "mnist_sample", bs=32)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (12396, 2038)
    assert list(dls.vocab) == ["3", "7"]
    xb, yb = dls.valid.one_batch()
    assert xb.shape == (32, 3, 28, 28) and yb.shape == (32,)
    assert torch.equal(xb[:, 0], xb[:, 1]), "a grey digit opened as RGB: three equal channels"


def learner_for(n_classes):
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    pairs = list(zip(torch.rand(8, 3, 32, 32), torch.randint(0, n_classes, (8,))))
    dls = DataLoaders(DataLoader(pairs, bs=4), DataLoader(pairs, bs=4))
    dls.c = n_classes
    return ref.resnet_learner(dls)


@pytest.mark.parametrize("n_classes", [2, 5])
def test_resnet_model_is_what_vision_learner_builds(n_classes):
    """Does the grader's torch-only reference (resnet_rebuild.resnet_model) compute what fastai's
    vision_learner model computes, with the same weights (hidden.FILL_WEIGHTS) in both?"""
    scope = {}
    exec(hidden.FILL_WEIGHTS, scope)
    fastai_model = scope["_fill"](learner_for(n_classes).model, 11)
    grader_model = scope["_fill"](resnet_rebuild.resnet_model(n_classes), 11)
    assert [tuple(t.shape) for t in fastai_model.state_dict().values()] == \
        [tuple(t.shape) for t in grader_model.state_dict().values()]
    x = torch.rand(3, 3, 28, 28)
    with torch.no_grad():
        assert torch.allclose(fastai_model(x), grader_model(x), rtol=1e-5, atol=1e-6)


def test_resnet_learner_sizes_in_the_notebook():
    """Are the notebook's figures right: ResNet-18 with fastai's head 22 weight layers and
    11,704,896 parameters (2 classes), the two-layer net 2 and 23,581, about 500 times fewer?"""
    learn = learner_for(2)
    assert learn.loss_func is torch.nn.functional.cross_entropy and not learn.pretrained
    assert [m.name for m in learn.metrics] == ["accuracy"]
    two_layers = nn.Sequential(nn.Linear(28 * 28, 30), nn.ReLU(), nn.Linear(30, 1))
    resnet_size = ref.count_parameters(learn.model)
    assert (ref.count_weight_layers(learn.model), resnet_size) == (22, 11_704_896)
    assert (ref.count_weight_layers(two_layers), ref.count_parameters(two_layers)) == (2, 23_581)
    assert 450 < resnet_size / 23_581 < 550
    from torchvision.models import resnet18
    # torchvision's own network: 17 convolutions on the main path, 3 on the shortcuts, 1 linear
    assert ref.count_weight_layers(resnet18(weights=None)) == 21

# --- The hidden grader's own pieces (issue 10): its stand-ins and its technique rules ---------
# Imported as a module (its checks are not collected here): the rules are read from the answer
# cells' syntax trees only, so these tests stay fast and run no notebook.
hidden = importlib.import_module("autograder.test_a3_training_loop")

ASSIGNMENT = "a3_training_loop"
RULES = {"flatten_images": hidden.view_problems, "init_params": hidden.leaf_problems,
         "linear1": hidden.loop_problems, "relu": hidden.in_place_problems,
         "relu_module": hidden.module_problems}
# The mutants (the source notebooks' mutant cells) that compute the right values with the wrong technique: only the
# technique rule can catch them, since a rule decided in the sandbox could be forged.
TECHNIQUE_CHEATS = {
    "flatten_images": ["copies each image in a loop instead of making a view",
                       "reshapes a copy of the images (clone): right values, but not a view",
                       "views a copy made by arithmetic"],
    "init_params": ["requires grad before scaling, so the result is not a leaf",
                    "requires grad, then scales in a second line: not a leaf",
                    "forgets requires_grad"],
    "linear1": ["loops over the images in Python",
                "loops over the images with the loop hidden from TorchFunctionMode",
                "loops with map instead of a for"],
    "relu": ["changes x in place", "clamps x itself in place and returns it",
             "zeroes the negatives through a view of x", "F.relu with inplace=True"],
    "relu_module": ["returns the function F.relu", "returns the class instead of an instance"],
}


def notebook_with(tmp_path, answers: dict[str, str]) -> Path:
    from mnistkit import examples
    filled = examples.reference_answers(ASSIGNMENT)
    filled.update(answers)
    folder = examples.with_answers(ASSIGNMENT, filled, tmp_path)
    return next(folder.glob("*.ipynb"))


def problems(notebook, exercise):
    from mnistkit.grading import source_checks
    return RULES[exercise](source_checks.function_code(notebook, exercise))


def test_technique_rules_accept_the_reference_answers(tmp_path):
    """Does every technique rule of the hidden grader pass the reference's own answer cells
    (and a few other right ways to write them that the notebook allows)?"""
    right_ways = {
        "flatten_images": "def flatten_images(images):\n    n, h, w = images.shape\n"
                          "    flat = images.reshape(n, h*w)\n    return flat\n",
        "init_params": "def init_params(size, std=1.0):\n    t = torch.randn(size) * std\n"
                       "    t.requires_grad_()\n    return t\n",
        "relu": "def relu(x):\n    y = x.clone()\n    y[y < 0] = 0\n    return y\n",
        "relu_module": "class MyReLU(nn.Module):\n    def forward(self, x): return x.clamp(min=0)\n\n"
                       "def relu_module():\n    return MyReLU()\n",
    }
    reference = notebook_with(tmp_path / "reference", {})
    others = notebook_with(tmp_path / "others", right_ways)
    found = {ex: problems(reference, ex) for ex in RULES}
    found.update({f"{ex} (another right way)": problems(others, ex) for ex in right_ways})
    assert found == {name: [] for name in found}


def test_technique_rules_catch_every_technique_cheat(tmp_path):
    """Does each technique rule reject the mutants that get its exercise's technique wrong?"""
    MUTANTS = declared_mutants("a3_training_loop")
    missed = []
    for exercise, descriptions in TECHNIQUE_CHEATS.items():
        sources = dict(MUTANTS[exercise])
        for i, description in enumerate(descriptions):
            notebook = notebook_with(tmp_path / f"{exercise}-{i}", {exercise: sources[description]})
            if not problems(notebook, exercise):
                missed.append(f"{exercise}: {description}")
    assert missed == []


def test_stand_ins_are_not_the_answers():
    """Are the grader's stand-ins different from the reference (so a student who writes the
    dependency out instead of calling it by name is seen), and its loss a working loss?"""
    torch.manual_seed(1)
    scores, labels = torch.randn(50, 1), torch.randint(0, 2, (50, 1))
    loss = hidden.LOSS.function()
    assert not torch.isclose(loss(scores, labels), ref.mnist_loss(scores, labels))
    metric = hidden.METRIC.function()
    assert not torch.isclose(metric(scores, labels), ref.batch_accuracy(scores, labels))
    grads = []
    for calc_grad in (hidden.STEP.function(), ref.calc_grad):
        w = torch.zeros(3, 1).requires_grad_()
        calc_grad(torch.randn(50, 3), labels, lambda xb: xb @ w)
        grads.append(w.grad)
    assert grads[0] is not None and not torch.allclose(grads[0], grads[1])
