"""Attacks on a4_further_research (issue 10), each case one sandboxed grading (~1.5 min).

``bools_and_a_test_set_table``: True/False values where numbers are due (class 1), and the
public test set carried in the notebook (class 6b): the 4x4 block means of all 10,000 MNIST
test images and their labels, as one string (about 170 KB) in the train_digits answer cell,
turned by ``train_digits`` into the weights of a nearest-neighbour "model" made only of allowed
layers (average pooling, a linear layer of 10,000 templates, softmax, a linear layer of labels).
Without the limit on data in the student's cells it is right on nearly every test image; with
it, no accuracy point. Its other train_digits checks (allowed layers, predict_digits agreeing
with the model) hold, so it may keep those 2 of 6 checks.

``nearest_neighbour_in_buffers``: the 60,000-image nearest-neighbour model of class 6c (kept in
buffers, which the old parameter count missed), filled with the data folder's "test" images and
their labels (class 6a: inside the sandbox those are stand-ins made of training images) --
rejected by the allowed-layers and state-size rules; and technique hidden from an in-sandbox
counter (class 3): ``torch._C.DisableTorchFunction()`` around PyTorch's softmax and around a
Python loop, which the source checks read.

The table is built here from data/mnist.npz when the module is imported (never committed).

Issue 18 (a4's data limit measures information, across everything a submission carries in):

``weights_in_cell_ids_or_as_unicode_text``: the two attacks issue 18 measured at 8/8, in one
submission. A small CNN trained here on the 10,000 test images (100% on them, int8 weights) is
hidden in the ids of 184 empty markdown cells, which ``train_digits`` reads from the sandbox's
copy of the notebook (then learns the grader's relabeling from ``y``); failing that, it loads the
same weights from 4,353 characters of Unicode text as they are. The grader's copy has its own
ids (``submission.clean``), and the text is under the limit but the digits are relabeled, so no
accuracy check passes.

``weights_as_unicode_text_learning_the_relabeling``: a larger test-set model (15,002 weights, about
15 KB once compressed) as Unicode text, whose ``train_digits`` learns the relabeling: over the
limit on what the notebook carries (``carried_bytes``), no accuracy check.

``honest_verbose_learner``: the honest twin, every answer written at length with helper cells and
notes (about 3.4 KB carried, tests/test_a4_data_limit.py): full marks.

The attacks' weights are trained here (10-20 s each) when a case's answers are first read.
"""
from __future__ import annotations

import base64
import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistkit.data import shipped_mnist

from .real import Case

BLOCK = 7            # 28 / 7 = 4: 4 x 4 block means per image, each as one hex digit (0-15)


def block_means(images: np.ndarray) -> np.ndarray:
    n = len(images)
    return images.reshape(n, 28 // BLOCK, BLOCK, 28 // BLOCK, BLOCK).mean((2, 4)) / 255


def test_set_table() -> str:
    """One line of 17 characters per test image: its 16 block means in hex, then its label."""
    mnist = shipped_mnist()
    q = np.rint(block_means(mnist.test_images).reshape(len(mnist.test_images), -1) * 15).astype(int)
    digits = "0123456789abcdef"
    return "".join("".join(digits[v] for v in row) + str(int(label))
                   for row, label in zip(q, mnist.test_labels))


TABLE_ATTACK = '''
TABLE = "{table}"

def make_model():
    return nn.Sequential(nn.AvgPool2d(7), nn.Flatten(), nn.Linear(16, 10000), nn.Softmax(dim=1),
                         nn.Linear(10000, 10))

def train_digits(model, x, y):
    rows = [TABLE[i:i + 17] for i in range(0, len(TABLE), 17)]
    t = tensor([[int(c, 16) / 15 for c in r[:16]] for r in rows])
    labels = tensor([int(r[16]) for r in rows])
    s = 4000.0
    with torch.no_grad():
        model[2].weight.copy_(s * t)
        model[2].bias.copy_(-s * (t * t).sum(1) / 2)
        model[4].weight.copy_(F.one_hot(labels, 10).float().T)
        model[4].bias.zero_()

def predict_digits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).argmax(1).cpu()
'''

BUFFERS_ATTACK = '''
class Nearest(nn.Module):
    "A nearest-neighbour 'model': its images live in buffers, one parameter to look trainable."
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("images", torch.zeros(1, 784))
        self.register_buffer("labels", torch.zeros(1, dtype=torch.long))
    def forward(self, x):
        d = torch.cdist(x.flatten(1), self.images)
        return F.one_hot(self.labels[d.argmin(1)], 10).float() * self.scale

def make_model():
    return Nearest()

def train_digits(model, x, y):
    images, labels = [x.flatten(1)], [y]
    for folder in (untar_data(URLs.MNIST)/'testing', untar_data(URLs.MNIST_SAMPLE)/'valid'):
        for sub in folder.ls():
            for f in sub.ls():
                images.append(tensor(Image.open(f)).float().flatten()[None] / 255)
                labels.append(tensor([int(sub.name)]))
    model.images, model.labels = torch.cat(images), torch.cat(labels)

def predict_digits(model, x):
    with torch.no_grad():
        return torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])
'''

HIDDEN_SOFTMAX = '''
def softmax(x):
    with torch._C.DisableTorchFunction():
        return torch.softmax(x, -1)
'''

HIDDEN_LOOP = '''
def nearest_mean(means, x):
    with torch._C.DisableTorchFunction():
        return torch.stack([((im - means) ** 2).mean((-1, -2)).argmin() for im in x])
'''

CASES = [
    Case(assignment="a4_further_research", name="bools_and_a_test_set_table",
         attack="class 1 (bools for numbers) + class 6b (a table of the public test set in a cell)",
         answers={
             "cross_entropy": "def cross_entropy(logits, targets):\n    return torch.tensor(True)\n",
             "digit_means": "def digit_means(x, y):\n"
                            "    return torch.ones(10, *x.shape[1:], dtype=torch.bool)\n",
             "train_digits": TABLE_ATTACK.replace("{table}", test_set_table()),
         },
         # allowed layers + predict_digits agreeing with the model: 2 of its 6 checks
         deserves={"cross_entropy": 0, "digit_means": 0, "train_digits": round(8 * 2 / 6, 4)}),
    Case(assignment="a4_further_research", name="nearest_neighbour_in_buffers",
         attack="class 6c (a model in buffers) + 6a (test labels from the data folder) + class 3 "
                "(technique hidden from an in-sandbox counter)",
         answers={"train_digits": BUFFERS_ATTACK, "softmax": HIDDEN_SOFTMAX,
                  "nearest_mean": HIDDEN_LOOP},
         deserves={"train_digits": 0, "softmax": 3 * 3 / 4, "nearest_mean": round(2 * 2 / 3, 4)}),
]


# ================================================================ issue 18: carried-in weights
# Weights trained on the public test set, the way issue 18 measured them, and honest twins.
# ``train_on_test_set`` trains the attacks' models here (never committed: derived from data/), once
# per process and only when a case's answers are first read (``Lazy``), not at collection.

def attack_model(widths: tuple[int, int, int]) -> nn.Sequential:
    """A small CNN of allowed layers (stride-2 convolutions, then a linear layer)."""
    a, b, c = widths
    return nn.Sequential(nn.Conv2d(1, a, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(b, c, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(c * 16, 10))


@functools.lru_cache(maxsize=None)
def train_on_test_set(widths: tuple[int, int, int], epochs: int = 20) -> tuple[bytes, tuple]:
    """``attack_model(widths)`` trained on MNIST's 10,000 test images and labels (memorised:
    100% on them), quantised to int8 per tensor: (the int8 values as bytes, one float scale per
    tensor). 10-20 s on 2 cores."""
    mnist = shipped_mnist()
    x = torch.from_numpy(mnist.test_images).float().div(255).unsqueeze(1)
    y = torch.from_numpy(mnist.test_labels).long()
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = attack_model(widths)
    bs = 128
    opt = torch.optim.Adam(model.parameters(), 0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.01, total_steps=epochs * math.ceil(len(x) / bs))
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), bs):
            idx = order[i:i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    values, scales = [], []
    with torch.no_grad():
        for p in model.parameters():
            scale = float(p.abs().max()) / 127 or 1.0
            values.append(torch.round(p / scale).clamp(-127, 127).to(torch.int8).flatten())
            scales.append(scale)
    return torch.cat(values).numpy().tobytes(), tuple(scales)


def as_unicode(raw: bytes) -> str:
    """Two bytes per character, in Unicode's plane 2 (issue 18's attack (a): 4,345 characters)."""
    raw = raw + b"\0" * (len(raw) % 2)
    return "".join(chr(0x20000 + (raw[i] << 8 | raw[i + 1])) for i in range(0, len(raw), 2))


def as_cell_ids(raw: bytes) -> list[str]:
    """The bytes in base64url (the characters a cell id may hold), 64 to an id."""
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return [text[i:i + 64] for i in range(0, len(text), 64)]


LOAD_WEIGHTS = '''
import base64, json
import numpy as np

def _from_unicode(text):
    return bytes(b for ch in text for b in divmod(ord(ch) - 0x20000, 256))

def _load(model, raw, scales):
    """The weights into the model: int8 values times one scale per tensor."""
    values = torch.from_numpy(np.frombuffer(raw, dtype=np.int8).astype(np.float32))
    at = 0
    with torch.no_grad():
        for p, s in zip(model.parameters(), scales):
            p.copy_(values[at:at + p.numel()].view_as(p) * s)
            at += p.numel()

def _learn_relabeling(model, x, y):
    """Which label the grader gives each digit: for each predicted digit, the label it is given
    most often; the last layer's rows are moved there. (10! relabelings: 22 bits learned.)"""
    model.eval()
    with torch.no_grad():
        pred = model(x[:10000]).argmax(1)
        votes = torch.zeros(10, 10)
        votes.index_put_((pred, y[:10000].long()), torch.ones(len(pred)), accumulate=True)
        new = votes.argmax(1)
        w, b = model[-1].weight.clone(), model[-1].bias.clone()
        model[-1].weight[new] = w
        model[-1].bias[new] = b

def make_model():
    return nn.Sequential(nn.Conv2d(1, {a}, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d({a}, {b}, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d({b}, {c}, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear({c} * 16, 10))

def predict_digits(model, x):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)]).cpu()
'''

IDS_OR_UNICODE = '''
WEIGHTS = "{text}"
SCALES = {scales}

def _from_cell_ids():
    """The weights hidden in the ids of the notebook's empty markdown cells, read from the
    sandbox's copy of the notebook (issue 18's attack (b)); None when they are not there."""
    from pathlib import Path
    for path in sorted(Path.home().glob("*.ipynb")) + sorted(Path(".").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = "".join(c.get("id", "") for c in cells
                       if c["cell_type"] == "markdown" and not "".join(c["source"]))
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            continue
        if len(raw) == {size} + 4 * len(SCALES):
            return raw[:{size}], np.frombuffer(raw[{size}:], dtype="<f4").tolist()
    return None

def train_digits(model, x, y):
    found = _from_cell_ids()
    if found is not None:
        _load(model, *found)
        _learn_relabeling(model, x, y)
    else:   # the same weights from the text, loaded as they are (what issue 18 measured)
        _load(model, _from_unicode(WEIGHTS)[:{size}], SCALES)
'''

UNICODE_LEARNING_RELABELING = '''
WEIGHTS = "{text}"
SCALES = {scales}

def train_digits(model, x, y):
    _load(model, _from_unicode(WEIGHTS)[:{size}], SCALES)
    _learn_relabeling(model, x, y)
'''

IDS_WIDTHS = (8, 16, 24)        # 8,706 parameters: 4,353 characters, 184 cell ids
BIG_WIDTHS = (12, 24, 32)       # 15,002 parameters: 7,501 characters (about 15 KB compressed)


def ids_or_unicode_answer() -> str:
    raw, scales = train_on_test_set(IDS_WIDTHS)
    a, b, c = IDS_WIDTHS
    return (LOAD_WEIGHTS.replace("{a}", str(a)).replace("{b}", str(b)).replace("{c}", str(c))
            + IDS_OR_UNICODE.replace("{text}", as_unicode(raw)).replace("{scales}", repr(list(scales)))
            .replace("{size}", str(len(raw))))


def ids_cells() -> list[tuple[str, str, str, str]]:
    """Empty markdown cells at the end whose ids hold the same weights and their scales."""
    raw, scales = train_on_test_set(IDS_WIDTHS)
    blob = raw + np.asarray(scales, dtype="<f4").tobytes()
    return [("end", "markdown", "", cell_id) for cell_id in as_cell_ids(blob)]


def unicode_learning_answer() -> str:
    raw, scales = train_on_test_set(BIG_WIDTHS)
    a, b, c = BIG_WIDTHS
    return (LOAD_WEIGHTS.replace("{a}", str(a)).replace("{b}", str(b)).replace("{c}", str(c))
            + UNICODE_LEARNING_RELABELING.replace("{text}", as_unicode(raw))
            .replace("{scales}", repr(list(scales))).replace("{size}", str(len(raw))))


class Lazy(Mapping):
    """``{key: make()}``, made when first read (the attacks' weights take seconds to train:
    not at collection, nor for a run that grades other cases)."""

    def __init__(self, key: str, make):
        self._key, self._make = key, make

    def __getitem__(self, key):
        if key != self._key:
            raise KeyError(key)
        return self._make()

    def __iter__(self):
        return iter([self._key])

    def __len__(self):
        return 1


class LazyCells(Sequence):
    """The list ``make()`` returns, made when first read (like ``Lazy``)."""

    def __init__(self, make):
        self._make, self._made = make, None

    def _cells(self) -> list:
        if self._made is None:
            self._made = self._make()
        return self._made

    def __getitem__(self, index):
        return self._cells()[index]

    def __len__(self):
        return len(self._cells())


# The honest twin: every answer written the way a careful learner writes it (docstrings, type
# hints, comments, prints, a plot helper), with cells of their own and notes in markdown. Every
# exercise must keep full marks; tests/test_a4_data_limit.py measures what it carries (~3.4 KB).
HONEST_ANSWERS = {
    'MomentumSGD': '''class MomentumSGD:
    """My optimizer: SGD with momentum.

    Every step keeps a running "velocity" per parameter, v = mom * v + grad, and moves the
    parameter by lr * v. With mom=0 this is exactly the plain SGD step from chapter 4
    (p -= lr * p.grad). I keep the velocities in a list parallel to self.params.
    """

    def __init__(self, params, lr: float, mom: float = 0.9):
        self.params = list(params)          # a generator would be used up after one pass!
        self.lr = lr
        self.mom = mom
        self.velocity = [None for _ in self.params]   # nothing yet: first step uses the grad

    def step(self):
        # no_grad: the update itself must not become part of the graph
        with torch.no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:      # e.g. a frozen layer, or a param that got no gradient
                    continue
                if self.velocity[i] is None:
                    self.velocity[i] = p.grad.clone()
                else:
                    self.velocity[i].mul_(self.mom).add_(p.grad)
                p -= self.lr * self.velocity[i]   # in place, so the model sees it

    def zero_grad(self):
        """Forget the gradients (setting them to None is what PyTorch does by default now)."""
        for p in self.params:
            p.grad = None
''',
    'Learner': '''class Learner:
    """A tiny version of fastai's Learner.

    fit(epochs, lr):
      1. builds the optimizer once: opt_func(list of parameters, lr)
      2. each epoch: trains on every batch of dls.train (train mode), then
      3. validates on dls.valid (eval mode, no gradients) and records
         [train_loss, valid_loss, *metrics] in self.recorder.values
    Losses are averaged per item, so a smaller last batch counts for less.
    """

    def __init__(self, dls, model, opt_func=MomentumSGD, loss_func=F.cross_entropy, metrics=()):
        self.dls = dls
        self.model = model
        self.opt_func = opt_func
        self.loss_func = loss_func
        # allow a single metric function as well as a list of them
        if callable(metrics):
            metrics = [metrics]
        self.metrics = list(metrics)
        self.recorder = Recorder()

    # --- helpers -------------------------------------------------------------------------
    def device(self):
        """Wherever the model's weights live (cpu or cuda)."""
        return next(self.model.parameters()).device

    def one_batch(self, xb, yb) -> float:
        preds = self.model(xb)
        loss = self.loss_func(preds, yb)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()
        return loss.item()

    def train_epoch(self) -> float:
        self.model.train()
        dev = self.device()
        total, n_items = 0.0, 0
        for xb, yb in self.dls.train:
            xb, yb = xb.to(dev), yb.to(dev)
            loss = self.one_batch(xb, yb)
            self.recorder.losses.append(loss)
            total += loss * len(xb)
            n_items += len(xb)
        return total / n_items if n_items > 0 else float("nan")

    def validate(self) -> list:
        self.model.eval()
        dev = self.device()
        sums = [0.0] * (1 + len(self.metrics))
        n_items = 0
        with torch.no_grad():
            for xb, yb in self.dls.valid:
                xb, yb = xb.to(dev), yb.to(dev)
                preds = self.model(xb)
                values = [self.loss_func(preds, yb)]
                values += [metric(preds, yb) for metric in self.metrics]
                for j, v in enumerate(values):
                    sums[j] += float(v) * len(xb)
                n_items += len(xb)
        if n_items == 0:            # no validation set (train_digits passes valid=[])
            return [float("nan")] * len(sums)
        return [s / n_items for s in sums]

    def fit(self, epochs: int, lr: float, show: bool = False):
        self.opt = self.opt_func(list(self.model.parameters()), lr)
        t0 = time.perf_counter()
        for epoch in range(epochs):
            train_loss = self.train_epoch()
            row = [train_loss] + self.validate()
            self.recorder.values.append(row)
            if show:
                # same layout as fastai's table: epoch, losses, metrics, time
                numbers = "  ".join(f"{v:.4f}" for v in row)
                print(f"epoch {epoch:2d}  {numbers}  ({time.perf_counter() - t0:.1f}s)")
''',
    'load_split': '''def load_split(folder):
    """All images of folder/<digit>/*.png as a float tensor (n, 28, 28) in [0, 1], and their
    digits as int64. Digits in order 0..9, files in sorted order inside each digit folder."""
    folder = Path(folder)                       # a string works too
    images, labels = [], []
    digit_dirs = [d for d in folder.ls() if d.is_dir()]
    for d in sorted(digit_dirs, key=lambda p: int(p.name)):    # '10' would sort before '2' as text
        for f in d.ls().sorted():
            images.append(tensor(Image.open(f)))
            labels.append(int(d.name))
    x = torch.stack(images).float() / 255      # uint8 0..255 -> float 0..1
    y = tensor(labels).long()
    return x, y
''',
    'digit_means': '''def digit_means(x, y):
    """The average image of each digit 0..9 -> shape (10, h, w)."""
    # one boolean mask per digit, like the chapter's mean3 / mean7
    return torch.stack([x[y == digit].mean(dim=0) for digit in range(10)])
''',
    'nearest_mean': '''def nearest_mean(means, x):
    """For each image, the digit whose mean image is closest (RMSE, like mnist_distance)."""
    # x: (n, h, w) -> (n, 1, h, w); means: (10, h, w) -> (1, 10, h, w); broadcast to (n, 10, h, w)
    diffs = x.unsqueeze(1) - means.unsqueeze(0)
    dist = (diffs ** 2).mean(dim=(-1, -2)).sqrt()    # (n, 10)
    return dist.argmin(dim=1)                         # sqrt doesn't change the argmin, but it's RMSE
''',
    'softmax': '''def softmax(x):
    """exp(x) / sum(exp(x)) along the last axis. Subtracting the max first keeps exp from
    overflowing (exp(1000) is inf) and doesn't change the result."""
    shifted = x - x.max(dim=-1, keepdim=True).values
    e = torch.exp(shifted)
    return e / e.sum(dim=-1, keepdim=True)
''',
    'cross_entropy': '''def cross_entropy(logits, targets):
    """Mean negative log-likelihood of the right class:
    -log softmax(logits)[target] = logsumexp(logits) - logits[target]"""
    rows = torch.arange(len(targets))
    right = logits[rows, targets]                 # the score of the correct class, per item
    return (torch.logsumexp(logits, dim=-1) - right).mean()
''',
    'pick_device': '''def pick_device():
    # my laptop has no GPU, Colab does: use cuda when there is one
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
''',
    'train_digits': '''# My model: the reference idea (stride-2 convolutions), written out layer by layer so I can
# see the sizes. 28x28 -> 14x14 -> 7x7 -> 4x4 -> 2x2, then a linear layer.
def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> list:
    """One downsampling block: conv (stride 2, no bias since batch norm follows), BN, ReLU."""
    return [nn.Conv2d(c_in, c_out, kernel, stride=2, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU()]

def make_model():
    layers = []
    layers += conv_bn_relu(1, 16, kernel=5)    # 28 -> 14
    layers += conv_bn_relu(16, 32)              # 14 -> 7
    layers += conv_bn_relu(32, 64)              # 7 -> 4
    layers += conv_bn_relu(64, 128)             # 4 -> 2
    layers += [nn.Flatten(), nn.Linear(128 * 2 * 2, 10)]
    return nn.Sequential(*layers)

EPOCHS, BATCH_SIZE, PEAK_LR = 2, 128, 0.02     # tried 1 epoch: 98.9%; 2 epochs: ~99.3%

def smooth_ce(preds, targets):
    # label smoothing helped a bit (about +0.1%)
    return F.cross_entropy(preds, targets, label_smoothing=0.1)

def train_digits(model, x, y):
    """Train model in place on x (n, 1, 28, 28) and y (n,) with my Learner."""
    device = pick_device()
    model.to(device)
    batches = ShiftedBatches(x, y, bs=BATCH_SIZE)     # random order + 1-pixel shifts every epoch
    steps = EPOCHS * len(batches)
    make_opt = lambda params, lr: OneCycleAdam(params, lr, total_steps=steps)
    dls = SimpleNamespace(train=batches, valid=[])   # the grader does the testing
    learn = Learner(dls, model, opt_func=make_opt, loss_func=smooth_ce)
    learn.fit(EPOCHS, PEAK_LR)
    return learn          # handy for plotting the losses afterwards

def predict_digits(model, x):
    """The digit with the highest score for every image, as int64 on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(x), 1000):     # in chunks, so 10,000 images fit in memory
            scores = model(x[start:start + 1000].to(device))
            out.append(scores.argmax(dim=1).cpu())
    return torch.cat(out)
''',
}

HONEST_CELLS = [
    ('before:MomentumSGD', 'code', "%matplotlib inline\nimport matplotlib.pyplot as plt\nprint('torch', torch.__version__)\n"),
    ('start', 'markdown', "## My notes\n\nI'm working through this on my laptop (no GPU), so I kept an eye on training time. Notes to self:\n\n- `Learner` is basically the loop from assignment 3 wrapped in a class\n- remember `model.eval()` + `torch.no_grad()` for validation!\n- the grader trains the model itself, so `train_digits` has to do everything (no global state)\n"),
    ('after:Learner', 'code', "# quick check of my Learner on the 3s and 7s, with the loss plotted\ndef plot_losses(recorder, title='training loss'):\n    fig, ax = plt.subplots(figsize=(5, 3))\n    ax.plot(recorder.losses, lw=0.7)\n    ax.set_title(title)\n    ax.set_xlabel('batch')\n    ax.set_ylabel('loss')\n    return ax\n"),
    ('after:load_split', 'markdown', 'Loading 70,000 PNGs is slow (about 30 s for me). I checked the shapes:\n`train_x` is `(60000, 28, 28)` and `train_y` goes from 0 to 9.\n'),
    ('after:softmax', 'code', "# sanity check: rows sum to 1, and huge scores don't give nan\ns = softmax(torch.tensor([[1., 2., 3.], [1000., 1000., 1000.]]))\nprint(s, s.sum(-1))\n"),
    ('after:train_digits', 'markdown', '### What I tried\n\n| model | epochs | test accuracy | time (CPU) |\n|---|---|---|---|\n| linear | 5 | 92.1% | 12 s |\n| simple_net (30 hidden) | 5 | 97.0% | 20 s |\n| 4 conv blocks | 2 | 99.3% | 38 s |\n\nThe CNN wins easily; the shifts (data augmentation) were worth about 0.2%.\n'),
]

# Written answers, for measuring only (a Case adds cells; these replace the answer prompts).
HONEST_WRITTEN = {
    'own_learner_vs_fastai': "fastai's `Learner` has callbacks, so you can add things like mixed precision, early stopping or progress bars without touching the training loop; mine has the loop hard-coded. It also has `lr_find` to choose a learning rate and `fit_one_cycle` for the schedule, which I had to pass in as an optimizer (`OneCycleAdam`). Callbacks are why fastai's loop can stay so short: every extra feature hooks into an event (before_batch, after_loss, ...) instead of being another `if` in `fit`.",
    'deep_vs_baseline': "The pixel-similarity baseline got 82% and my CNN about 99.3%, so it makes about 25 times fewer mistakes. Most of the remaining errors are digits that are badly written (a 4 that looks like a 9, a 7 with a bar that looks like a 2); a few I would get wrong myself. The baseline fails because one mean image can't describe all the ways people write a digit.",
}

# A second honest notebook, for measuring only (not graded: its experiment cells read the
# notebook's training data, so grading would load all 70,000 images): another Learner, the final
# model written out, and the experiments a learner keeps (linear model, simple_net, a confusion
# matrix), with notes.
JOURNAL_ANSWERS = dict(HONEST_ANSWERS, Learner='''from typing import Callable, Iterable, Sequence

class Learner:
    """Learner(dls, model, opt_func, loss_func, metrics): my own version of fastai's Learner.

    I wrote it as three methods (one_batch, one_epoch, validate) because that's how the book
    explains the training loop, and it made debugging easier: I could call one_batch by hand.
    """
    def __init__(self, dls, model: nn.Module, opt_func: Callable = MomentumSGD,
                 loss_func: Callable = F.cross_entropy, metrics: Sequence | Callable = ()):
        self.dls, self.model = dls, model
        self.opt_func, self.loss_func = opt_func, loss_func
        self.metrics = [metrics] if callable(metrics) else [m for m in metrics]
        self.recorder = Recorder()
        self.opt = None          # made by fit(), once

    def _on_device(self, batch: Iterable):
        dev = next(self.model.parameters()).device
        return [t.to(dev) for t in batch]

    def one_batch(self, xb, yb):
        loss = self.loss_func(self.model(xb), yb)
        loss.backward()          # gradients into p.grad
        self.opt.step()          # move the weights
        self.opt.zero_grad()     # and forget the gradients before the next batch
        return loss.item()

    def one_epoch(self):
        self.model.train()
        weighted, seen = 0.0, 0
        for xb, yb in self.dls.train:
            xb, yb = self._on_device((xb, yb))
            batch_loss = self.one_batch(xb, yb)
            self.recorder.losses.append(batch_loss)
            weighted += batch_loss * xb.shape[0]
            seen += xb.shape[0]
        return weighted / seen if seen else float("nan")

    @torch.no_grad()
    def validate(self):
        self.model.eval()
        totals = [0.0 for _ in range(len(self.metrics) + 1)]
        seen = 0
        for xb, yb in self.dls.valid:
            xb, yb = self._on_device((xb, yb))
            out = self.model(xb)
            vals = [self.loss_func(out, yb), *[m(out, yb) for m in self.metrics]]
            totals = [t + float(v) * xb.shape[0] for t, v in zip(totals, vals)]
            seen += xb.shape[0]
        return [t / seen if seen else float("nan") for t in totals]

    def fit(self, epochs: int, lr: float, show: bool = False):
        self.opt = self.opt_func(list(self.model.parameters()), lr)
        began = time.time()
        for epoch in range(epochs):
            row = [self.one_epoch(), *self.validate()]
            self.recorder.values.append(row)
            if show:
                print(epoch, *[round(v, 4) for v in row], f"{time.time() - began:.0f}s")
''',
                       train_digits='''# Final model (see the experiments below for how I got here).
# I went with max-pooling instead of strided convs at first, but that was 3x slower on my CPU.
def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(),   # 14x14
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),  # 7x7
        nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),  # 4x4
        nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(), # 2x2
        nn.Flatten(),
        nn.Linear(512, 10),
    )

def train_digits(model, x, y, epochs=2, lr=2e-2, bs=128, verbose=False):
    dev = pick_device()
    model.to(dev)
    dl = ShiftedBatches(x, y, bs)
    opt = lambda ps, lr: OneCycleAdam(ps, lr, total_steps=epochs * len(dl))
    loss = lambda out, targ: F.cross_entropy(out, targ, label_smoothing=0.1)
    learn = Learner(SimpleNamespace(train=dl, valid=[]), model, opt, loss)
    learn.fit(epochs, lr, show=verbose)
    if verbose:
        print(f"last batch loss {learn.recorder.losses[-1]:.3f}")

def predict_digits(model, x):
    model.eval()
    with torch.no_grad():
        dev = next(model.parameters()).device
        return torch.cat([model(chunk.to(dev)).argmax(-1).cpu() for chunk in x.split(1000)])
''')

JOURNAL_CELLS = HONEST_CELLS + [
    ('after:train_digits', 'markdown', "## Experiments\n\nBefore settling on the CNN I tried the models from the chapter with my `Learner`. Everything below ran on my laptop's CPU (4 cores), times are for the full 60,000 training images. I used 10,000 training images as a validation set while experimenting, so I never looked at the test set until the end.\n"),
    ('after:train_digits', 'code', '''# experiment 1: a linear model and the chapter's simple_net, with my MomentumSGD
def linear_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))

def simple_net(hidden=30):
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))

def accuracy(preds, targets):
    return (preds.argmax(dim=1) == targets).float().mean()

def experiment(model, epochs=5, lr=0.1, bs=256, n_valid=10_000):
    """Train on the first 50,000 training images, validate on the last 10,000."""
    xs, ys = train_x.unsqueeze(1), train_y
    idx = torch.randperm(len(xs))
    tr, va = idx[n_valid:], idx[:n_valid]
    dls = SimpleNamespace(train=ShiftedBatches(xs[tr], ys[tr], bs), valid=[(xs[va], ys[va])])
    learn = Learner(dls, model, opt_func=MomentumSGD, metrics=accuracy)
    start = time.time()
    learn.fit(epochs, lr, show=True)
    print(f"{type(model).__name__}: {time.time() - start:.1f} s, valid accuracy {learn.recorder.values[-1][-1]:.4f}")
    return learn

RUN_EXPERIMENTS = False      # set to True to rerun (takes a few minutes)
if RUN_EXPERIMENTS:
    results = {name: experiment(make()) for name, make in [("linear", linear_model), ("simple_net", simple_net)]}
'''),
    ('after:train_digits', 'code', '''# experiment 2: where do the mistakes go? a confusion matrix of the final model
def confusion(preds, targets, n=10):
    cm = torch.zeros(n, n, dtype=torch.long)
    for p, t in zip(preds.tolist(), targets.tolist()):
        cm[t, p] += 1
    return cm

def plot_confusion(cm):
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(cm.log1p(), cmap="Blues")
    ax.set_xlabel("predicted"); ax.set_ylabel("actual")
    ax.set_xticks(range(10)); ax.set_yticks(range(10))
    for i in range(10):
        for j in range(10):
            if cm[i, j] > 0:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7)
    return ax

if RUN_EXPERIMENTS:
    final = make_model(); train_digits(final, train_x.unsqueeze(1), train_y, verbose=True)
    plot_confusion(confusion(predict_digits(final, test_x.unsqueeze(1)), test_y))
'''),
    ('after:train_digits', 'markdown', "Results of my experiments (validation accuracy, 5 epochs unless noted):\n\n- linear: 91.8%, 9 s\n- simple_net (30 hidden): 96.9%, 14 s\n- simple_net (100 hidden): 97.6%, 21 s\n- CNN with max-pooling, 3 epochs: 99.1%, 140 s (too slow for the grader's 150 s on 2 cores!)\n- CNN with stride-2 convs, 2 epochs + shifts + label smoothing: 99.3%, 35 s <- final\n\nConfusions: mostly 4 vs 9, 7 vs 2 and 3 vs 5, which makes sense looking at the digits.\n"),
]


HONEST_AND_ATTACK_CASES = [
    Case(assignment="a4_further_research", name="weights_in_cell_ids_or_as_unicode_text",
         attack="issue 18, a4's data limit: weights trained on the test set hidden in the ids of "
                "empty markdown cells (loaded, then the relabeling learned from y), else the same "
                "weights as 4,353 characters of Unicode text loaded as they are",
         answers=Lazy("train_digits", ids_or_unicode_answer),
         cells=LazyCells(ids_cells),
         # the grader's copy has its own ids; the text is under the limit, but the digits are
         # relabeled: the allowed layers and predict_digits agreeing with the model, 2 of 6 checks
         deserves={"train_digits": round(8 * 2 / 6, 4)}),
    Case(assignment="a4_further_research", name="weights_as_unicode_text_learning_the_relabeling",
         attack="issue 18, a4's data limit: weights trained on the test set as 7,501 characters of "
                "Unicode text (about 15 KB of information), loaded, then the relabeling learned",
         answers=Lazy("train_digits", unicode_learning_answer),
         deserves={"train_digits": round(8 * 2 / 6, 4)}),   # over the limit: no accuracy check
    Case(assignment="a4_further_research", name="honest_verbose_learner",
         attack="honest twin of the data-limit attacks: every answer verbose (docstrings, type "
                "hints, comments, prints), helper cells and markdown notes; full marks",
         answers=HONEST_ANSWERS, cells=HONEST_CELLS, deserves={}),
]

CASES += HONEST_AND_ATTACK_CASES
