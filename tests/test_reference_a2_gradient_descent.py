"""The a2_gradient_descent reference solutions against the numbers the chapter prints.

Fast: imports solutions.a2_gradient_descent, runs no notebook (fastai is imported only by the
DataLoader tests, through the lighter fastai.data.load).
"""
import math
import random
import string

import pytest
import torch

from solutions import a2_gradient_descent as ref

# importing fastai (for DataLoader) warns about torch.jit.script; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

TGT = torch.tensor([1, 0, 1])
INP = torch.tensor([0.9, 0.4, 0.2])


def test_seven_steps_are_the_chapters_order():
    """Are the seven steps in the chapter's order, and a reordering of the names students get?"""
    assert ref.seven_steps == ["init", "predict", "loss", "gradient", "step", "repeat", "stop"]
    assert sorted(ref.STEP_NAMES) == sorted(ref.seven_steps)
    assert ref.STEP_NAMES != ref.seven_steps


def test_gradient_of_square_at_three():
    """Does the reference reproduce the chapter's gradient of x**2 at 3 (tensor(6.))?"""
    assert torch.equal(ref.gradient_at(lambda t: t ** 2, torch.tensor(3.)), torch.tensor(6.))


def test_gradient_of_summed_squares():
    """Does the reference reproduce the chapter's [6, 8, 20] for (x**2).sum() at [3, 4, 10]?"""
    x = torch.tensor([3., 4., 10.])
    assert torch.equal(ref.gradient_at(lambda t: (t ** 2).sum(), x), torch.tensor([6., 8., 20.]))
    assert not x.requires_grad and x.grad is None, "the caller's tensor must be left alone"
    assert torch.equal(ref.gradient_at(lambda t: (t ** 2).sum(), x), torch.tensor([6., 8., 20.]))


def test_sgd_step_is_pure():
    """Does sgd_step compute p - lr*g without touching its inputs?"""
    p, g = torch.tensor([3., 4., 10.]), torch.tensor([6., 8., 20.])
    (new,) = ref.sgd_step([p], [g], 0.1)
    assert torch.allclose(new, torch.tensor([2.4, 3.2, 8.0]))
    assert torch.equal(p, torch.tensor([3., 4., 10.]))


@pytest.mark.parametrize("lr, behaviour", [(0.05, "slow"), (0.8, "bouncy"), (1.05, "diverges")])
def test_descent_path_learning_rates(lr, behaviour):
    """Do the notebook's three learning rates on x**2 crawl, bounce and diverge as it says?"""
    path = ref.descent_path(-1.5, lr, 10)
    assert path.shape == (11,) and path[0] == -1.5
    assert torch.allclose(path, -1.5 * (1 - 2 * lr) ** torch.arange(11.), rtol=1e-5)
    mags = path.abs()
    if behaviour == "slow":
        assert (path < 0).all() and (mags[1:] < mags[:-1]).all() and mags[-1] > 0.4
    elif behaviour == "bouncy":
        assert (path[1:] * path[:-1] < 0).all() and mags[-1] < 0.05
    else:
        assert (mags[1:] > mags[:-1]).all() and mags[-1] > 3.5


def test_train_quadratic_fits_the_notebook_data():
    """Does the notebook's quadratic fit converge close to the curve behind the noisy data?"""
    torch.manual_seed(42)
    t = torch.linspace(-2, 2, 25)
    true = torch.tensor([1.5, -1.0, 0.5])
    y = ref.quad(t, true) + torch.randn(25) * 0.4
    torch.manual_seed(0)
    init = torch.randn(3)
    fitted, losses = ref.train_quadratic(t, y, init, 0.05, 100)
    assert len(losses) == 100 and all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[0] == pytest.approx(ref.mse(ref.quad(t, init), y).item())
    assert losses[-1] < 0.2 < 5 < losses[0]
    assert torch.allclose(fitted, true, atol=0.7)
    assert torch.equal(init, torch.randn(3, generator=torch.Generator().manual_seed(0)))


def test_torch_where_example():
    """Does the reference's torch.where idea reproduce the chapter's tensor([0.1, 0.4, 0.8])?"""
    assert torch.allclose(torch.where(TGT == 1, 1 - INP, INP), torch.tensor([0.1, 0.4, 0.8]))


def test_mnist_loss_chapter_values():
    """Does the reference reproduce the chapter's mnist_loss values 0.4333 and 0.2333?"""
    assert ref.mnist_loss(INP, TGT).item() == pytest.approx(0.4333, abs=5e-5)
    assert ref.mnist_loss(torch.tensor([0.9, 0.4, 0.8]), TGT).item() == pytest.approx(0.2333, abs=5e-5)


def test_sigmoid_matches_torch():
    """Is the reference sigmoid torch.sigmoid, finite for large inputs and 0.5 at 0?"""
    x = torch.linspace(-100, 100, 401)
    assert torch.allclose(ref.sigmoid(x), torch.sigmoid(x), atol=1e-6)
    assert ref.sigmoid(torch.tensor(0.)) == 0.5


def test_mnist_loss_sigmoid_is_loss_of_sigmoid():
    """Is mnist_loss_sigmoid the chapter's second mnist_loss (sigmoid first), bounded in [0, 1]?"""
    x = torch.tensor([2.0, -1.0, -0.5])
    assert torch.allclose(ref.mnist_loss_sigmoid(x, TGT), ref.mnist_loss(torch.sigmoid(x), TGT))
    assert 0 <= ref.mnist_loss_sigmoid(torch.tensor([50., -80.]), torch.tensor([0, 1])) <= 1


def test_accuracy_slope_zero_almost_everywhere():
    """Is accuracy's slope zero on the chapter's predictions, but not for one just below 0.5?"""
    assert torch.equal(ref.accuracy_slope(INP, TGT, 0.01), torch.zeros(3))
    s = ref.accuracy_slope(torch.tensor([0.499, 0.9]), torch.tensor([1, 1]), 0.01)
    assert s[0] == pytest.approx(0.5 / 0.01) and s[1] == 0


def test_usable_as_loss_answer():
    """Are the metric-style measures the unusable ones?"""
    assert {k for k, v in ref.usable_as_loss.items() if not v} == {"accuracy", "error_rate", "count_wrong"}


def test_dataloader_on_range_15():
    """Does DataLoader(range(15), batch_size=5, shuffle=True) give three batches of 5, each item once?"""
    random.seed(0)
    batches = ref.batches_of(range(15), 5)
    assert [len(b) for b in batches] == [5, 5, 5]
    assert sorted(torch.cat(batches).tolist()) == list(range(15))


def test_dataloader_on_letter_pairs():
    """Does the chapter's 26-letter Dataset give batches of 6, 6, 6, 6, 2 that keep each pair together?"""
    from fastcore.foundation import L
    random.seed(0)
    batches = ref.batches_of(L(enumerate(string.ascii_lowercase)), 6)
    assert [len(b[0]) for b in batches] == [6, 6, 6, 6, 2]
    pairs = [(int(i), c) for nums, letters in batches for i, c in zip(nums, letters)]
    assert sorted(pairs) == list(enumerate(string.ascii_lowercase))
    assert len(batches) == math.ceil(26 / 6)
