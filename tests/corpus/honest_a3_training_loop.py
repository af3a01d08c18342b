"""Honest a3 answers written the way learners write them (issue 18), for
tests/test_grade_corpus_real.py: one submission, the exercises answered in other idioms than the
reference (helpers in their own cells, a loop over a model's layers, `torch.clamp`, a class of
their own for the ReLU module, type hints), with everyday boilerplate cells. Every exercise must
keep full marks."""
from .boilerplate import everyday_cells
from .real import Case

ASSIGNMENT = "a3_training_loop"

ANSWERS = {
    "flatten_images": """\
def flatten_images(images):
    n, h, w = images.shape
    return images.view(n, h * w)
""",
    "zip_pairs": """\
def zip_pairs(a, b):
    pairs = zip(a, b)
    return list(pairs)
""",
    "init_params": """\
def init_params(size, std=1.0):
    params = torch.randn(size) * std
    return params.requires_grad_()
""",
    "blank_image_quiz": """\
no_bias_output = 0   # every pixel is 0, so xb@weights is 0 whatever the weights
bias_needed_for_blank = True
""",
    "linear1": """\
def linear1(xb: torch.Tensor) -> torch.Tensor:
    return affine(xb, weights, bias)
""",
    "calc_grad": """\
def calc_grad(xb, yb, model):
    loss = mnist_loss(model(xb), yb)
    loss.backward()
""",
    "batch_accuracy": """\
def batch_accuracy(xb, yb):
    predicted_three = torch.sigmoid(xb) > 0.5
    return (predicted_three == yb).float().mean()
""",
    "validate_epoch": """\
def validate_epoch(model):
    accuracies = []
    for xb, yb in valid_dl:
        accuracies.append(batch_accuracy(model(xb), yb))
    mean = torch.stack(accuracies).mean().item()
    return round(mean, 4)
""",
    "simple_net": """\
def simple_net(xb):
    hidden = affine(xb, w1, b1).clamp(min=0)
    return affine(hidden, w2, b2)
""",
    "relu": """\
def relu(x):
    return torch.clamp(x, min=0.0)
""",
    "collapse_linear": """\
def collapse_linear(w1, b1, w2, b2):
    w = w1 @ w2
    b = b1 @ w2 + b2
    return (w, b)
""",
    "relu_module": """\
class MyReLU(nn.Module):
    def forward(self, x):
        return x.clamp(min=0)

def relu_module():
    return MyReLU()
""",
    "count_parameters": """\
def count_parameters(model) -> int:
    total = 0
    for p in model.parameters():
        total += p.numel()
    return total
""",
    "count_weight_layers": """\
def count_weight_layers(model):
    weight_layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return len(weight_layers)
""",
}

AFFINE = ("before:linear1", "code", """\
def affine(x, w, b):
    \"\"\"One linear layer: x @ w + b (the matrix product does the whole batch at once).\"\"\"
    return x @ w + b
""")

CASES = [Case(ASSIGNMENT, "honest_learner", "honest idioms, a helper cell, Kaggle/Colab boilerplate",
              ANSWERS, {}, cells=everyday_cells("zip_pairs", "batch_accuracy", "count_weight_layers")
              + [AFFINE])]
