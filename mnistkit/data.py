"""Ship MNIST offline: verify the bundled file and lay it out the way fastai's downloads are.

``untar_data(URLs.MNIST_SAMPLE)`` returns without touching the network exactly when
``<fastai data folder>/mnist_sample`` exists, so this module writes that folder (and
``mnist_png`` for ``URLs.MNIST``) from ``data/mnist.npz``. Each folder is written under a
temporary name and renamed into place, so fastai never sees a half-written one.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mnistkit.paths import MNIST_NPZ

# SHA-256 of data/mnist.npz as written by scripts/make_mnist_npz.py.
MNIST_SHA256 = "39b9b1ffaa0ba4d8995a616551f0966941fe02a3fe79ba4a9db7373db16d53ad"

SAMPLE_DIGITS = (3, 7)          # the chapter's two classes
SAMPLE_NAME = "mnist_sample"    # what untar_data(URLs.MNIST_SAMPLE) extracts to
FULL_NAME = "mnist_png"         # what untar_data(URLs.MNIST) extracts to
# What graded code sees as mnist_png (the sandbox mounts it there): the same layout, but small
# and made only of MNIST *training* images, so no test label is readable while the grader
# measures a model's accuracy on the test images (assignment a4).
STANDIN_NAME = "mnist_png_grading"
STANDIN_TRAIN_PER_DIGIT, STANDIN_TEST_PER_DIGIT = 100, 50
STANDIN_FIRST_INDEX = 50_000    # images drawn from MNIST training indices 50000-59999
# What graded code sees as mnist_sample/valid (and labels.csv): fastai's valid split holds MNIST
# *test* images, so the sandbox mounts this folder over it. It has the same number of 3s and 7s
# (1010, 1028), all MNIST training images, picked so that the chapter's pixel-similarity
# baseline (mean absolute difference to the mean 3 and mean 7 of train/) is right on exactly as
# many of them as on the real split (926 of the 3s, 1013 of the 7s: 0.9168, 0.9854, 0.9511), so
# every number a notebook prints about the chapter's baseline stays the same while grading.
SAMPLE_STANDIN_NAME = "mnist_sample_grading"
SAMPLE_STANDIN_COUNTS = {3: (1010, 926), 7: (1028, 1013)}   # digit: (images, baseline right)
BASELINE_MARGIN = 1e-3          # only images the baseline decides clearly (no float ties)
# fastai's own defaults for a missing config.ini (fastai.data.external.fastai_cfg).
FASTAI_DEFAULTS = dict(data="data", archive="archive", storage="tmp", model="models")


class DataError(Exception):
    """The shipped data or the target folder is not usable; the message says why."""


@dataclass(frozen=True)
class Mnist:
    train_images: np.ndarray  # (60000, 28, 28) uint8, MNIST's training set in its original order
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray   # (10000, 28, 28) uint8
    test_labels: np.ndarray   # (10000,) uint8


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_mnist(path: Path = MNIST_NPZ, verify: bool = True) -> Mnist:
    """Read the shipped MNIST, refusing a file whose checksum is not the recorded one."""
    if not path.is_file():
        raise DataError(f"{path} is missing: the kit ships it in git (data/mnist.npz)")
    if verify and (actual := sha256_of(path)) != MNIST_SHA256:
        raise DataError(f"{path} has SHA-256 {actual}, expected {MNIST_SHA256}; "
                        "restore it with `git checkout data/mnist.npz` or "
                        "`python scripts/make_mnist_npz.py`")
    with np.load(path, allow_pickle=False) as npz:
        return Mnist(**{name: npz[name] for name in Mnist.__dataclass_fields__})


@functools.lru_cache(maxsize=1)
def shipped_mnist() -> Mnist:
    """``load_mnist()`` once per process (verified, 55 MB): for callers that need it repeatedly,
    such as hidden tests and the kit's own tests. Treat the arrays as read-only."""
    return load_mnist()


def fastai_config(home: Path | None = None):
    """fastai's own config object (fastcore's Config), honouring FASTAI_HOME and config.ini."""
    from fastcore.xtras import Config  # light import; fastai itself takes ~10 s to import
    base = Path(home or os.getenv("FASTAI_HOME", "~/.fastai")).expanduser()
    return Config(base, "config.ini", create=FASTAI_DEFAULTS)


def fastai_data_dir(home: Path | None = None) -> Path:
    return Path(fastai_config(home).path("data"))


def point_config_at(shared_data: Path, home: Path | None = None) -> Path:
    """Write a per-user config.ini whose data folder is a shared (read-only) one.

    fastai opens a lock file in the archive folder on every untar_data call and creates
    config.ini when it is missing, so archive/storage/model stay in this user's own,
    writable FASTAI_HOME, as absolute paths. Returns the config file written.
    """
    shared_data = Path(shared_data).expanduser().absolute()
    for name in (SAMPLE_NAME, FULL_NAME):
        if not (shared_data / name).is_dir():
            raise DataError(f"{shared_data / name} does not exist: run `mnistkit data --into "
                            f"{shared_data}` there first")
    base = Path(home or os.getenv("FASTAI_HOME", "~/.fastai")).expanduser().absolute()
    base.mkdir(parents=True, exist_ok=True)
    config_file = base / "config.ini"
    lines = ["[DEFAULT]", f"data = {shared_data}"]
    lines += [f"{key} = {base / value}" for key, value in FASTAI_DEFAULTS.items() if key != "data"]
    config_file.write_text("\n".join(lines) + "\n")
    for key in ("archive", "storage", "model"):
        (base / FASTAI_DEFAULTS[key]).mkdir(exist_ok=True)
    return config_file


def _sample_files(mnist: Mnist) -> Iterator[tuple[str, np.ndarray]]:
    """(relative path, image) for mnist_sample: 3s and 7s named by their MNIST index."""
    for split, images, labels in (("train", mnist.train_images, mnist.train_labels),
                                  ("valid", mnist.test_images, mnist.test_labels)):
        for digit in SAMPLE_DIGITS:
            for index in np.flatnonzero(labels == digit):
                yield f"{split}/{digit}/{index}.png", images[index]


def _full_files(mnist: Mnist) -> Iterator[tuple[str, np.ndarray]]:
    for split, images, labels in (("training", mnist.train_images, mnist.train_labels),
                                  ("testing", mnist.test_images, mnist.test_labels)):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield f"{split}/{label}/{index}.png", image


def _standin_files(mnist: Mnist) -> Iterator[tuple[str, np.ndarray]]:
    """mnist_png's layout from training images only: per digit, the first 100 (from index
    50000 on) under training/, the next 50 under testing/; named by their MNIST index."""
    labels = mnist.train_labels
    for digit in range(10):
        indices = np.flatnonzero(labels[STANDIN_FIRST_INDEX:] == digit) + STANDIN_FIRST_INDEX
        chosen = indices[:STANDIN_TRAIN_PER_DIGIT + STANDIN_TEST_PER_DIGIT]
        for n, index in enumerate(chosen):
            split = "training" if n < STANDIN_TRAIN_PER_DIGIT else "testing"
            yield f"{split}/{digit}/{index}.png", mnist.train_images[index]


def sample_standin_indices(mnist: Mnist) -> dict[int, np.ndarray]:
    """Training indices of the stand-in valid/3 and valid/7 (see SAMPLE_STANDIN_NAME): in index
    order, the first images the baseline gets right and the first it gets wrong, in the real
    split's proportions."""
    x = mnist.train_images.astype(np.float32) / 255
    labels = mnist.train_labels
    means = {d: x[labels == d].mean(0) for d in SAMPLE_DIGITS}
    chosen = {}
    for digit, (total, right) in SAMPLE_STANDIN_COUNTS.items():
        indices = np.flatnonzero(labels == digit)
        dist = {d: np.abs(x[indices] - means[d]).mean((-1, -2)) for d in SAMPLE_DIGITS}
        other = 7 if digit == 3 else 3
        correct = dist[digit] < dist[other]
        clear = np.abs(dist[digit] - dist[other]) > BASELINE_MARGIN
        good, bad = indices[correct & clear][:right], indices[~correct & clear][:total - right]
        chosen[digit] = np.sort(np.concatenate([good, bad]))
    return chosen


def _sample_standin_files(mnist: Mnist) -> Iterator[tuple[str, np.ndarray]]:
    """mnist_sample's valid/ split made of training images (named by their MNIST index)."""
    for digit, indices in sample_standin_indices(mnist).items():
        for index in indices:
            yield f"valid/{digit}/{index}.png", mnist.train_images[index]


def _labels_csv(names: Iterator[str]) -> str:
    # fastai's mnist_sample/labels.csv: one row per image, label 0 for a three, 1 for a seven.
    rows = ["name,label"]
    rows += [f"{name},{SAMPLE_DIGITS.index(int(name.split('/')[1]))}" for name in names]
    return "\n".join(rows) + "\n"


def _sample_labels_csv(mnist: Mnist) -> str:
    return _labels_csv(name for name, _ in _sample_files(mnist))


def _sample_standin_labels_csv(mnist: Mnist) -> str:
    """labels.csv of the sandbox's mnist_sample: the real train/ rows, the stand-in valid/ rows."""
    train = (name for name, _ in _sample_files(mnist) if name.startswith("train/"))
    valid = (name for name, _ in _sample_standin_files(mnist))
    return _labels_csv(iter([*train, *valid]))


LAYOUTS = {SAMPLE_NAME: _sample_files, FULL_NAME: _full_files, STANDIN_NAME: _standin_files,
           SAMPLE_STANDIN_NAME: _sample_standin_files}
EXTRA_FILES = {SAMPLE_NAME: {"labels.csv": _sample_labels_csv}, FULL_NAME: {}, STANDIN_NAME: {},
               SAMPLE_STANDIN_NAME: {"labels.csv": _sample_standin_labels_csv}}
# The sandbox's view of the data folder: real folder -> the stand-in mounted over (part of) it.
# mnist_png is replaced whole; of mnist_sample only valid/ and labels.csv are (train/ holds
# training images only). See mnistkit.grading.sandbox.
SANDBOX_VIEW = {FULL_NAME: (STANDIN_NAME, ("",)),
                SAMPLE_NAME: (SAMPLE_STANDIN_NAME, ("valid", "labels.csv"))}


Progress = Callable[[str, int, int], None]


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray(image, mode="L").save(path, optimize=False)


def write_dataset(mnist: Mnist, name: str, data_dir: Path, progress: Progress | None = None) -> str:
    """Write one dataset folder atomically; returns 'written' or 'present'."""
    target = data_dir / name
    if target.exists():
        return "present"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=data_dir))
    except OSError as exc:
        raise DataError(_cannot_write(data_dir, exc)) from None
    files = list(LAYOUTS[name](mnist))
    try:
        for folder in {str(Path(rel).parent) for rel, _ in files}:
            (staging / folder).mkdir(parents=True, exist_ok=True)
        for done, (rel, image) in enumerate(files, 1):
            _write_png(staging / rel, image)
            if progress and (done % 500 == 0 or done == len(files)):
                progress(name, done, len(files))
        for filename, make in EXTRA_FILES[name].items():
            (staging / filename).write_text(make(mnist))
        staging.chmod(0o755)  # mkdtemp makes it 0700; a shared folder must be readable by all
        try:
            staging.rename(target)
        except OSError:
            if target.exists():   # another process finished first: theirs is complete too
                return "present"
            raise
    except OSError as exc:      # disk full, quota, a folder made read-only meanwhile
        raise DataError(f"could not write {name}/: {_cannot_write(data_dir, exc)}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return "written"


def _cannot_write(data_dir: Path, exc: OSError) -> str:
    """One line for an OSError writing into ``data_dir`` (no traceback, no errno)."""
    existing = next((p for p in (data_dir, *data_dir.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"cannot write into {data_dir}: {existing} is a file, not a folder"
    return f"cannot write into {data_dir}: {exc.strerror or exc}"


def materialize(data_dir: Path | None = None, progress: Progress | None = None) -> dict[str, Path]:
    """Verify the shipped file, then make sure both datasets exist in ``data_dir``."""
    data_dir = Path(data_dir) if data_dir else fastai_data_dir()
    mnist = load_mnist()
    results = {}
    for name in LAYOUTS:
        status = write_dataset(mnist, name, data_dir, progress)
        results[name] = (data_dir / name, status)
    return results


def stderr_progress(name: str, done: int, total: int) -> None:
    """A one-line progress bar on stderr (a terminal shows it in place)."""
    width = 30
    filled = width * done // total
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r  {name:<17} [{'#' * filled}{'.' * (width - filled)}] {done:>6}/{total}{end}")
    elif done == total or done * 4 // total != (done - 500) * 4 // total:
        sys.stderr.write(f"  {name:<17} {done:>6}/{total} images\n")  # a log: quarters only
    sys.stderr.flush()
