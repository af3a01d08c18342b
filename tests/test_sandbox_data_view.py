"""Can graded code learn a test label from the data it sees (issue 10, class 6a)?

The sandbox mounts a view of the fastai data folder (mnistkit.grading.sandbox.data_view). This
walks that whole view from inside a sandbox, hashes the pixels of every image there, and checks
them against MNIST's test split in data/mnist.npz: no test image (hence no test label) may be
present, and every other file must be a labels.csv naming only images of the view. The rest of
the sandbox's file system is searched for MNIST-like data files too (by name)."""
from __future__ import annotations

import hashlib
import shutil
import time

import pytest

from mnistkit import data

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

WALK = r'''
import hashlib, os, re
import numpy as np
from PIL import Image
images, others, suspects = {}, {}, []
for folder, dirs, files in os.walk("/data"):
    for name in files:
        path = os.path.join(folder, name)
        if name.endswith(".png"):
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("L"), dtype=np.uint8)
            images[path] = [list(pixels.shape), hashlib.sha256(pixels.tobytes()).hexdigest()]
        else:
            with open(path, "rb") as fh:
                others[path] = fh.read().decode("utf-8", "replace")
code = re.compile(r"\.(py|pyc|pyi|h|hpp|html|txt|md|rst|json)$")
for top in ("/usr", "/opt", "/etc", os.path.expanduser("~")) + tuple(extra):
    for folder, dirs, files in os.walk(top):
        for name in files:
            if re.search(r"mnist(?!kit)|ubyte|t10k", name, re.I) and not code.search(name):
                suspects.append(os.path.join(folder, name))
result = dict(images=images, others=others, suspects=suspects)
'''


def pixel_hash(image) -> str:
    return hashlib.sha256(image.astype("uint8").tobytes()).hexdigest()


def test_no_test_image_in_the_sandbox_data_view(tmp_path, mnist_data_dir):
    """Is every image graded code can see a training image, and nothing else there a label?"""
    import nbformat
    import sys
    from nbformat.v4 import new_code_cell, new_notebook
    from mnistkit.grading.sandbox import Limits, SandboxStudent
    path = tmp_path / "view.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
    limits = Limits(cell_seconds=60, request_seconds=300, grace_seconds=5, preload=())
    start = time.perf_counter()
    student = SandboxStudent(path, limits=limits, data_dir=mnist_data_dir)
    try:
        view = student.run(WALK, extra=[sys.prefix, sys.base_prefix])
    finally:
        student.close()
    mnist = data.shipped_mnist()
    test_hashes = {pixel_hash(im) for im in mnist.test_images}
    train_hashes = {pixel_hash(im) for im in mnist.train_images}
    images = view["images"]
    # the view holds what the notebooks use: mnist_sample and the mnist_png stand-in
    assert sum(p.startswith("/data/fastai/mnist_sample/valid/") for p in images) == 1010 + 1028
    assert sum(p.startswith("/data/fastai/mnist_png/") for p in images) == 10 * (
        data.STANDIN_TRAIN_PER_DIGIT + data.STANDIN_TEST_PER_DIGIT)
    leaked = sorted(p for p, (_, h) in images.items() if h in test_hashes and h not in train_hashes)
    assert leaked == [], f"{len(leaked)} MNIST test images in the sandbox, e.g. {leaked[:3]}"
    unknown = sorted(p for p, (_, h) in images.items() if h not in train_hashes)
    assert unknown == [], f"images that are not MNIST training images: {unknown[:3]}"
    assert all(shape == [28, 28] for shape, _ in images.values())
    for file, text in view["others"].items():
        assert file.endswith("/labels.csv"), f"unexpected file in the data view: {file}"
        root = file.rsplit("/", 1)[0]
        rows = text.splitlines()[1:]
        missing = [r for r in rows if f"{root}/{r.split(',')[0]}" not in images]
        assert rows and missing == [], f"{file} names images that are not in the view: {missing[:3]}"
    assert view["suspects"] == []
    print(f"audited {len(images)} images in {time.perf_counter() - start:.0f} s")


def test_the_audit_sees_test_images_when_they_are_there(tmp_path):
    """Would the audit notice the real mnist_sample (whose valid/ holds test images)?"""
    mnist = data.shipped_mnist()
    test_hashes = {pixel_hash(im) for im in mnist.test_images}
    real_valid = [im for rel, im in data._sample_files(mnist) if rel.startswith("valid/")]
    standin = [im for _, im in data._sample_standin_files(mnist)]
    assert all(pixel_hash(im) in test_hashes for im in real_valid)
    assert not any(pixel_hash(im) in test_hashes for im in standin)
