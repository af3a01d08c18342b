"""Checking the reference solutions of a1_pixel_similarity against the chapter's printed numbers.

No notebook runs here: the reference functions get the chapter's images straight from the
shipped MNIST file (``mnistkit.data.load_mnist``), which the PNG folders are made from.
"""
import functools

import pytest
import torch

from mnistkit.data import shipped_mnist
from mnistkit.grading import chapter_data
from solutions import a1_pixel_similarity as ref


mnist = shipped_mnist


@functools.lru_cache(maxsize=None)
def chapter():
    return chapter_data.chapter_data(shipped_mnist())


def test_chapter_sample_image_is_the_second_sorted_three():
    """Is the chapter's `threes[1]` (train/3/10000.png) a 3, with the pixels the chapter prints?"""
    data = mnist()
    names = sorted(f"{i}.png" for i in (data.train_labels == 3).nonzero()[0])
    assert names[1] == f"{chapter_data.A_3_INDEX}.png"
    assert data.train_labels[chapter_data.A_3_INDEX] == 3
    assert data.train_images[chapter_data.A_3_INDEX][4:10, 4:10].tolist() == [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 29],
        [0, 0, 0, 48, 166, 224],
        [0, 93, 244, 249, 253, 187],
        [0, 107, 253, 253, 230, 48],
        [0, 3, 20, 20, 15, 0]]


def test_chapter_image_counts():
    """Are there 6131/6265 training and 1010/1028 validation 3s/7s, as the chapter prints?"""
    data = chapter()
    assert [len(data[k]) for k in ("threes", "sevens", "valid_threes", "valid_sevens")] == \
        [6131, 6265, 1010, 1028]
    assert data["threes"].shape == (6131, 28, 28) and ref.rank_from_shape(data["threes"].shape) == 3


def test_count_images_on_the_sample_folders(mnist_data_dir):
    """Does the reference `count_images` count the chapter's images in the fastai folders?"""
    sample = mnist_data_dir / "mnist_sample"
    assert ref.count_images(sample / "train") == {"3": 6131, "7": 6265}
    assert ref.count_images(sample / "valid") == {"3": 1010, "7": 1028}


def test_stack_images_matches_the_chapter_recipe():
    """Does `stack_images` give the chapter's float rank-3 tensor with pixels in 0..1?"""
    data = mnist()
    imgs = [torch.from_numpy(data.train_images[i]) for i in (chapter_data.A_3_INDEX, 7, 10)]
    stacked = ref.stack_images(imgs)
    assert stacked.shape == (3, 28, 28) and stacked.dtype == torch.float32
    assert torch.equal(stacked[0], chapter()["a_3"])
    assert float(stacked.min()) == 0.0 and float(stacked.max()) == 1.0


@pytest.mark.parametrize("mean, l1, rmse", [("mean3", 0.1114, 0.2021), ("mean7", 0.1586, 0.3021)])
def test_distances_of_the_sample_three(mean, l1, rmse):
    """Does the reference reproduce the chapter's L1 and RMSE distances of its sample 3?"""
    data = chapter()
    a_3, m = data["a_3"], data[mean]
    assert round(float(ref.l1_distance(a_3, m)), 4) == l1
    assert round(float(ref.rmse_distance(a_3, m)), 4) == rmse
    assert round(float(ref.mnist_distance(a_3, m)), 4) == l1
    assert torch.isclose(ref.l1_distance(a_3, m), torch.nn.functional.l1_loss(a_3, m))
    assert torch.isclose(ref.rmse_distance(a_3, m), torch.nn.functional.mse_loss(a_3, m).sqrt())


def test_mnist_distance_broadcasts_over_the_validation_set():
    """Does `mnist_distance` give one distance per validation 3 (shape 1010)?"""
    data = chapter()
    assert ref.mnist_distance(data["valid_threes"], data["mean3"]).shape == (1010,)
    assert (data["valid_threes"] - data["mean3"]).shape == (1010, 28, 28)


def test_baseline_accuracy_is_the_chapters():
    """Does the reference reproduce the chapter's 3-vs-7 accuracy (0.9168, 0.9854, 0.9511)?"""
    data = chapter()
    assert bool(ref.is_3(data["a_3"], data["mean3"], data["mean7"]))
    got = ref.baseline_accuracy(data["valid_threes"], data["valid_sevens"], data["mean3"], data["mean7"])
    assert [round(float(v), 4) for v in got] == [0.9168, 0.9854, 0.9511]


def test_small_questionnaire_answers():
    """Do the reference answers to the short questionnaire items come out as the chapter says?"""
    assert ref.odd_doubled([1, 2, 3, 4, 5, -3]) == [2, 6, 10, -6]
    assert ref.doubled_corner(3).tolist() == [[10, 12], [16, 18]]
    assert ref.pixel_layout(torch.zeros(28, 28, dtype=torch.uint8)) == (28, 28, 1)
    assert ref.pixel_layout(torch.zeros(4, 5, 3, dtype=torch.uint8)) == (4, 5, 3)
    assert ref.rank_from_shape(()) == 0
    assert ref.validation_metrics_choice == "b"
