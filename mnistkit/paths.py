"""Where the kit's folders are. Every module asks here instead of building paths itself."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source"            # instructor notebooks (with solutions), nbgrader's source/
RELEASE = ROOT / "release"          # generated student notebooks, committed
AUTOGRADER = ROOT / "autograder"    # hidden pytest suite, never released
SOLUTIONS = ROOT / "solutions"      # reference solutions the autograder compares with
DATA = ROOT / "data"                # the shipped MNIST file and its provenance
MNIST_NPZ = DATA / "mnist.npz"
