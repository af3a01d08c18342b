"""The hidden autograder: one test module per assignment, one group of checks per exercise id.

Run by `mnistkit grade` (sandboxed). To develop tests against the trusted reference notebook:
    .venv/bin/python -m pytest autograder/test_<assignment>.py -p no:cacheprovider \
        --notebook source/<assignment>/<notebook>.ipynb --in-process
"""
pytest_plugins = ["mnistkit.grading.plugin"]
