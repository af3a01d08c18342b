"""Plain-data codec between the grader and the student's sandbox. Stand-alone on purpose.

The sandbox runner imports this file by path (it cannot import the rest of mnistkit), so it
depends on numpy and, lazily, torch only. Nothing here can execute code on decode: the payload
is an ``.npz`` read with ``allow_pickle=False`` plus a JSON tree that says how to rebuild
lists, tuples, dicts, numbers, strings and tensors. Pickle is not used because the student
side is untrusted and unpickling runs arbitrary code.
"""
from __future__ import annotations

import io
import json

import numpy as np

MAX_DEPTH = 20
MAX_ITEMS = 100_000
# numpy has no bfloat16; such tensors cross as float32 and are marked to convert back.
_WIDEN = {"torch.bfloat16": "float32"}


class WireError(ValueError):
    """A value that is not plain data, or a payload that is malformed."""


def _torch():
    import torch
    return torch


def _contiguous(array: np.ndarray) -> np.ndarray:
    # np.ascontiguousarray returns at least 1-d; a 0-d value (a loss) must stay 0-d.
    return np.ascontiguousarray(array).reshape(array.shape)


def encode(value) -> bytes:
    arrays: list[np.ndarray] = []
    counter = [0]

    def tree(v, depth):
        counter[0] += 1
        if depth > MAX_DEPTH or counter[0] > MAX_ITEMS:
            raise WireError("value is nested too deeply or has too many items")
        if v is None or isinstance(v, (bool, str)):
            return {"t": "atom", "v": v}
        if isinstance(v, int):
            return {"t": "int", "v": str(v)}
        if isinstance(v, float):
            return {"t": "float", "v": repr(v)}  # repr keeps nan/inf and every bit
        if isinstance(v, np.generic):
            return tree(v.item(), depth)
        if isinstance(v, np.ndarray):
            if v.dtype == object or v.dtype.kind not in "biufc":
                raise WireError(f"numpy array of dtype {v.dtype} is not plain data")
            arrays.append(_contiguous(v))
            return {"t": "ndarray", "i": len(arrays) - 1}
        if type(v).__module__.startswith("torch"):
            torch = _torch()
            if isinstance(v, torch.Size):
                return {"t": "tuple", "v": [tree(int(d), depth + 1) for d in v]}
            if isinstance(v, torch.dtype):
                return {"t": "dtype", "v": str(v)}
            if isinstance(v, torch.Tensor):
                t = v.detach().cpu()
                if t.is_sparse or t.is_quantized:
                    t = t.to_dense() if t.is_sparse else t.dequantize()
                dtype = str(t.dtype)
                if dtype in _WIDEN:
                    t = t.float()
                arrays.append(_contiguous(t.resolve_conj().resolve_neg().numpy()))
                return {"t": "tensor", "i": len(arrays) - 1, "dtype": dtype,
                        "requires_grad": bool(v.requires_grad)}
        if isinstance(v, (list, tuple)):
            return {"t": type(v).__name__ if type(v) in (list, tuple) else "list",
                    "v": [tree(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise WireError("only dicts with string keys cross to the grader")
            return {"t": "dict", "v": {k: tree(x, depth + 1) for k, x in v.items()}}
        raise WireError(f"an object of type {type(v).__module__}.{type(v).__qualname__} "
                        "is not plain data (use tensors, arrays, numbers, strings, lists)")

    meta = json.dumps(tree(value, 0))
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8),
             **{f"a{i}": a for i, a in enumerate(arrays)})
    return buffer.getvalue()


def decode(payload: bytes, as_torch: bool = True):
    """Rebuild a value from ``encode``'s bytes; tensors come back as CPU torch tensors."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            meta = json.loads(bytes(npz["__meta__"]).decode())
            arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
    except WireError:
        raise
    except Exception as exc:  # any malformed payload is the sender's fault, never ours
        raise WireError(f"unreadable payload: {type(exc).__name__}: {exc}") from None

    def build(node, depth):
        if depth > MAX_DEPTH or not isinstance(node, dict):
            raise WireError("malformed payload")
        kind = node.get("t")
        if kind == "atom":
            if not (node["v"] is None or isinstance(node["v"], (bool, str))):
                raise WireError("malformed atom")
            return node["v"]
        if kind == "int":
            return int(node["v"])
        if kind == "float":
            return float(node["v"])  # float() reads repr's 'nan' and 'inf' too
        if kind in ("list", "tuple"):
            items = [build(x, depth + 1) for x in node["v"]]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            return {str(k): build(x, depth + 1) for k, x in node["v"].items()}
        if kind == "dtype":
            torch = _torch()
            name = str(node["v"]).removeprefix("torch.")
            if not isinstance(getattr(torch, name, None), torch.dtype):
                raise WireError("unknown dtype")
            return getattr(torch, name)
        if kind in ("ndarray", "tensor"):
            key = f"a{int(node['i'])}"
            if key not in arrays:
                raise WireError("malformed payload: missing array")
            array = arrays[key]
            if kind == "ndarray" or not as_torch:
                return array
            torch = _torch()
            t = torch.from_numpy(array.copy())
            dtype = str(node.get("dtype", ""))
            if dtype in _WIDEN:
                t = t.to(getattr(torch, dtype.removeprefix("torch.")))
            if node.get("requires_grad") and t.is_floating_point():
                t.requires_grad_()
            return t
        raise WireError(f"malformed payload: unknown node {kind!r}")

    return build(meta, 0)
