"""The reference 10-digit model (solutions/all_digits.py) and `mnistkit bench`, on small budgets.

Accuracy targets of the full run (99.3% in 30 s on two CPU cores) are shown by `mnistkit bench`,
never asserted here: these tests check that the pieces learn, agree with each other and repeat.
"""
import json

import numpy as np
import pytest
import torch

from mnistkit.data import load_mnist
from solutions import all_digits as ref

from .conftest import run_mnistkit


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Train in-process on one thread (quicker on a busy machine: idle OpenMP threads spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def small(mnist):
    """4000 training images and 1000 test images (both contain every digit)."""
    return (mnist.train_images[:4000], mnist.train_labels[:4000],
            mnist.test_images[:1000], mnist.test_labels[:1000])


def test_model_maps_a_batch_of_images_to_ten_scores():
    """Does the reference CNN take (n, 1, 28, 28) floats and give (n, 10) scores?"""
    torch.manual_seed(0)
    model = ref.make_model().eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_scale_images_normalises_uint8_images():
    """Are uint8 images scaled to floats with MNIST's mean and std, with a channel axis?"""
    images = np.array([[[0, 255]] * 2], dtype=np.uint8)     # (1, 2, 2)
    x = ref.scale_images(images)
    assert x.dtype == torch.float32 and x.shape == (1, 1, 2, 2)
    assert x[0, 0, 0, 0].item() == pytest.approx(-ref.MNIST_MEAN / ref.MNIST_STD)
    assert x[0, 0, 0, 1].item() == pytest.approx((1 - ref.MNIST_MEAN) / ref.MNIST_STD)


def test_one_short_epoch_on_a_subset_learns_far_above_chance(small):
    """After one epoch on 4000 images, is the test accuracy far above chance (10%)?"""
    train_x, train_y, test_x, test_y = small
    epochs_seen = []
    model, history = ref.fit(train_x, train_y, epochs=1, device="cpu", seed=0,
                             progress=lambda epoch, total, seconds, loss: epochs_seen.append(epoch))
    assert epochs_seen == [1] and len(history.losses) == 1 and history.train_seconds > 0
    predictions = ref.predict(model, test_x, "cpu")
    assert predictions.shape == (1000,) and predictions.dtype == torch.int64
    assert ref.accuracy(predictions, test_y) > 0.85


def test_training_is_deterministic_with_a_seed(small):
    """Do two runs with the same seed give the same weights, and another seed different ones?"""
    train_x, train_y = small[0][:1024], small[1][:1024]

    def weights(seed):
        model, _ = ref.fit(train_x, train_y, epochs=1, batch_size=256, device="cpu", seed=seed,
                           max_shift=2)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    first = weights(0)
    assert torch.equal(first, weights(0))
    assert not torch.equal(first, weights(1))


def test_random_shift_moves_each_image_by_at_most_max_shift():
    """Does the augmentation keep shapes and only translate images, by up to max_shift pixels?"""
    images = torch.zeros(50, 1, 28, 28)
    images[:, 0, 14, 14] = 1.0                                  # one bright pixel in the middle
    shifted = ref.random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    where = shifted[:, 0].flatten(1).argmax(1)
    rows, cols = where // 28, where % 28
    assert shifted.flatten(1).sum(1).eq(1).all()                # nothing lost, nothing added
    assert (rows - 14).abs().max() <= 2 and (cols - 14).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5      # offsets differ per image


def test_nearest_mean_baseline_on_a_subset(small):
    """Is the ten-digit pixel-similarity baseline well above chance, L2 better than L1?"""
    train_x, train_y, test_x, test_y = small
    l2 = ref.nearest_mean_accuracy(train_x, train_y, test_x, test_y)
    l1 = ref.nearest_mean_accuracy(train_x, train_y, test_x, test_y, norm="l1")
    assert 0.70 < l2 < 0.92 and 0.50 < l1 < l2


def test_nearest_mean_classifies_the_means_themselves():
    """Is each digit's mean image classified as that digit?"""
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    train_y = np.repeat(np.arange(10), 20)
    means = ref.digit_means(train_x, train_y)
    images = (means * 255).round().to(torch.uint8)
    assert ref.nearest_mean_predict(means, images).tolist() == list(range(10))


def test_linear_3v7_model_learns(mnist):
    """Does the chapter's linear model, one epoch of SGD, separate the test threes and sevens?"""
    model = ref.train_linear_3v7(mnist.train_images[:6000], mnist.train_labels[:6000], epochs=1)
    assert isinstance(model, torch.nn.Linear) and model.weight.shape == (1, 784)
    assert ref.linear_3v7_accuracy(model, mnist.test_images, mnist.test_labels) > 0.90
    x, y = ref.threes_and_sevens(mnist.test_images, mnist.test_labels)
    assert x.shape == (1010 + 1028, 784) and int(y.sum()) == 1010


def test_bench_prints_a_table_and_a_json_last_line():
    """Does `mnistkit bench` on a quick budget print its table, progress and the JSON fields?"""
    proc = run_mnistkit("bench", "--device", "cpu", "--epochs", "1", "--limit-train", "2000",
                        "--seed", "3", check=True)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    for key in ("device", "accuracy", "train_seconds", "epochs", "torch", "threads",
                "baseline_accuracy", "linear_3v7_accuracy", "linear_3v7_seconds"):
        assert key in result, key
    assert result["device"] == "cpu" and result["epochs"] == 1 and result["seed"] == 3
    assert result["torch"] == torch.__version__ and result["threads"] >= 1
    assert result["train_images"] == 2000 and result["test_images"] == 10000
    assert 0.5 < result["accuracy"] <= 1 and 0.6 < result["baseline_accuracy"] < 0.95
    assert 0.8 < result["linear_3v7_accuracy"] <= 1 and result["linear_3v7_seconds"] > 0
    assert any(line.startswith("reference CNN") for line in lines)
    assert "epoch 1/1" in proc.stderr and "loss" in proc.stderr


def test_bench_resnet_trains_the_chapters_finale_on_a_small_folder(mnist_data_dir):
    """Does `mnistkit bench --resnet` train a3's reference ResNet-18 (not pretrained) for one
    epoch, here on 64 + 64 images, with progress on stderr, a table and the JSON fields?"""
    proc = run_mnistkit("bench", "--resnet", "--device", "cpu", "--limit-train", "64", check=True)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["model"] == "resnet18" and result["pretrained"] is False
    assert (result["train_images"], result["valid_images"], result["epochs"]) == (64, 64, 1)
    assert (result["weight_layers"], result["parameters"]) == (22, 11_704_896)
    assert result["chapter_accuracy"] == 0.9926 and 0 <= result["accuracy"] <= 1
    assert result["seconds"] > 0 and result["cpu_seconds"] > 0
    assert any(line.startswith("ResNet-18, 3 vs 7, 1 epoch") for line in lines)
    assert "training batches" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--device", "tpu"], ["--epochs", "0"], ["--epochs", "two"],
                                  ["--limit-train", "-5"], ["--seed", "x"],
                                  ["--resnet", "--grading"]])
def test_bench_bad_options_give_one_line(args):
    """Do bad bench options get argparse's one-line error and exit code 2?"""
    proc = run_mnistkit("bench", *args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bench_cuda_without_a_gpu_is_a_one_line_error():
    """Does --device cuda on a machine without a GPU say so in one line (exit 1)?"""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = run_mnistkit("bench", "--device", "cuda", "--limit-train", "100")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no CUDA GPU" in proc.stderr


@pytest.mark.slow
def test_grading_bench_prints_its_figures_last():
    """Does `mnistkit bench --grading` grade a small class with one and two workers and end with
    one JSON line holding every figure the README quotes? (Values are not judged here: they are
    this machine's, at its load.)"""
    proc = run_mnistkit("bench", "--grading", "--students", "2", "--assignment",
                        "a1_pixel_similarity", check=True, timeout=900)
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("cpu_s_per_notebook", "wall_s_jobs1", "wall_s_jobs2", "speedup", "peak_pss_mb",
                "class100_minutes", "load_avg", "cpu_source", "cpu_ceiling_speedup"):
        assert key in figures, key
    assert figures["cpu_ceiling_speedup"] > 0   # the machine's, at its load (3.06 under make test)
    assert figures["assignments"] == ["a1_pixel_similarity"] and figures["students"] == 2
    assert figures["cpu_s_per_notebook"]["a1_pixel_similarity"] > 0
    assert figures["peak_pss_mb"] > 100          # torch alone is more than that
    assert figures["wall_s_jobs1"] > 0 and figures["wall_s_jobs2"] > 0
    assert "2 workers" in proc.stderr or "jobs=2" in proc.stderr


def test_grading_bench_refuses_an_unknown_assignment():
    """Does a typo in --assignment give one line and exit 2 (a bad argument, like `mnistkit
    grade`'s), before anything is graded?"""
    proc = run_mnistkit("bench", "--grading", "--assignment", "a9_nope")
    assert proc.returncode == 2 and "no assignment named 'a9_nope'" in proc.stderr
