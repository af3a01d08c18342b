"""Plain-data codec between the grader and the student's sandbox. Stand-alone on purpose.

The sandbox runner imports this file by path (it cannot import the rest of mnistkit), so it
depends on numpy and, lazily, torch only. Nothing here can execute code on decode: the payload
is an ``.npz`` read with ``allow_pickle=False`` plus a JSON tree that says how to rebuild
lists, tuples, dicts, numbers, strings and tensors. Pickle is not used because the student
side is untrusted and unpickling runs arbitrary code.

Decoding is bounded before and while parsing, because the sender may be hostile (a student
can replace the runner's ``encode``): the zip directory is checked before anything is read
(entry count, stored -- not compressed -- members, declared sizes within the payload and
``max_bytes``), every array's header must match its member's size, the JSON tree is at most
``MAX_META_BYTES`` with at most ``MAX_TOKENS`` containers/separators before ``json.loads`` runs,
and the rebuilt value has at most ``MAX_ITEMS`` nodes, ``MAX_DEPTH`` levels, ``MAX_ARRAYS``
arrays and strings of at most ``MAX_STRING`` characters. So a 60 KB answer can no longer
inflate into gigabytes in the grader: the worst a payload can cost is about its own size plus
~100 MB. ``encode`` enforces the same bounds, so an honest value over them is refused where it
is sent, with a clear message.
"""
from __future__ import annotations

import io
import json
import re
import struct
import zipfile

import numpy as np

MAX_DEPTH = 20
MAX_ITEMS = 100_000            # nodes of the value tree
MAX_ARRAYS = 10_000            # tensors/arrays in one value
MAX_STRING = 1 << 20           # characters in one string (or dict key)
MAX_META_BYTES = 8 << 20       # the JSON tree
MAX_TOKENS = 8 * MAX_ITEMS     # '{', '[' and ',' in the JSON text: bounds json.loads' work
MAX_BYTES = 1 << 30            # arrays' total size by default (callers pass their own limit)
_HEADER_BYTES = 10_000         # an .npy header (numpy's own default cap)
_MEMBER = re.compile(r"(__meta__|a(0|[1-9][0-9]{0,5}))\.npy")
# numpy has no bfloat16; such tensors cross as float32 and are marked to convert back.
_WIDEN = {"torch.bfloat16": "float32"}


class WireError(ValueError):
    """A value that is not plain data, or a payload that is malformed or over the bounds."""


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
        if isinstance(v, str) and len(v) > MAX_STRING:
            raise WireError(f"a string of {len(v)} characters is too long to send "
                            f"(at most {MAX_STRING})")
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
            if not all(isinstance(k, str) and len(k) <= MAX_STRING for k in v):
                raise WireError("only dicts with string keys cross to the grader")
            return {"t": "dict", "v": {k: tree(x, depth + 1) for k, x in v.items()}}
        raise WireError(f"an object of type {type(v).__module__}.{type(v).__qualname__} "
                        "is not plain data (use tensors, arrays, numbers, strings, lists)")

    meta = json.dumps(tree(value, 0))
    if len(arrays) > MAX_ARRAYS:
        raise WireError(f"value holds {len(arrays)} tensors/arrays (at most {MAX_ARRAYS})")
    if len(meta) > MAX_META_BYTES:
        raise WireError("value's structure is too large to send")
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8),
             **{f"a{i}": a for i, a in enumerate(arrays)})
    return buffer.getvalue()


def _directory(payload: bytes, max_bytes: int) -> list[zipfile.ZipInfo]:
    """The payload's zip directory, checked before it is parsed: few entries, a small
    directory, no zip64 records, stored members whose sizes fit in the payload and the limit."""
    tail = payload[-(22 + 0xFFFF):]
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise WireError("unreadable payload: not an npz archive")
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    zip64 = tail[max(at - 20, 0):at].startswith(b"PK\x06\x07")
    if zip64 or entries > MAX_ARRAYS + 1 or cd_size > (MAX_ARRAYS + 1) * 256:
        raise WireError(f"payload holds too many arrays (at most {MAX_ARRAYS})")
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names) or "__meta__.npy" not in names:
        raise WireError("malformed payload: bad member names")
    total = 0
    for info in infos:
        if not _MEMBER.fullmatch(info.filename) or info.compress_type != zipfile.ZIP_STORED:
            raise WireError("malformed payload: compressed or unknown member")
        total += info.file_size
    if total > min(max_bytes, len(payload)):
        raise WireError(f"the value is larger than {max_bytes} bytes")
    meta = next(i for i in infos if i.filename == "__meta__.npy")
    if meta.file_size > MAX_META_BYTES + _HEADER_BYTES:
        raise WireError("the value's structure is too large")
    return infos


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member, its header checked against the member's size before any data is read."""
    from numpy.lib import format as npy
    with archive.open(info) as fh:
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(fh, max_header_size=_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = npy.read_array_header_2_0(fh, max_header_size=_HEADER_BYTES)
        else:
            raise WireError("malformed payload: unknown array format")
        if dtype.hasobject or dtype.kind not in "biufc" or dtype.fields is not None \
                or dtype.subdtype is not None:
            raise WireError(f"malformed payload: dtype {dtype} is not plain data")
        count = 1
        for dim in shape:
            count *= int(dim)
        nbytes = count * dtype.itemsize
        if nbytes != info.file_size - fh.tell():
            raise WireError("malformed payload: array size does not match its header")
        buffer = bytearray(nbytes)
        view, got = memoryview(buffer), 0
        while got < nbytes:
            chunk = fh.read(min(nbytes - got, 1 << 20))
            if not chunk:
                raise WireError("malformed payload: truncated array")
            view[got:got + len(chunk)] = chunk
            got += len(chunk)
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array


def _parse_meta(raw: bytes):
    if len(raw) > MAX_META_BYTES:
        raise WireError("the value's structure is too large")
    # Counted in strings too (an over-estimate; a regex skipping strings can be quadratic).
    if raw.count(b"{") + raw.count(b"[") + raw.count(b",") > MAX_TOKENS:
        raise WireError("the value has too many items")
    return json.loads(raw.decode("utf-8"))


def decode(payload: bytes, as_torch: bool = True, max_bytes: int = MAX_BYTES):
    """Rebuild a value from ``encode``'s bytes; tensors come back as CPU torch tensors.
    ``max_bytes`` bounds the arrays' total size; see the module docstring for the other bounds.
    Raises ``WireError`` for anything malformed or over a bound, never another exception."""
    try:
        payload = bytes(payload)
        infos = _directory(payload, max_bytes)
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            arrays = {}
            meta = None
            for info in infos:
                array = _read_array(archive, info)
                if info.filename == "__meta__.npy":
                    if array.dtype != np.uint8 or array.ndim != 1:
                        raise WireError("malformed payload: bad structure member")
                    meta = _parse_meta(array.tobytes())
                else:
                    arrays[info.filename[:-len(".npy")]] = array
        return _build(meta, arrays, as_torch)
    except WireError:
        raise
    except RecursionError:
        raise WireError("the value is nested too deeply") from None
    except MemoryError:
        raise WireError("the value is too large for the grader") from None
    except Exception as exc:  # any malformed payload is the sender's fault, never ours
        raise WireError(f"unreadable payload: {type(exc).__name__}: {str(exc)[:200]}") from None


def _build(meta, arrays: dict, as_torch: bool):
    count = [0]
    used: set[str] = set()   # each array rebuilds one value: no aliases, no cheap copies

    def string(v):
        if not isinstance(v, str) or len(v) > MAX_STRING:
            raise WireError("malformed payload: bad or overlong string")
        return v

    def build(node, depth):
        count[0] += 1
        if count[0] > MAX_ITEMS:
            raise WireError(f"the value has more than {MAX_ITEMS} items")
        if depth > MAX_DEPTH or not isinstance(node, dict):
            raise WireError("malformed payload")
        kind = node.get("t")
        if kind == "atom":
            v = node.get("v")
            if not (v is None or isinstance(v, bool)):
                string(v)
            return v
        if kind == "int":
            return int(string(node["v"]))
        if kind == "float":
            return float(string(node["v"]))  # float() reads repr's 'nan' and 'inf' too
        if kind in ("list", "tuple"):
            if not isinstance(node.get("v"), list):
                raise WireError("malformed payload: bad list")
            items = [build(x, depth + 1) for x in node["v"]]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            if not isinstance(node.get("v"), dict):
                raise WireError("malformed payload: bad dict")
            return {string(k): build(x, depth + 1) for k, x in node["v"].items()}
        if kind == "dtype":
            torch = _torch()
            name = string(node.get("v")).removeprefix("torch.")
            if not isinstance(getattr(torch, name, None), torch.dtype):
                raise WireError("unknown dtype")
            return getattr(torch, name)
        if kind in ("ndarray", "tensor"):
            index = node.get("i")
            key = f"a{index}" if isinstance(index, int) and not isinstance(index, bool) else None
            if key not in arrays or key in used:
                raise WireError("malformed payload: missing or repeated array")
            used.add(key)
            array = arrays[key]
            if kind == "ndarray" or not as_torch:
                return array
            torch = _torch()
            t = torch.from_numpy(array)
            dtype = str(node.get("dtype", ""))
            if dtype in _WIDEN:
                t = t.to(getattr(torch, dtype.removeprefix("torch.")))
            if node.get("requires_grad") and t.is_floating_point():
                t.requires_grad_()
            return t
        raise WireError(f"malformed payload: unknown node {str(kind)[:50]!r}")

    if meta is None:
        raise WireError("malformed payload: no structure")
    return build(meta, 0)
