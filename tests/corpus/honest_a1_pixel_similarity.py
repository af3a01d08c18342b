"""Honest a1 answers written the way learners write them (issue 18), for
tests/test_grade_corpus_real.py: one submission, every auto-graded exercise answered in another
idiom than the reference, with helpers in cells of their own and everyday boilerplate cells.
Every exercise must keep full marks (``deserves`` empty: the test requires full marks for each)."""
from .boilerplate import everyday_cells
from .real import Case

ASSIGNMENT = "a1_pixel_similarity"

ANSWERS = {
    "count_images": """\
def count_images(folder):
    counts = {}
    for entry in Path(folder).iterdir():
        if entry.is_dir():
            counts[entry.name] = len(list(entry.iterdir()))
    return counts
""",
    "pixel_layout": """\
def pixel_layout(img) -> tuple:
    shape = tuple(int(s) for s in img.shape)
    return shape if len(shape) == 3 else (*shape, 1)
""",
    "odd_doubled": """\
def odd_doubled(numbers: list[int]) -> list[int]:
    # keep the odd ones, doubled
    return [2 * n for n in numbers if n % 2 != 0]
""",
    "stack_images": """\
def stack_images(images):
    stacked = torch.stack(images)
    return stacked.float().div(255)
""",
    "rank_from_shape": """\
def rank_from_shape(shape):
    rank = len(tuple(shape))
    return rank
""",
    "l1_distance": """\
def l1_distance(a, b):
    return F.l1_loss(a.float(), b.float())
""",
    "rmse_distance": """\
def rmse_distance(a, b):
    return F.mse_loss(a.float(), b.float()).sqrt()
""",
    "doubled_corner": """\
def doubled_corner(n, k=2):
    numbers = tensor(list(range(1, n * n + 1))).view(n, n)
    doubled = numbers * 2
    return doubled[n - k:, n - k:]
""",
    "mnist_distance": """\
def mnist_distance(a, b):
    # mean over the last two axes (height, width), whatever comes before them
    return abs_difference(a, b).mean(dim=tuple(range(-2, 0)))
""",
    "is_3": """\
def is_3(x, mean3, mean7):
    d3, d7 = mnist_distance(x, mean3), mnist_distance(x, mean7)
    return d3 < d7
""",
    "baseline_accuracy": """\
def baseline_accuracy(threes, sevens, mean3, mean7):
    acc3 = is_3(threes, mean3, mean7).float().mean()
    acc7 = (~is_3(sevens, mean3, mean7)).float().mean()
    return acc3, acc7, (acc3 + acc7) / 2
""",
    "validation_metrics_choice": "validation_metrics_choice = 'b'  # metrics on data the model never saw\n",
}

HELPER = ("before:mnist_distance", "code", """\
def abs_difference(a, b):
    \"\"\"Element-wise |a - b|, broadcasting b over a's leading axes.\"\"\"
    return (a - b).abs()
""")

CASES = [Case(ASSIGNMENT, "honest_learner", "honest idioms, a helper cell, Kaggle/Colab boilerplate",
              ANSWERS, {}, cells=everyday_cells("count_images", "l1_distance", "baseline_accuracy")
              + [HELPER])]
