"""Plausible wrong answers for a1_pixel_similarity, one list per auto-graded exercise id.

Each entry is (description, replacement source for the exercise's ``<id>-answer`` cell). A
notebook that is the source notebook with only that cell replaced must lose points on that
exercise and on no other one. tests/test_grade_assignments.py grades the first entry of each
list in the sandbox, so the first entries are the ones issue 10 is about where it applies (a
True/False `l1_distance`, a looping `mnist_distance` hidden from torch-call counting).
"""

MUTANTS: dict[str, list[tuple[str, str]]] = {
    "count_images": [
        ("hard-coded to the self-check's training counts",
         "def count_images(folder):\n    return {'3': 6131, '7': 6265}\n"),
        ("counts only the first label folder",
         "def count_images(folder):\n"
         "    sub = sorted(Path(folder).ls())[0]\n"
         "    return {sub.name: len(sub.ls())}\n"),
        ("uses integer keys instead of the folder names",
         "def count_images(folder):\n"
         "    return {int(sub.name): len(sub.ls()) for sub in Path(folder).ls() if sub.is_dir()}\n"),
    ],
    "pixel_layout": [
        ("assumes colour images are channels-first (3, height, width)",
         "def pixel_layout(img):\n"
         "    if img.ndim == 2:\n"
         "        return (int(img.shape[0]), int(img.shape[1]), 1)\n"
         "    channels, height, width = img.shape\n"
         "    return (int(height), int(width), int(channels))\n"),
        ("swaps height and width",
         "def pixel_layout(img):\n"
         "    channels = int(img.shape[2]) if img.ndim == 3 else 1\n"
         "    return (int(img.shape[1]), int(img.shape[0]), channels)\n"),
        ("gives greyscale images 0 channels",
         "def pixel_layout(img):\n"
         "    channels = int(img.shape[2]) if img.ndim == 3 else 0\n"
         "    return (int(img.shape[0]), int(img.shape[1]), channels)\n"),
        ("hard-coded to an MNIST digit",
         "def pixel_layout(img):\n    return (28, 28, 1)\n"),
    ],
    "odd_doubled": [
        ("a for loop instead of a list comprehension (right values)",
         "def odd_doubled(xs):\n"
         "    out = []\n"
         "    for x in xs:\n"
         "        if x % 2 == 1:\n"
         "            out.append(x * 2)\n"
         "    return out\n"),
        ("forgets the filter: doubles every number",
         "def odd_doubled(xs):\n    return [x * 2 for x in xs]\n"),
        ("keeps the even numbers",
         "def odd_doubled(xs):\n    return [x * 2 for x in xs if x % 2 == 0]\n"),
        ("returns a generator, not a list",
         "def odd_doubled(xs):\n    return (x * 2 for x in xs if x % 2 == 1)\n"),
        ("hard-coded to the self-check's list",
         "def odd_doubled(xs):\n    return [x for x in [2, 6, 10]] if xs else []\n"),
    ],
    "stack_images": [
        ("torch.cat instead of torch.stack (joins rows, rank 2)",
         "def stack_images(images):\n    return torch.cat(images).float() / 255\n"),
        ("forgets to divide by 255",
         "def stack_images(images):\n    return torch.stack(images).float()\n"),
        ("stacks along the last axis",
         "def stack_images(images):\n    return torch.stack(images, dim=-1).float() / 255\n"),
        ("integer division keeps uint8",
         "def stack_images(images):\n    return torch.stack(images) // 255\n"),
    ],
    "rank_from_shape": [
        ("returns the length of the first axis",
         "def rank_from_shape(shape):\n    return shape[0]\n"),
        ("returns the number of elements",
         "def rank_from_shape(shape):\n"
         "    n = 1\n"
         "    for s in shape:\n"
         "        n *= s\n"
         "    return n\n"),
        ("hard-coded to the self-check's rank-3 tensor",
         "def rank_from_shape(shape):\n    return 3\n"),
    ],
    "l1_distance": [
        ("returns True/False (do the images differ?) instead of a distance",
         "def l1_distance(a, b):\n    return (a != b).any()\n"),
        ("forgets the absolute value",
         "def l1_distance(a, b):\n    return (a - b).mean()\n"),
        ("sum instead of mean",
         "def l1_distance(a, b):\n    return (a - b).abs().sum()\n"),
        ("averages only the last two axes",
         "def l1_distance(a, b):\n    return (a - b).abs().mean((-1, -2))\n"),
        ("hard-coded to the chapter's value",
         "def l1_distance(a, b):\n    return tensor(0.1114)\n"),
        ("form: a Python float, not the rank-0 tensor asked for",
         "def l1_distance(a, b):\n"
         "    return (a - b).abs().mean().item()\n"),
    ],
    "rmse_distance": [
        ("forgets the square root (MSE)",
         "def rmse_distance(a, b):\n    return ((a - b) ** 2).mean()\n"),
        ("square root before the mean (gives L1)",
         "def rmse_distance(a, b):\n    return ((a - b) ** 2).sqrt().mean()\n"),
        ("root of the sum of squares instead of the mean",
         "def rmse_distance(a, b):\n    return ((a - b) ** 2).sum().sqrt()\n"),
        ("form: a Python float, not the rank-0 tensor asked for",
         "def rmse_distance(a, b):\n"
         "    return ((a - b) ** 2).mean().sqrt().item()\n"),
    ],
    "doubled_corner": [
        ("hard-coded [1:, 1:] slice from the 3 x 3 case",
         "def doubled_corner(n, k=2):\n"
         "    return (torch.arange(1, n * n + 1).view(n, n) * 2)[1:, 1:]\n"),
        ("numbers start at 0 (arange(n*n))",
         "def doubled_corner(n, k=2):\n"
         "    return (torch.arange(n * n).view(n, n) * 2)[n - k:, n - k:]\n"),
        ("takes the top-left corner",
         "def doubled_corner(n, k=2):\n"
         "    return (torch.arange(1, n * n + 1).view(n, n) * 2)[:k, :k]\n"),
        ("forgets to double",
         "def doubled_corner(n, k=2):\n"
         "    return torch.arange(1, n * n + 1).view(n, n)[n - k:, n - k:]\n"),
        ("fills the grid column by column",
         "def doubled_corner(n, k=2):\n"
         "    return (torch.arange(1, n * n + 1).view(n, n).T * 2)[n - k:, n - k:]\n"),
        ("hard-coded to the chapter's answer",
         "def doubled_corner(n, k=2):\n    return tensor([[10, 12], [16, 18]])\n"),
    ],
    "mnist_distance": [
        ("a Python loop over the images, hidden from torch-call counting (right values)",
         "def mnist_distance(a, b):\n"
         "    with torch._C.DisableTorchFunction():\n"
         "        if a.ndim == 2:\n"
         "            return (a - b).abs().mean()\n"
         "        return torch.stack([mnist_distance(x, b) for x in a])\n"),
        ("a Python loop over the images (right values)",
         "def mnist_distance(a, b):\n"
         "    if a.ndim == 2:\n"
         "        return (a - b).abs().mean()\n"
         "    return torch.stack([(x - b).abs().mean() for x in a])\n"),
        ("mean over every axis (one number for the whole batch)",
         "def mnist_distance(a, b):\n    return (a - b).abs().mean()\n"),
        ("axes counted from the front: mean((1, 2))",
         "def mnist_distance(a, b):\n    return (a - b).abs().mean((1, 2))\n"),
        ("squared differences instead of absolute ones",
         "def mnist_distance(a, b):\n    return ((a - b) ** 2).mean((-1, -2))\n"),
        ("form: a Python float for one image, not the rank-0 tensor asked for",
         "def mnist_distance(a, b):\n"
         "    d = (a - b).abs().mean((-1, -2))\n"
         "    return d.item() if d.ndim == 0 else d\n"),
    ],
    "is_3": [
        ("comparison reversed",
         "def is_3(x, mean3, mean7):\n"
         "    return mnist_distance(x, mean3) > mnist_distance(x, mean7)\n"),
        ("compares with mean3 twice (copy-paste slip)",
         "def is_3(x, mean3, mean7):\n"
         "    return mnist_distance(x, mean3) < mnist_distance(x, mean3)\n"),
        ("returns floats 1.0/0.0 instead of booleans",
         "def is_3(x, mean3, mean7):\n"
         "    return (mnist_distance(x, mean3) < mnist_distance(x, mean7)).float()\n"),
        ("uses l1_distance, which averages the whole batch",
         "def is_3(x, mean3, mean7):\n"
         "    return l1_distance(x, mean3) < l1_distance(x, mean7)\n"),
    ],
    "baseline_accuracy": [
        ("forgets to invert is_3 for the sevens",
         "def baseline_accuracy(threes, sevens, mean3, mean7):\n"
         "    a3 = is_3(threes, mean3, mean7).float().mean()\n"
         "    a7 = is_3(sevens, mean3, mean7).float().mean()\n"
         "    return a3, a7, (a3 + a7) / 2\n"),
        ("overall accuracy weighted by the number of images",
         "def baseline_accuracy(threes, sevens, mean3, mean7):\n"
         "    right3 = is_3(threes, mean3, mean7).float()\n"
         "    right7 = 1 - is_3(sevens, mean3, mean7).float()\n"
         "    return right3.mean(), right7.mean(), torch.cat([right3, right7]).mean()\n"),
        ("adds the two accuracies instead of averaging",
         "def baseline_accuracy(threes, sevens, mean3, mean7):\n"
         "    a3 = is_3(threes, mean3, mean7).float().mean()\n"
         "    a7 = (1 - is_3(sevens, mean3, mean7).float()).mean()\n"
         "    return a3, a7, a3 + a7\n"),
        ("hard-coded to the chapter's accuracies",
         "def baseline_accuracy(threes, sevens, mean3, mean7):\n"
         "    return 0.9168, 0.9854, 0.9511\n"),
        ("form: accuracies as tensors of shape (1,), not numbers",
         "def baseline_accuracy(threes, sevens, mean3, mean7):\n"
         "    a3 = is_3(threes, mean3, mean7).float().mean(0, keepdim=True)\n"
         "    a7 = (1 - is_3(sevens, mean3, mean7).float()).mean(0, keepdim=True)\n"
         "    return a3, a7, (a3 + a7) / 2\n"),
    ],
    "validation_metrics_choice": [
        ("picks the training set", 'validation_metrics_choice = "a"\n'),
        ("validation set, but for speed", 'validation_metrics_choice = "c"\n'),
    ],
}
