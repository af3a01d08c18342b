"""`mnistkit bench`: train and time the reference 10-digit model, next to the chapter's models.

Three models on the shipped MNIST (``mnistkit.data.load_mnist()``), all from
``solutions/all_digits.py``:

1. the nearest-digit-mean classifier (the chapter's pixel similarity for ten digits), timed;
2. the chapter's linear 3-vs-7 model (``nn.Linear(784, 1)``, ``mnist_loss``, plain SGD
   lr=1.0, batch 256), validated on the 1010 + 1028 test threes and sevens;
3. the reference CNN, trained on the 60,000 training images and tested on the 10,000 test
   images (never trained on).

``mnistkit bench --resnet`` instead runs the chapter's finale (``run_resnet``): a3's reference
ResNet-18, not pretrained, one epoch of ``fit_one_cycle(1, 0.1)`` on mnist_sample, beside the
chapter's printed 99.26%.

Progress goes to stderr; stdout gets a short table and, as its last line, one JSON object
(``device``, ``accuracy``, ``train_seconds``, ``epochs``, ``torch``, ``threads``, ...), so that
``mnistkit bench | tail -n 1`` is machine-readable. Timings are wall-clock seconds; on a
shared machine they depend on its load (``load_avg`` in the JSON is the 1-minute load average
when the benchmark started; ``train_cpu_seconds`` is the CPU time the training used, summed
over threads, which other work on the machine changes much less).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


class BenchError(Exception):
    """An expected failure (e.g. --device cuda without a GPU); the message says why."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _prefer_passive_openmp() -> str | None:
    """Make idle OpenMP threads sleep instead of spin, unless the user chose otherwise.

    On a machine whose cores are busy with other work (a shared server, CI), spinning threads
    fight over the cores: measured here with 2 threads at load average 4, one training run took
    206 s with OpenMP's default and 39 s with OMP_WAIT_POLICY=PASSIVE (same result). OpenMP reads
    the variable when torch loads it, so this only works before torch is imported; returns the
    policy in force ("default" when none was set before torch was loaded)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ.get("OMP_WAIT_POLICY", "default")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _device_name(device) -> str:
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def _resolve(device_option: str):
    import torch
    if device_option == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA GPU is available here (use --device cpu or auto)")
    from solutions import all_digits
    return all_digits.resolve_device(device_option)


def run(device: str = "auto", epochs: int | None = None, seed: int = 0,
        limit_train: int | None = None, threads: int | None = None,
        linear_epochs: int | None = None) -> dict:
    """Run the benchmark, print the table (stdout) and progress (stderr); return the results."""
    omp_wait_policy = _prefer_passive_openmp()
    import torch
    from mnistkit.data import load_mnist
    from solutions import all_digits as ref

    load_avg = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    if threads:
        torch.set_num_threads(threads)
    dev = _resolve(device)
    epochs = ref.EPOCHS if epochs is None else epochs
    linear_epochs = ref.LINEAR_EPOCHS if linear_epochs is None else linear_epochs

    mnist = load_mnist()
    train_x, train_y = mnist.train_images, mnist.train_labels
    if limit_train:
        train_x, train_y = train_x[:limit_train], train_y[:limit_train]
    test_x, test_y = mnist.test_images, mnist.test_labels
    _log(f"bench: {len(train_x)} training images, {len(test_x)} test images, device "
         f"{_device_name(dev)}, torch {torch.__version__}, {torch.get_num_threads()} threads"
         + (f", load average {load_avg}" if load_avg is not None else ""))

    _log("nearest digit mean (10 digits) ...")
    start = time.perf_counter()
    baseline = ref.nearest_mean_accuracy(train_x, train_y, test_x, test_y)
    baseline_seconds = time.perf_counter() - start

    _log(f"linear 3-vs-7 model, {linear_epochs} epochs of SGD ...")
    start = time.perf_counter()
    linear = ref.train_linear_3v7(train_x, train_y, epochs=linear_epochs, seed=seed)
    linear_seconds = time.perf_counter() - start
    linear_acc = ref.linear_3v7_accuracy(linear, test_x, test_y)
    linear_valid = int(sum(int((test_y == d).sum()) for d in (3, 7)))

    _log(f"reference CNN (10 digits), {epochs} epochs, batch {ref.BATCH_SIZE}, "
         f"peak lr {ref.LR} ...")

    def progress(epoch, total, seconds, loss):
        _log(f"  epoch {epoch}/{total}  {seconds:6.1f} s  loss {loss:.4f}")

    start, cpu_start = time.perf_counter(), time.process_time()
    model, history = ref.fit(train_x, train_y, epochs=epochs, device=dev, seed=seed,
                             progress=progress)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    train_seconds = time.perf_counter() - start
    train_cpu_seconds = time.process_time() - cpu_start   # all threads; < 2x wall = busy cores
    start = time.perf_counter()
    acc = ref.accuracy(ref.predict(model, test_x, dev), test_y)
    predict_seconds = time.perf_counter() - start

    results = dict(
        device=_device_name(dev), accuracy=round(acc, 4), train_seconds=round(train_seconds, 2),
        train_cpu_seconds=round(train_cpu_seconds, 2),
        epochs=epochs, torch=torch.__version__, threads=torch.get_num_threads(),
        baseline_accuracy=round(baseline, 4), baseline_seconds=round(baseline_seconds, 2),
        linear_3v7_accuracy=round(linear_acc, 4), linear_3v7_seconds=round(linear_seconds, 2),
        linear_3v7_epochs=linear_epochs, predict_seconds=round(predict_seconds, 2),
        batch_size=ref.BATCH_SIZE, lr=ref.LR, seed=seed, train_images=len(train_x),
        test_images=len(test_x), final_loss=round(history.losses[-1], 4) if history.losses else None,
        load_avg=load_avg, omp_wait_policy=omp_wait_policy, cpu=platform.processor() or platform.machine(),
    )
    rows = [
        ("nearest digit mean (L2), 10 digits", baseline, f"{len(test_x)} test", baseline_seconds),
        (f"linear 784->1, 3 vs 7, {linear_epochs} epochs", linear_acc, f"{linear_valid} test",
         linear_seconds),
        (f"reference CNN, 10 digits, {epochs} epochs", acc, f"{len(test_x)} test", train_seconds),
    ]
    print(f"{'model':<40} {'accuracy':>9} {'on':>11} {'seconds':>8}")
    for name, value, on, seconds in rows:
        print(f"{name:<40} {value * 100:>8.2f}% {on:>11} {seconds:>8.1f}")
    print(f"device {results['device']}, torch {results['torch']}, {results['threads']} threads; "
          f"seconds = training (the baseline: computing the means and classifying)")
    print(json.dumps(results), flush=True)
    return results


# The chapter's printed result for the same run (fastbook 04_mnist_basics, "Going deeper").
CHAPTER_RESNET_ACCURACY = 0.9926


def _sample_subset(sample: Path, per_class: int, into: Path) -> Path:
    """A copy of mnist_sample's layout holding the first ``per_class`` images (by file name) of
    each class in train/ and valid/, as links to the originals: for quick runs of --resnet."""
    for split in ("train", "valid"):
        for label in ("3", "7"):
            folder = into / split / label
            folder.mkdir(parents=True)
            for image in sorted((sample / split / label).iterdir())[:per_class]:
                (folder / image.name).symlink_to(image)
    return into


def run_resnet(device: str = "auto", seed: int = 0, limit_train: int | None = None,
               threads: int | None = None) -> dict:
    """The chapter's finale: a3's reference ``image_dls`` + ``resnet_learner`` (ResNet-18, not
    pretrained) trained with ``fit_one_cycle(1, 0.1)`` on mnist_sample, as the a3 notebook's
    locked epoch cell does. Prints a table and one JSON line (stdout), progress on stderr."""
    omp_wait_policy = _prefer_passive_openmp()
    import torch
    from mnistkit import data
    from solutions import a3_training_loop as ref

    load_avg = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    if threads:
        torch.set_num_threads(threads)
    dev = _resolve(device)
    sample = data.materialize()["mnist_sample"][0]
    with tempfile.TemporaryDirectory(prefix="mnistkit-bench-") as scratch:
        if limit_train:
            sample = _sample_subset(sample, max(limit_train // 2, 1), Path(scratch) / "sample")
        _log(f"bench --resnet: ResNet-18 (not pretrained) on {sample}, device {_device_name(dev)}, "
             f"torch {torch.__version__}, {torch.get_num_threads()} threads"
             + (f", load average {load_avg}" if load_avg is not None else ""))
        import warnings
        warnings.filterwarnings("ignore", category=FutureWarning)   # torch.jit, from fastai
        import fastai.vision.all  # noqa: F401  (what the notebook imports: every callback)
        from fastai.callback.core import Callback

        class Quarters(Callback):
            """Progress on stderr at each quarter of the training batches (fastai's bar is off)."""
            def after_batch(self):
                if self.training and (self.iter + 1) % max(self.n_iter // 4, 1) == 0:
                    _log(f"  {self.iter + 1}/{self.n_iter} training batches  "
                         f"{time.perf_counter() - start:6.1f} s  loss {float(self.loss.detach()):.4f}")

        torch.manual_seed(seed)
        dls = ref.image_dls(sample)
        dls.to(dev)
        learn = ref.resnet_learner(dls)
        learn.logger = lambda row: _log("  epoch, train loss, valid loss, accuracy, time: "
                                        + ", ".join(map(str, row)))   # stdout: table + JSON
        _log(f"one epoch: {len(dls.train)} training batches of {dls.bs} images (80-95 s on 2 CPU cores) ...")
        start, cpu_start = time.perf_counter(), time.process_time()
        with learn.no_bar():
            learn.fit_one_cycle(1, 0.1, cbs=Quarters())
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        train_loss, valid_loss, accuracy = (float(v) for v in learn.recorder.values[-1])
        results = dict(
            model="resnet18", pretrained=False, device=_device_name(dev),
            accuracy=round(accuracy, 4), chapter_accuracy=CHAPTER_RESNET_ACCURACY,
            seconds=round(seconds, 2), cpu_seconds=round(cpu_seconds, 2),
            train_loss=round(train_loss, 4), valid_loss=round(valid_loss, 4),
            train_images=len(dls.train_ds), valid_images=len(dls.valid_ds), epochs=1, lr=0.1,
            parameters=ref.count_parameters(learn.model),
            weight_layers=ref.count_weight_layers(learn.model), seed=seed,
            torch=torch.__version__, threads=torch.get_num_threads(), load_avg=load_avg,
            omp_wait_policy=omp_wait_policy)
    print(f"{'model':<40} {'accuracy':>9} {'on':>11} {'seconds':>8}")
    print(f"{'ResNet-18, 3 vs 7, 1 epoch (one-cycle)':<40} {accuracy * 100:>8.2f}% "
          f"{str(results['valid_images']) + ' valid':>11} {seconds:>8.1f}")
    print(f"the chapter printed {CHAPTER_RESNET_ACCURACY:.2%}; device {results['device']}, "
          f"{results['threads']} threads, {cpu_seconds:.0f} CPU-s; seconds = training + validation")
    print(json.dumps(results), flush=True)
    return results
