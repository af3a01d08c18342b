"""Preparing MNIST offline: what an instructor relies on before the first class."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistkit import data

from .conftest import ROOT, run_mnistkit

# The chapter prints these pixels of threes[1] = train/3/10000.png, rows/cols 4:10.
CHAPTER_PIXELS = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 29],
    [0, 0, 0, 48, 166, 224],
    [0, 93, 244, 249, 253, 187],
    [0, 107, 253, 253, 230, 48],
    [0, 3, 20, 20, 15, 0]], dtype=np.uint8)


def test_shipped_file_matches_recorded_checksum():
    """Is data/mnist.npz the file whose SHA-256 the kit records?"""
    assert hashlib.sha256(data.MNIST_NPZ.read_bytes()).hexdigest() == data.MNIST_SHA256


def test_shipped_file_is_full_mnist():
    """Does the shipped file hold all 70,000 MNIST images as uint8 with labels?"""
    mnist = data.load_mnist()
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_images.dtype == np.uint8
    assert np.bincount(mnist.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_corrupted_file_is_refused(tmp_path):
    """Does a damaged data file stop with a clear error instead of writing bad images?"""
    bad = tmp_path / "mnist.npz"
    raw = bytearray(data.MNIST_NPZ.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="SHA-256"):
        data.load_mnist(bad)


def test_sample_layout_matches_what_the_book_prints(mnist_data_dir):
    """Are the counts, file names and pixels those the chapter prints?"""
    sample = mnist_data_dir / "mnist_sample"
    counts = {f"{split}/{d}": len(list((sample / split / d).iterdir()))
              for split in ("train", "valid") for d in ("3", "7")}
    assert counts == {"train/3": 6131, "train/7": 6265, "valid/3": 1010, "valid/7": 1028}
    threes = sorted((sample / "train" / "3").iterdir())
    assert [p.name for p in threes[:4]] == ["10.png", "10000.png", "10011.png", "10031.png"]
    assert np.array_equal(np.array(Image.open(threes[1]))[4:10, 4:10], CHAPTER_PIXELS)
    labels = (sample / "labels.csv").read_text().splitlines()
    assert labels[0] == "name,label" and len(labels) == 1 + 6131 + 6265 + 1010 + 1028


def test_full_layout_matches_fastai_mnist(mnist_data_dir):
    """Does mnist_png have training/0..9 and testing/0..9 with every image?"""
    full = mnist_data_dir / "mnist_png"
    assert sorted(p.name for p in full.iterdir()) == ["testing", "training"]
    for split, total in (("training", 60000), ("testing", 10000)):
        folders = sorted(p.name for p in (full / split).iterdir())
        assert folders == [str(d) for d in range(10)]
        assert sum(len(os.listdir(full / split / d)) for d in folders) == total


def test_nearest_mean_baseline_reproduces_chapter(mnist_data_dir):
    """Does the L1 nearest-mean classifier on the PNGs give 0.9168 / 0.9854 / 0.9511?"""
    sample = mnist_data_dir / "mnist_sample"

    def stack(folder):
        return np.stack([np.array(Image.open(p)) for p in sorted(folder.iterdir())]) / 255.0

    mean3, mean7 = stack(sample / "train" / "3").mean(0), stack(sample / "train" / "7").mean(0)
    v3, v7 = stack(sample / "valid" / "3"), stack(sample / "valid" / "7")

    def is_3(x):
        return np.abs(x - mean3).mean((-1, -2)) < np.abs(x - mean7).mean((-1, -2))

    acc3, acc7 = is_3(v3).mean(), 1 - is_3(v7).mean()
    assert (round(acc3, 4), round(acc7, 4), round((acc3 + acc7) / 2, 4)) == (0.9168, 0.9854, 0.9511)


def test_interrupted_write_leaves_no_folder(tmp_path):
    """If writing is interrupted, is there no half-written mnist_sample for fastai to trust?"""
    def explode(name, done, total):
        if done >= 1000:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        data.write_dataset(data.load_mnist(), "mnist_sample", tmp_path, progress=explode)
    assert list(tmp_path.iterdir()) == []


def test_materialize_is_idempotent(tmp_path):
    """Does running it twice keep the first result and write nothing new?"""
    mnist = data.load_mnist()
    assert data.write_dataset(mnist, "mnist_sample", tmp_path) == "written"
    before = (tmp_path / "mnist_sample").stat().st_mtime_ns
    assert data.write_dataset(mnist, "mnist_sample", tmp_path) == "present"
    assert (tmp_path / "mnist_sample").stat().st_mtime_ns == before


def test_data_command_honours_fastai_home(tmp_path, mnist_data_dir):
    """Does `mnistkit data` write where FASTAI_HOME's config.ini says, and report it?"""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.ini").write_text(f"[DEFAULT]\ndata = {mnist_data_dir}\narchive = archive\n"
                                     "storage = tmp\nmodel = models\n")
    proc = run_mnistkit("data", check=True, env={**os.environ, "FASTAI_HOME": str(home)})
    assert f"present  {mnist_data_dir / 'mnist_sample'}" in proc.stdout
    assert "MNIST ready" in proc.stdout


def test_use_refuses_a_folder_without_data(tmp_path):
    """Does pointing students at an empty shared folder fail with a one-line reason?"""
    proc = run_mnistkit("data", "--use", tmp_path, env={**os.environ, "FASTAI_HOME": str(tmp_path / "h")})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "mnistkit data --into" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (make installs it)")
def test_book_calls_work_offline_from_a_read_only_shared_folder(tmp_path, mnist_data_dir):
    """Can a JupyterHub student use a read-only shared data folder with no network at all?"""
    student_home = tmp_path / "student"
    env = {**os.environ, "FASTAI_HOME": str(student_home / ".fastai")}
    run_mnistkit("data", "--use", mnist_data_dir, check=True, env=env)
    venv = Path(sys.prefix)
    script = ("from fastai.vision.all import untar_data, URLs\n"
              "p = untar_data(URLs.MNIST_SAMPLE); q = untar_data(URLs.MNIST)\n"
              "print(p, len((p/'train'/'3').ls()), q)\n")
    # /tmp first: the venv, the data and the student's home (pytest's tmp_path) may live under
    # /tmp (a CI clone does) and are bound back on top of it.
    cmd = ["bwrap", "--ro-bind", "/", "/", "--tmpfs", "/tmp",
           "--ro-bind", str(venv), str(venv),
           "--ro-bind", str(mnist_data_dir), str(mnist_data_dir),
           "--bind", str(student_home), str(student_home),
           "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--die-with-parent",
           str(venv / "bin" / "python"), "-c", script]
    proc = subprocess.run(cmd, env={**env, "HOME": str(student_home)}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{mnist_data_dir / 'mnist_sample'} 6131 {mnist_data_dir / 'mnist_png'}" in proc.stdout
    assert (student_home / ".fastai" / "archive").is_dir()  # the lock files went here
