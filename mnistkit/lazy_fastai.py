"""fastai names that import fastai only when used, for the generated reference modules.

A notebook gets fastai from ``from fastai.vision.all import *``; the references made from its
answer cells (``solutions/<assignment>.py``) are imported by every grading, and importing fastai
costs 8-10 CPU-seconds that only a few references ever need. A stand-in imports fastai when it
is called or an attribute is read (``ImageDataLoaders.from_folder``). Arguments that are
stand-ins themselves (``vision_learner(dls, resnet18)``) are passed on as the real thing, so
fastai still recognises them.
"""
from __future__ import annotations

import importlib


class Later:
    """A stand-in for ``fastai.vision.all.<name>``."""

    def __init__(self, name: str):
        self.fastai_name = name

    def real(self):
        return getattr(importlib.import_module("fastai.vision.all"), self.fastai_name)

    def __call__(self, *args, **kwargs):
        return self.real()(*map(_real, args), **{k: _real(v) for k, v in kwargs.items()})

    def __getattr__(self, attribute):
        if attribute.startswith("__") or attribute == "fastai_name":   # copy, pickle: no import
            raise AttributeError(attribute)
        return getattr(self.real(), attribute)

    def __repr__(self) -> str:
        return f"<fastai's {self.fastai_name}, imported when used>"


def _real(value):
    return value.real() if isinstance(value, Later) else value


def later(name: str) -> Later:
    return Later(name)
