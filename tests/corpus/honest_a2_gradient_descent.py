"""Honest a2 answers written the way learners write them (issue 18), for
tests/test_grade_corpus_real.py: one submission, each auto-graded exercise answered in another
idiom than the reference (float64 arithmetic where the prompt allows it, numpy for the
measurement loop, type hints, prints), with helpers in their own cells and everyday cells.
Every exercise must keep full marks."""
from .boilerplate import everyday_cells
from .real import Case

ASSIGNMENT = "a2_gradient_descent"

ANSWERS = {
    "seven_steps": """\
STEP_NAMES = ["gradient", "stop", "predict", "init", "repeat", "loss", "step"]
# the order from the chapter's diagram
order = "init predict loss gradient step repeat stop"
seven_steps = order.split()
print(seven_steps)
""",
    "gradient_at": """\
def gradient_at(f, x):
    x = x.detach().clone().requires_grad_(True)
    y = f(x)
    y.backward()
    return x.grad
""",
    "sgd_step": """\
from typing import List

def sgd_step(params: List[torch.Tensor], grads: List[torch.Tensor], lr: float) -> List[torch.Tensor]:
    new_params = []
    for p, g in zip(params, grads):
        new_params.append(p - lr * g)
    return new_params
""",
    "descent_path": """\
def descent_path(x0, lr, n_steps):
    xs = [float(x0)]
    for _ in range(n_steps):
        xs.append(xs[-1] - lr * 2 * xs[-1])   # the gradient of x**2 is 2x
    return torch.tensor(xs)
""",
    "train_quadratic": """\
def train_quadratic(t, y, params, lr, n_steps):
    p = params.clone().detach().requires_grad_()
    history = []
    for step in range(n_steps):
        loss = one_step(t, y, p, lr)
        history.append(loss)
    return p.detach(), history
""",
    "mnist_loss": """\
def mnist_loss(inputs, targets):
    distance = torch.where(targets == 1, 1 - inputs, inputs)
    return distance.mean()
""",
    "accuracy_slope": """\
import numpy as np

def accuracy_slope(preds, targets, eps):
    def acc(p):
        return ((p > 0.5) == (targets == 1)).float().mean().item()
    before = acc(preds)
    out = np.zeros(preds.numel())
    for i in range(preds.numel()):
        bumped = preds.clone().flatten()
        bumped[i] = bumped[i] + eps
        out[i] = (acc(bumped.view(preds.shape)) - before) / eps
    return torch.from_numpy(out).float().view(preds.shape)
""",
    "sigmoid": """\
def sigmoid(x):
    # exp(-x) overflows to inf for very negative x, and 1/(1+inf) is 0: still finite
    return 1.0 / (1.0 + torch.exp(-x))
""",
    "mnist_loss_sigmoid": """\
def mnist_loss_sigmoid(inputs, targets):
    probs = sigmoid(inputs)
    return mnist_loss(probs, targets)
""",
    "usable_as_loss": """\
usable_as_loss = dict(accuracy=False, error_rate=False, count_wrong=False,
                      mean_squared_error=True, mean_absolute_error=True, mnist_loss_sigmoid=True)
""",
    "batches_of": """\
def batches_of(collection, batch_size, shuffle=True):
    dl = DataLoader(collection, bs=batch_size, shuffle=shuffle)
    return [batch for batch in dl]
""",
}

ONE_STEP = ("before:train_quadratic", "code", """\
def one_step(t, y, p, lr):
    \"\"\"predict, loss, gradient, step: returns the loss before the step\"\"\"
    loss = mse(quad(t, p), y)
    loss.backward()
    with torch.no_grad():
        p -= lr * p.grad
    p.grad = None
    return loss.item()
""")

CASES = [Case(ASSIGNMENT, "honest_learner", "honest idioms, a helper cell, Kaggle/Colab boilerplate",
              ANSWERS, {}, cells=everyday_cells("gradient_at", "mnist_loss", "batches_of") + [ONE_STEP])]
