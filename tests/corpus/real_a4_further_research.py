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
"""
from __future__ import annotations

import numpy as np

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
