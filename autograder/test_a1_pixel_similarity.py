"""Hidden tests for a1_pixel_similarity (notebook `pixel_similarity`).

One group of checks per exercise id. Inputs are random (seeded by the course seed) or drawn
from the shipped MNIST at random, so no check can be passed by an answer tuned to the
notebook's visible self-checks.

What the grader trusts (issue 10): only plain data the student's functions return, compared
here with the reference computed here, and the notebook's source, read here.
- Comparisons are kind-strict (``mnistkit.grading.expect``): a True/False answer never matches
  a number, and a number never matches True/False.
- Exercises that build on another (`is_3` on `mnist_distance`, `baseline_accuracy` on `is_3`)
  are checked with ``mnistkit.grading.isolation.Answers`` tables: the dependency's results on
  exactly the inputs a right answer hands it, computed here with the reference and sent as
  data, so one bug costs points once and no reference code or function enters the sandbox.
- Technique checks (`odd_doubled`'s list comprehension, `mnist_distance`'s broadcasting) are
  decided from the answer's syntax tree (``mnistkit.grading.source_checks``), never from
  anything counted inside the sandbox, where the student's code could patch the counter.
"""
from __future__ import annotations

import ast
import functools
import numbers

import numpy as np
import pytest
import torch

from mnistkit.data import shipped_mnist
from mnistkit.grading import call_probes, chapter_data, folder_probes, isolation, source_checks
from mnistkit.grading.expect import check, expect_close, expect_dtype, expect_number, expect_shape
from mnistkit.grading.seeded import rand as images   # random float32 images in 0..1
from solutions import a1_pixel_similarity as ref

ex = pytest.mark.exercise

# --- shared helpers ----------------------------------------------------------------------------

mnist = shipped_mnist


@functools.lru_cache(maxsize=None)
def chapter():
    return chapter_data.chapter_data(shipped_mnist())


def pick(rng, t: torch.Tensor, n: int) -> torch.Tensor:
    """n distinct rows of t, at random."""
    return t[torch.from_numpy(rng.choice(len(t), size=n, replace=False))]


# --- count_images (questionnaire 2) -----------------------------------------------------------

def expect_counts(got, want: dict, what: str):
    """A dict with the folders' names as keys and whole numbers of files as values (a count
    of True is not 1)."""
    check(isinstance(got, dict), f"{what} should be a dict, got {type(got).__name__}")
    check(set(got) == set(want),
          f"{what} has the keys {sorted(map(str, got))[:12]}; expected one key per label folder "
          f"({len(want)} folders), named as the folders are")
    not_counts = sorted(k for k in want
                        if isinstance(got[k], bool) or not isinstance(got[k], numbers.Integral))
    check(not not_counts, f"{what} gives something other than a whole number for the label(s) "
                          f"{not_counts}")
    wrong = sorted(k for k in want if got[k] != want[k])
    check(not wrong, f"{what} has wrong counts for the label(s) {wrong}")


@ex("count_images")
def test_count_images_sample_validation_folder(student):
    got = isolation.probe(student, "count_images", folder_probes.count_dataset_folder,
                          dataset="MNIST_SAMPLE", split="valid")
    labels = mnist().test_labels
    expect_counts(got, {str(d): int((labels == d).sum()) for d in (3, 7)},
                  "count_images(path/'valid') on MNIST_SAMPLE")


# The full MNIST is not what graded code sees (the sandbox mounts a stand-in without the test
# labels), so the ten-label checks count a folder tree the grader makes up, in the same layout.
def expect_tree_counts(student, rng, labels, what):
    counts = [int(c) for c in rng.integers(1, 40, len(labels))]
    got = isolation.probe(student, "count_images", folder_probes.count_made_up_tree, labels=labels,
                          counts=counts)
    expect_counts(got, dict(zip(labels, counts)), what)


@ex("count_images")
def test_count_images_ten_label_folders(student, rng):
    expect_tree_counts(student, rng, [str(d) for d in range(10)],
                       "count_images on a folder laid out like the full MNIST's (ten labels)")


@ex("count_images")
def test_count_images_other_label_names(student, rng):
    labels = sorted({f"label_{int(v)}" for v in rng.integers(0, 1000, 5)})
    expect_tree_counts(student, rng, labels, "count_images on a folder whose labels are words")


# --- pixel_layout (questionnaire 1) -----------------------------------------------------------

def expect_layout(got, want, on: str):
    check(isinstance(got, (tuple, list)) and len(got) == 3,
          f"pixel_layout should return a tuple (height, width, channels) on {on}, got {got!r:.60}")
    check(all(isinstance(v, int) and not isinstance(v, bool) for v in got),
          f"pixel_layout should return Python ints on {on}")
    names = ("height", "width", "channels")
    wrong = [n for n, g, w in zip(names, got, want) if g != w]
    check(not wrong, f"pixel_layout gives the wrong {', '.join(wrong)} on {on}")


def random_uint8(rng, *shape) -> torch.Tensor:
    return torch.from_numpy(rng.integers(0, 256, size=shape, dtype=np.uint8))


@ex("pixel_layout")
def test_pixel_layout_greyscale(student, rng):
    h, w = rng.choice(np.arange(5, 60), size=2, replace=False).tolist()
    got = student.call("pixel_layout", random_uint8(rng, h, w))
    expect_layout(got, (h, w, 1), "a greyscale image that is not square")


@ex("pixel_layout")
def test_pixel_layout_colour(student, rng):
    h, w = rng.choice(np.arange(5, 60), size=2, replace=False).tolist()
    got = student.call("pixel_layout", random_uint8(rng, h, w, 3))
    expect_layout(got, (h, w, 3), "a colour image that is not square")


@ex("pixel_layout")
def test_pixel_layout_mixed_images(student, rng):
    for _ in range(4):
        h, w = rng.integers(1, 80, size=2).tolist()
        colour = bool(rng.integers(0, 2))
        img = random_uint8(rng, h, w, 3) if colour else random_uint8(rng, h, w)
        got = student.call("pixel_layout", img)
        expect_layout(got, (h, w, 3 if colour else 1),
                      f"a {'colour' if colour else 'greyscale'} image of random size")


# --- odd_doubled (questionnaire 4) ------------------------------------------------------------

def expect_list(got, want, on: str):
    check(isinstance(got, list), f"odd_doubled should return a list on {on}, got {type(got).__name__}")
    check(got == want, f"odd_doubled returns the wrong list on {on}")


@ex("odd_doubled")
def test_odd_doubled_random_list(student, rng):
    xs = rng.integers(0, 100, size=int(rng.integers(10, 30))).tolist()
    expect_list(student.call("odd_doubled", xs), ref.odd_doubled(xs), "a random list of integers")


@ex("odd_doubled")
def test_odd_doubled_negative_numbers(student, rng):
    xs = rng.integers(-50, 50, size=20).tolist() + [-1, -3]
    expect_list(student.call("odd_doubled", xs), ref.odd_doubled(xs), "a list with negative numbers")


@ex("odd_doubled")
def test_odd_doubled_nothing_odd(student, rng):
    xs = (rng.integers(0, 50, size=8) * 2).tolist()
    expect_list(student.call("odd_doubled", xs), [], "a list of even numbers only")
    expect_list(student.call("odd_doubled", []), [], "an empty list")


@ex("odd_doubled")
def test_odd_doubled_uses_a_list_comprehension(student, rng, notebook):
    """Technique, from the answer's source (read here): a list comprehension, no loop
    statement, nothing the grader cannot read; and right values."""
    code = source_checks.function_code(notebook, "odd_doubled")
    check(any(isinstance(node, ast.ListComp) for fn in code.nodes.values() for node in ast.walk(fn)),
          "odd_doubled should build its result with a list comprehension ([... for ... in ... if ...])")
    statements = [loop for loop in source_checks.python_loops(code) if "loop" in loop]
    check(not statements, f"odd_doubled uses {', '.join(statements)}: build the list with one list "
                          "comprehension instead")
    source_checks.expect_no_evasion(notebook, "odd_doubled")
    xs = rng.integers(0, 1000, size=12).tolist()
    expect_list(student.call("odd_doubled", xs), ref.odd_doubled(xs), "a random list of integers")


# --- stack_images (questionnaire 5) -----------------------------------------------------------

@ex("stack_images")
def test_stack_images_shape_and_values(student, rng):
    n, h, w = int(rng.integers(2, 12)), int(rng.integers(5, 30)), int(rng.integers(5, 30))
    imgs = [random_uint8(rng, h, w) for _ in range(n)]
    got = student.call("stack_images", imgs)
    expect_close(got, ref.stack_images(imgs), "stack_images(images)",
                 on=f"a list of {n} random {h} x {w} images", rtol=1e-6, atol=1e-6)


@ex("stack_images")
def test_stack_images_is_float32(student, rng):
    imgs = [random_uint8(rng, 28, 28) for _ in range(3)]
    got = student.call("stack_images", imgs)
    expect_dtype(got, torch.float32, "stack_images(images)")


@ex("stack_images")
def test_stack_images_single_image_is_still_rank_3(student, rng):
    h, w = int(rng.integers(5, 30)), int(rng.integers(5, 30))
    imgs = [random_uint8(rng, h, w)]
    got = student.call("stack_images", imgs)
    expect_shape(got, (1, h, w), "stack_images of a list holding one image")


@ex("stack_images")
def test_stack_images_black_and_white_extremes(student, rng):
    img = torch.zeros(6, 7, dtype=torch.uint8)
    img[::2] = 255
    got = student.call("stack_images", [img, 255 - img])
    expect_close(got, ref.stack_images([img, 255 - img]), "stack_images(images)",
                 on="images of pure 0 and 255 pixels", rtol=1e-6, atol=1e-6)


# --- rank_from_shape (questionnaire 6) --------------------------------------------------------

def expect_rank(got, want, on: str):
    check(isinstance(got, int) and not isinstance(got, bool),
          f"rank_from_shape should return an int on {on}, got {type(got).__name__}")
    check(got == want, f"rank_from_shape gives the wrong rank on {on}")


@ex("rank_from_shape")
def test_rank_from_shape_random_shapes(student, rng):
    for _ in range(6):
        shape = tuple(rng.integers(1, 3000, size=int(rng.integers(1, 7))).tolist())
        expect_rank(student.call("rank_from_shape", shape), len(shape), "a random tuple of axis lengths")
        expect_rank(student.call("rank_from_shape", list(shape)), len(shape), "a list of axis lengths")


@ex("rank_from_shape")
def test_rank_from_shape_scalar(student):
    expect_rank(student.call("rank_from_shape", ()), 0, "the shape () of a single number")


@ex("rank_from_shape")
def test_rank_from_shape_of_a_real_tensor(student, rng):
    shape = [int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 6)))]
    got = isolation.probe(student, "rank_from_shape", call_probes.rank_of_a_tensor_shape, shape=shape)
    expect_rank(got, len(shape), "a torch.Size (a tensor's .shape)")


# --- l1_distance and rmse_distance (questionnaire 7) ------------------------------------------

DISTANCES = {"l1_distance": ref.l1_distance, "rmse_distance": ref.rmse_distance}


def check_distance(student, name, a, b, on):
    """A rank-0 floating-point tensor (the notebook asks for one): a Python float, True/False,
    integers or a 1-element tensor are wrong."""
    got = student.call(name, a, b)
    expect_close(got, DISTANCES[name](a, b), f"{name}(a, b)", on=on)


@pytest.mark.parametrize("name", [pytest.param(n, marks=ex(n)) for n in DISTANCES])
def test_distance_random_images(student, rng, name):
    check_distance(student, name, images(rng, 28, 28), images(rng, 28, 28), "two random 28 x 28 images")


@pytest.mark.parametrize("name", [pytest.param(n, marks=ex(n)) for n in DISTANCES])
def test_distance_other_shapes(student, rng, name):
    n = int(rng.integers(2, 9))
    check_distance(student, name, images(rng, n, 5, 7), images(rng, n, 5, 7), f"rank-3 tensors ({n}, 5, 7)")
    m = int(rng.integers(3, 50))
    check_distance(student, name, images(rng, m) * 4 - 2, images(rng, m) * 4 - 2,
                   "rank-1 tensors with negative values")


@pytest.mark.parametrize("name", [pytest.param(n, marks=ex(n)) for n in DISTANCES])
def test_distance_real_digits(student, rng, name):
    data = chapter()
    a = pick(rng, data["valid_threes"], 1)[0]
    check_distance(student, name, a, data["mean3"], "a real validation 3 and the mean 3")
    check_distance(student, name, a, data["mean7"], "a real validation 3 and the mean 7")


# --- doubled_corner (questionnaire 9) ---------------------------------------------------------

def check_corner(student, n, k, on):
    """A k x k tensor of whole numbers; the notebook does not fix the dtype, so floats holding
    them are right too (``kinds="if"``); True/False values never are."""
    got = student.call("doubled_corner", n, k)
    check(isinstance(got, torch.Tensor), f"doubled_corner should return a tensor, got {type(got).__name__}")
    expect_close(got, ref.doubled_corner(n, k), f"doubled_corner({n}, {k})", on=on, kinds="if")


@ex("doubled_corner")
def test_doubled_corner_the_chapter_question(student):
    check_corner(student, 3, 2, "the chapter's 3 x 3 grid")


@ex("doubled_corner")
def test_doubled_corner_bigger_grids(student, rng):
    for n in sorted(rng.choice(np.arange(4, 12), size=2, replace=False).tolist()):
        check_corner(student, n, 2, f"a grid of {n} x {n} numbers")


@ex("doubled_corner")
def test_doubled_corner_other_block_sizes(student, rng):
    n = int(rng.integers(5, 10))
    k = int(rng.integers(3, n))
    check_corner(student, n, k, "a random grid and block size")
    check_corner(student, n, 1, "a 1 x 1 block")


@ex("doubled_corner")
def test_doubled_corner_whole_grid(student, rng):
    n = int(rng.integers(2, 8))
    check_corner(student, n, n, "a block as large as the grid")


# --- mnist_distance (questionnaire 10) --------------------------------------------------------

@ex("mnist_distance")
def test_mnist_distance_one_image_to_one_image(student, rng):
    a, b = images(rng, 28, 28), images(rng, 28, 28)
    got = student.call("mnist_distance", a, b)
    expect_close(got, ref.mnist_distance(a, b), "mnist_distance(image, image)", on="two random images")


@ex("mnist_distance")
def test_mnist_distance_batch_against_one_image(student, rng):
    n = int(rng.integers(2, 40))
    batch, image = images(rng, n, 28, 28), images(rng, 28, 28)
    got = student.call("mnist_distance", batch, image)
    expect_close(got, ref.mnist_distance(batch, image), "mnist_distance(batch, image)",
                 on=f"a random batch of {n} images")


@ex("mnist_distance")
def test_mnist_distance_other_image_sizes(student, rng):
    n, h, w = int(rng.integers(2, 20)), int(rng.integers(3, 20)), int(rng.integers(3, 20))
    batch, image = images(rng, n, h, w), images(rng, h, w)
    got = student.call("mnist_distance", batch, image)
    expect_close(got, ref.mnist_distance(batch, image), "mnist_distance(batch, image)",
                 on=f"a batch of {n} images of {h} x {w} pixels")


@ex("mnist_distance")
def test_mnist_distance_batch_of_batches(student, rng):
    m, n = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    batch, image = images(rng, m, n, 28, 28), images(rng, 28, 28)
    got = student.call("mnist_distance", batch, image)
    expect_close(got, ref.mnist_distance(batch, image), "mnist_distance(batches, image)",
                 on=f"a rank-4 tensor of shape ({m}, {n}, 28, 28)")


@ex("mnist_distance")
def test_mnist_distance_broadcasts_without_a_python_loop(student, rng, notebook):
    """Technique, decided from the answer's source read here (its `def` and the notebook
    functions it calls): no Python loop, nothing the grader cannot read. Nothing counted in
    the sandbox: the student's code owns it and could patch or dodge any counter."""
    large, image = images(rng, 60, 28, 28), images(rng, 28, 28)
    got = student.call("mnist_distance", large, image)
    expect_close(got, ref.mnist_distance(large, image), "mnist_distance(batch, image)",
                 on="a random batch of 60 images")
    source_checks.expect_no_python_loop(
        notebook, "mnist_distance",
        "use broadcasting on the whole batch instead of a Python loop over the images")
    source_checks.expect_no_evasion(notebook, "mnist_distance")


# --- is_3 (questionnaire 3) -------------------------------------------------------------------

def distance_answers(x, *means) -> isolation.Answers:
    """The grader's `mnist_distance` between ``x`` and each mean: the calls a right `is_3` makes
    (either argument order), answered with the reference's results; any other call reaches the
    student's own `mnist_distance`."""
    table = isolation.Answers("mnist_distance")
    for mean in means:
        table.add(x, mean, result=ref.mnist_distance(x, mean))
        table.add(mean, x, result=ref.mnist_distance(mean, x))
    return table


def student_is_3(student, x, mean3, mean7):
    return isolation.call(student, "is_3", x, mean3, mean7,
                          stand_ins=[distance_answers(x, mean3, mean7)])


def check_is_3(student, x, mean3, mean7, on):
    """One bool per image (bool only: 1.0/0.0 are not True/False), exact."""
    expect_close(student_is_3(student, x, mean3, mean7), ref.is_3(x, mean3, mean7),
                 "is_3(x, mean3, mean7)", on=on)


@ex("is_3")
def test_is_3_random_batch_and_means(student, rng):
    n = int(rng.integers(20, 60))
    check_is_3(student, images(rng, n, 28, 28), images(rng, 28, 28), images(rng, 28, 28),
               f"a random batch of {n} images and random means")


@ex("is_3")
def test_is_3_one_image(student, rng):
    mean3, mean7 = images(rng, 28, 28), images(rng, 28, 28)
    for x in (mean3 * 0.9 + 0.05, mean7 * 0.9 + 0.05):   # one near each mean: both answers occur
        check_is_3(student, x, mean3, mean7, "one image and random means")


@ex("is_3")
def test_is_3_returns_booleans(student, rng):
    x, mean3, mean7 = images(rng, 5, 28, 28), images(rng, 28, 28), images(rng, 28, 28)
    got = student_is_3(student, x, mean3, mean7)
    expect_dtype(got, torch.bool, "is_3(x, mean3, mean7)")
    expect_close(got, ref.is_3(x, mean3, mean7), "is_3(x, mean3, mean7)",
                 on="a random batch of 5 images and random means")


@ex("is_3")
def test_is_3_real_validation_digits(student, rng):
    data = chapter()
    x = torch.cat([pick(rng, data["valid_threes"], 150), pick(rng, data["valid_sevens"], 150)])
    check_is_3(student, x, data["mean3"], data["mean7"], "300 real validation 3s and 7s")


# --- baseline_accuracy (questionnaires 3 and 11) ----------------------------------------------

def check_accuracy(student, threes, sevens, mean3, mean7, on, tol=1e-6):
    """`is_3` answered from the grader's table for the two calls a right answer makes (and
    `mnist_distance` likewise, for an answer that reaches it through its own `is_3`)."""
    is_3_answers = isolation.Answers("is_3")
    for x in (threes, sevens):
        is_3_answers.add(x, mean3, mean7, result=ref.is_3(x, mean3, mean7))
    distances = isolation.Answers("mnist_distance")
    for x in (threes, sevens):
        for mean in (mean3, mean7):
            distances.add(x, mean, result=ref.mnist_distance(x, mean))
    got = isolation.call(student, "baseline_accuracy", threes, sevens, mean3, mean7,
                         stand_ins=[is_3_answers, distances])
    check(isinstance(got, (tuple, list)) and len(got) == 3,
          f"baseline_accuracy should return three numbers (3s, 7s, average) on {on}")
    want = ref.baseline_accuracy(threes, sevens, mean3, mean7)
    names = ("the accuracy on the 3s", "the accuracy on the 7s", "the average accuracy")
    for g, w, name in zip(got, want, names):
        check(abs(expect_number(g, name) - float(w)) <= tol, f"{name} is wrong on {on}")


@ex("baseline_accuracy")
def test_baseline_accuracy_real_digits(student, rng):
    data = chapter()
    threes, sevens = pick(rng, data["valid_threes"], 400), pick(rng, data["valid_sevens"], 500)
    check_accuracy(student, threes, sevens, data["mean3"], data["mean7"],
                   "random subsets of the real validation 3s and 7s")


@ex("baseline_accuracy")
def test_baseline_accuracy_unequal_random_sets(student, rng):
    mean3, mean7 = images(rng, 28, 28), images(rng, 28, 28)
    n3, n7 = int(rng.integers(5, 15)), int(rng.integers(40, 80))
    # images near one mean or the other, in known proportions, so accuracies are far from 0 and 1
    def near_means(n, share_near_mean3):
        near3 = torch.from_numpy(rng.random((n, 1, 1)) < share_near_mean3)
        return torch.where(near3, mean3, mean7) + images(rng, n, 28, 28) * 0.3
    threes, sevens = near_means(n3, 0.7), near_means(n7, 0.4)
    check_accuracy(student, threes, sevens, mean3, mean7, f"{n3} threes and {n7} sevens (unequal sizes)")


@ex("baseline_accuracy")
def test_baseline_accuracy_swapped_means(student, rng):
    data = chapter()
    threes, sevens = pick(rng, data["valid_threes"], 200), pick(rng, data["valid_sevens"], 300)
    check_accuracy(student, threes, sevens, data["mean7"], data["mean3"],
                   "real digits with the two means swapped (accuracies far below 0.5)")


# --- validation_metrics_choice (questionnaire 11) ---------------------------------------------

@ex("validation_metrics_choice")
def test_validation_metrics_choice(student):
    got = student.get("validation_metrics_choice")
    check(isinstance(got, str), 'validation_metrics_choice should be a letter in quotes, like "a"')
    check(got.strip().lower() == ref.validation_metrics_choice,
          "validation_metrics_choice is not the best statement")
