"""Probes that write a folder of files in the sandbox and hand it to the student's code.

Why here: a1's ``count_images``, a3's ``image_dls`` and a4's ``load_split`` read folders of
images. The grader makes the folder up (random names, labels and pixels, drawn in the grader:
``seeded.folder_case``), writes it in a fresh temporary folder in the sandbox with one of these
programs (``probes``: their source text is what is sent), and takes back plain data: counts,
file names, tensors. The expected answer is computed in the grader from the same plain data.

Kit code only (the trust rule): nothing here comes from ``solutions/``.
"""
from __future__ import annotations


# ---------------------------------------------------------------------- a1: count_images
def count_dataset_folder(dataset, split):
    """``count_images`` of the ``split`` folder of fastai's dataset ``URLs.<dataset>``."""
    from fastai.data.external import untar_data, URLs
    return count_images(untar_data(getattr(URLs, dataset)) / split)  # noqa: F821


def count_made_up_tree(labels, counts):
    """``count_images`` of a fresh folder with one subfolder per label, holding that label's
    count of empty .png files."""
    import pathlib
    import tempfile
    root = pathlib.Path(tempfile.mkdtemp())
    for label, n in zip(labels, counts):
        (root / label).mkdir()
        for i in range(n):
            (root / label / f"{i * 7919 % 100003}.png").write_bytes(b"")
    return count_images(root)  # noqa: F821


# ------------------------------------------------------------------------ a3: image_dls
def image_dls_of_folder(files, images, bs, as_path):
    """``image_dls(folder, bs=bs)`` of a fresh folder holding ``images`` (grey, uint8) at the
    relative paths ``files``: the items of its training and validation sets (relative paths),
    its vocab, and the first validation mini-batch and the size of the first training one (or
    the error that fetching a batch raised: the batch checks' business)."""
    import pathlib
    import tempfile
    import numpy as np
    import torch
    from PIL import Image
    root = pathlib.Path(tempfile.mkdtemp())
    for rel, pixels in zip(files, images):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode="L").save(root / rel)
    dls = image_dls(root if as_path else str(root), bs=bs)  # noqa: F821

    def names(items):
        return [pathlib.Path(p).relative_to(root).as_posix() for p in items]

    def plain(t):
        return torch.Tensor.as_subclass(t, torch.Tensor).detach().cpu().clone()

    found = dict(train=names(dls.train_ds.items), valid=names(dls.valid_ds.items),
                 vocab=[str(v) for v in dls.vocab])
    try:     # a DataLoader with no full batch raises here: that is the batch checks' business
        vxb, vyb = dls.valid.one_batch()
        txb, tyb = dls.train.one_batch()
        found.update(valid_x=plain(vxb), valid_y=plain(vyb), train_rows=len(txb))
    except Exception as error:
        found.update(batch_error=f"{type(error).__name__}: {error}"[:200])
    return found


# ----------------------------------------------------------------------- a4: load_split
def load_split_of_folder(digits, names, images, as_text):
    """``load_split(folder)`` of a fresh folder with one subfolder per digit holding
    ``images`` (uint8) under ``names``; the folder given as a string when ``as_text``."""
    import pathlib
    import tempfile
    import numpy as np
    from PIL import Image
    root = pathlib.Path(tempfile.mkdtemp())
    for digit, name, image in zip(digits, names, images):
        (root / str(digit)).mkdir(exist_ok=True)
        Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(root / str(digit) / name)
    x, y = load_split(str(root) if as_text else root)  # noqa: F821
    return dict(x=x, y=y)
