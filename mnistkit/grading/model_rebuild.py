"""Rebuilding a student's model in the grader, from its architecture as plain data.

Why: a4's ``train_digits`` is scored on test images that never enter the sandbox. So the
grader needs the student's model on its own side without running any of the student's code:
the sandbox describes ``make_model()`` as plain data (``model_probes.describe``), and the
grader rebuilds it here of torch.nn's classes only (``build_model``), measures its size and
cost on PyTorch's meta device (``model_cost``), initialises it itself, sends those weights in
for training, takes the trained weights back as plain data (``load_trained``) and predicts with
the rebuilt model (``grader_predictions``). The limits (which layers, how many numbers, how much
work per image) are the assignment's specification, given by the hidden test module
(``Limits``); how they are measured and enforced is engine, kept here.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from mnistkit.grading.expect import Mismatch, as_tensor, check, kind_of


@dataclass(frozen=True)
class Limits:
    """What a model may be: ``layers`` (allowed torch.nn class name -> the constructor
    arguments rebuilt from), at most ``max_layers`` modules, ``max_state`` numbers of state
    (parameters and buffers), ``max_macs`` multiply-adds and ``max_activations`` numbers in any
    layer's output, per image."""
    layers: dict
    max_layers: int
    max_state: int
    max_macs: int
    max_activations: int


class ModelProblem(Mismatch):
    pass


def _plain_arg(value, where):
    if isinstance(value, list):
        check(1 <= len(value) <= 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
              f"{where}: a tuple argument should hold 1 to 4 whole numbers")
        return tuple(value)
    check(value is None or isinstance(value, (bool, int, float, str)), f"{where}: an unreadable argument")
    if isinstance(value, str):
        check(len(value) <= 20, f"{where}: an unreadable argument")
    if isinstance(value, int) and not isinstance(value, bool):
        check(-8 <= value <= 100_000, f"{where}: a layer size or argument out of range")
    if isinstance(value, float):
        check(math.isfinite(value), f"{where}: an argument that is not a finite number")
    return value


def build_model(spec, limits: Limits, counter=None, where="make_model()") -> nn.Module:
    """The grader's own model from the plain-data architecture ``spec`` (``[name, args]`` or
    ``["Sequential", [children]]``), built of torch.nn's classes only."""
    counter = counter if counter is not None else [0]
    check(isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str),
          "make_model() should return an nn.Sequential of the allowed layers")
    name, body = spec
    counter[0] += 1
    check(counter[0] <= limits.max_layers, f"the model has more than {limits.max_layers} layers")
    if name == "Sequential":
        check(isinstance(body, list) and body, f"{where}: an empty or unreadable nn.Sequential")
        return nn.Sequential(*[build_model(c, limits, counter, f"{where}[{i}]") for i, c in enumerate(body)])
    shown = name if len(name) <= 60 and name.replace(".", "").replace("_", "").isalnum() else "a layer"
    check(name in limits.layers, f"{where} is {shown}, which is not one of the allowed layers "
                                 f"(nn.Sequential of {', '.join(sorted(limits.layers))}: see the notebook)")
    check(isinstance(body, dict) and set(body) == set(limits.layers[name]),
          f"{where} ({name}): its arguments could not be read")
    kwargs = {k: _plain_arg(v, f"{where} ({name})") for k, v in body.items()}
    try:
        return getattr(nn, name)(**kwargs)
    except Exception:
        raise ModelProblem(f"{where} ({name}): the grader cannot build this layer from its "
                           f"arguments") from None


def model_cost(spec, limits: Limits) -> dict:
    """Size and cost measured on PyTorch's meta device (no memory, no arithmetic): the numbers
    of state (parameters and buffers), multiply-adds and largest layer output per image, and
    the output shape for 2 images."""
    with torch.device("meta"):
        model = build_model(spec, limits)
    state = sum(t.numel() for t in model.state_dict().values())
    check(0 < state <= limits.max_state,
          f"the model holds {state:,} numbers (parameters and buffers together); between 1 and "
          f"{limits.max_state:,} are allowed")
    cost = dict(macs=0, biggest=0)

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            per_image = output.numel() // 2
            cost["biggest"] = max(cost["biggest"], per_image)
            if isinstance(module, nn.Conv2d):
                cost["macs"] += per_image * module.in_channels // module.groups * math.prod(module.kernel_size)
            elif isinstance(module, nn.Linear):
                cost["macs"] += per_image * module.in_features

    for m in model.modules():
        m.register_forward_hook(hook)
    model.eval()
    try:
        out = model(torch.empty(2, 1, 28, 28, device="meta"))
    except Exception:
        raise ModelProblem("the model cannot run on images of shape (n, 1, 28, 28) (its layers do "
                           "not fit together)") from None
    check(isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 10),
          f"the model should map images (n, 1, 28, 28) to scores (n, 10), it gives "
          f"{tuple(out.shape) if isinstance(out, torch.Tensor) else 'something else'} for n = 2")
    check(cost["macs"] <= limits.max_macs, f"the model needs {cost['macs']:,} multiply-adds per image; "
                                           f"at most {limits.max_macs:,} are allowed")
    check(cost["biggest"] <= limits.max_activations,
          f"a layer of the model outputs {cost['biggest']:,} numbers per image; at most "
          f"{limits.max_activations:,} are allowed")
    return dict(state=state, **cost)


def load_trained(model: nn.Module, fresh: dict, trained_state, biggest: int, eval_numbers: int) -> nn.Module:
    """``model`` loaded with the weights the sandbox trained (plain data, checked against the
    ``fresh`` state the grader sent: same names, shapes and kinds), in evaluation mode, with the
    chunk of images ``grader_predictions`` runs at once (at most ``eval_numbers`` outputs of its
    ``biggest`` layer)."""
    check(isinstance(trained_state, dict) and set(trained_state) == set(fresh),
          "the trained model's weights do not match its layers")
    for key, fresh_t in fresh.items():
        t = as_tensor(trained_state[key], f"the trained weight {key}")
        check(tuple(t.shape) == tuple(fresh_t.shape), f"the trained weight {key} has the wrong shape")
        allowed = "fi" if kind_of(fresh_t) == "f" else "i"
        check(kind_of(t) in allowed, f"the trained weight {key} holds {t.dtype}")
        trained_state[key] = t.to(fresh_t.dtype)
    model.load_state_dict(trained_state)
    model.eval()
    model.chunk = max(1, min(500, eval_numbers // max(biggest, 1)))
    return model


@torch.no_grad()
def grader_predictions(model, images, seconds) -> torch.Tensor:
    """The rebuilt model's digits for uint8 images, in the grader, in chunks, within ``seconds``."""
    out, start, chunk = [], time.perf_counter(), getattr(model, "chunk", 500)
    for i in range(0, len(images), chunk):
        x = torch.from_numpy(images[i:i + chunk]).float().div_(255).unsqueeze(1)
        out.append(model(x).argmax(1))
        check(time.perf_counter() - start <= seconds, "the model is too slow for the grader to test "
                                                      f"on 10,000 images within {seconds} s")
    return torch.cat(out)
