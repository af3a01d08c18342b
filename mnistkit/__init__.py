"""mnistkit: the course kit for fastbook chapter 4 (MNIST basics).

One package, one module per job; the CLI verbs in ``mnistkit.cli`` mirror them:
``data`` (ship MNIST offline), ``build`` (source/ -> release/), ``exercises`` (the catalog),
``grade`` (hidden autograder, sandboxed), ``demo`` (the whole pipeline on bundled defaults).
"""
__version__ = "0.1.0"
