"""Cells learners keep in their notebooks, for the honest corpus (tests/corpus/honest_*.py):
Kaggle's and Colab's stock first cells, version prints, notes to stderr, warnings, plots, extra
markdown. None of them may cost a point anywhere (issue 18: they cost 7.35 points before)."""

KAGGLE_FIRST_CELL = """\
# This Python 3 environment comes with many helpful analytics libraries installed
# It is defined by the kaggle/python Docker image: https://github.com/kaggle/docker-python
import numpy as np # linear algebra
import pandas as pd # data processing, CSV file I/O (e.g. pd.read_csv)

# Input data files are available in the read-only "../input/" directory
import os
for dirname, _, filenames in os.walk('/kaggle/input'):
    for filename in filenames:
        print(os.path.join(dirname, filename))
"""

COLAB_SETUP = """\
import sys
IN_COLAB = 'google.colab' in sys.modules or 'google.colab' in str(get_ipython())
if IN_COLAB:
    from google.colab import drive
    drive.mount('/content/drive')
%matplotlib inline
%load_ext autoreload
%autoreload 2
"""

PIP_AND_VERSIONS = """\
!pip install -Uqq fastbook 2>/dev/null || echo "no network here: using what is installed"
import torch, fastai, platform
print(f"torch {torch.__version__}, fastai {fastai.__version__}, python {platform.python_version()}")
torch.backends.cudnn.benchmark = True
"""

NOTES_TO_STDERR = """\
import sys, warnings
from os import listdir
print("note to self: re-run the cells above after a restart", file=sys.stderr)
warnings.warn("this is only a reminder, not an error")
with open("my_notes.txt", "w") as handle:
    handle.write("files here: " + ", ".join(sorted(listdir("."))[:5]))
"""

PLOT = """\
import matplotlib.pyplot as plt
plt.rcParams["figure.figsize"] = (4, 3)
xs = torch.linspace(-3, 3, 50)
plt.plot(xs, xs.sigmoid())
plt.title("a quick look")
plt.show()
"""

MARKDOWN_NOTE = """\
**My notes.** I tried a loop first, then broadcasting: the broadcast version is much faster.
"""


def everyday_cells(first: str, middle: str, late: str) -> list[tuple[str, str, str]]:
    """The cells above, spread through a notebook: at the start, after the answer of
    ``first``, ``middle`` and ``late`` (exercise ids), and at the end."""
    return [
        ("start", "code", KAGGLE_FIRST_CELL),
        ("start", "code", COLAB_SETUP),
        (f"after:{first}", "code", PIP_AND_VERSIONS),
        (f"after:{first}", "markdown", MARKDOWN_NOTE),
        (f"after:{middle}", "code", NOTES_TO_STDERR),
        (f"after:{late}", "code", PLOT),
        ("end", "code", "print('done!')\n"),
    ]
