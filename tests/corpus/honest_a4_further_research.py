"""Honest a4 answers written the way learners write them (issue 18), for
tests/test_grade_corpus_real.py: one submission (a4's grading trains a model, so one grading
carries them all), the exercises answered in other idioms than the reference (numpy to order the
files, `torch.logsumexp`, a helper for the log-sum-exp in its own cell, `p.data` updates, prints),
with everyday boilerplate cells. Every exercise must keep full marks."""
from .boilerplate import everyday_cells
from .real import Case

ASSIGNMENT = "a4_further_research"

ANSWERS = {
    "MomentumSGD": """\
class MomentumSGD:
    \"\"\"SGD with momentum: v = mom * v + grad; p -= lr * v.\"\"\"

    def __init__(self, params, lr, mom=0.9):
        self.params = [p for p in params]
        self.lr, self.mom = lr, mom
        self.state = {}

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if i in self.state:
                self.state[i] = self.mom * self.state[i] + p.grad.detach()
            else:
                self.state[i] = p.grad.detach().clone()
            p.data -= self.lr * self.state[i]

    def zero_grad(self):
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()
""",
    "load_split": """\
import numpy as np

def load_split(folder):
    images, labels = [], []
    for digit in range(10):
        sub = Path(folder) / str(digit)
        if not sub.is_dir():
            continue
        for file in sorted(sub.iterdir(), key=lambda f: f.name):
            images.append(np.array(Image.open(file), dtype=np.float32) / 255)
            labels.append(digit)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64)
""",
    "digit_means": """\
def digit_means(x, y):
    means = []
    for digit in range(10):
        means.append(x[y == digit].mean(dim=0))
    return torch.stack(means)
""",
    "nearest_mean": """\
def nearest_mean(means, x):
    squared = (x.unsqueeze(1) - means.unsqueeze(0)) ** 2      # (n, 10, h, w)
    rmse = squared.mean(dim=(-2, -1)).sqrt()
    return rmse.argmin(dim=1)
""",
    "softmax": """\
def softmax(x):
    shifted = x - x.max(dim=-1, keepdim=True).values
    exps = torch.exp(shifted)
    return exps / exps.sum(dim=-1, keepdim=True)
""",
    "cross_entropy": """\
def cross_entropy(logits, targets):
    n = logits.shape[0]
    log_probs = logits - log_sum_exp(logits)
    return -log_probs[torch.arange(n), targets].mean()
""",
    "pick_device": """\
def pick_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
""",
}

LOG_SUM_EXP = ("before:cross_entropy", "code", """\
def log_sum_exp(x):
    \"\"\"log(sum(exp(x))) along the last axis, kept as a column; finite for huge scores.\"\"\"
    top = x.max(-1, keepdim=True).values
    return top + (x - top).exp().sum(-1, keepdim=True).log()
""")

CASES = [Case(ASSIGNMENT, "honest_learner", "honest idioms, a helper cell, Kaggle/Colab boilerplate",
              ANSWERS, {}, cells=everyday_cells("MomentumSGD", "nearest_mean", "pick_device")
              + [LOG_SUM_EXP])]
