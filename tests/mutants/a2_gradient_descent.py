"""Plausible wrong answers for a2_gradient_descent, one list per auto-graded exercise id.

Each entry is (description, replacement source for the exercise's ``<id>-answer`` cell). A notebook
that is the source notebook with only that cell replaced must lose points on that exercise and on
no other one (the hidden tests isolate exercises from each other).
"""

_STEP_NAMES = 'STEP_NAMES = ["gradient", "stop", "predict", "init", "repeat", "loss", "step"]\n'

MUTANTS: dict[str, list[tuple[str, str]]] = {
    "seven_steps": [
        ("loss and gradient swapped",
         _STEP_NAMES + 'seven_steps = ["init", "predict", "gradient", "loss", "step", "repeat", "stop"]\n'),
        ("stop placed before repeat",
         _STEP_NAMES + 'seven_steps = ["init", "predict", "loss", "gradient", "step", "stop", "repeat"]\n'),
        ("form: a tuple, not the list asked for",
         "seven_steps = (\"init\", \"predict\", \"loss\", \"gradient\", \"step\", \"repeat\", \"stop\")\n"),
    ],
    "gradient_at": [
        ("hard-codes the derivative of x**2 instead of using backward",
         "def gradient_at(f, x):\n"
         "    return 2 * x\n"),
        ("switches on gradients for the caller's tensor, so repeated calls pile up",
         "def gradient_at(f, x):\n"
         "    x.requires_grad_()\n"
         "    f(x).backward()\n"
         "    return x.grad\n"),
        ("finite differences instead of autograd",
         "def gradient_at(f, x):\n"
         "    eps = 1e-3\n"
         "    g = torch.zeros_like(x)\n"
         "    for i in range(x.numel()):\n"
         "        d = torch.zeros_like(x)\n"
         "        d.view(-1)[i] = eps\n"
         "        g.view(-1)[i] = (f(x + d) - f(x - d)) / (2 * eps)\n"
         "    return g\n"),
    ],
    "sgd_step": [
        ("steps uphill (adds the gradient)",
         "def sgd_step(params, grads, lr):\n"
         "    return [p + lr * g for p, g in zip(params, grads)]\n"),
        ("updates the given tensors in place",
         "def sgd_step(params, grads, lr):\n"
         "    for p, g in zip(params, grads):\n"
         "        p -= lr * g\n"
         "    return list(params)\n"),
        ("forgot the learning rate",
         "def sgd_step(params, grads, lr):\n"
         "    return [p - g for p, g in zip(params, grads)]\n"),
        ("form: a tuple, not the new list asked for",
         "def sgd_step(params, grads, lr):\n"
         "    return tuple(p - lr * g for p, g in zip(params, grads))\n"),
    ],
    "descent_path": [
        ("leaves out the starting point",
         "def descent_path(x0, lr, n_steps):\n"
         "    x = torch.tensor(float(x0))\n"
         "    path = []\n"
         "    for _ in range(n_steps):\n"
         "        x = x - lr * 2 * x\n"
         "        path.append(x)\n"
         "    return torch.stack(path) if path else torch.zeros(0)\n"),
        ("steps uphill",
         "def descent_path(x0, lr, n_steps):\n"
         "    x = torch.tensor(float(x0))\n"
         "    path = [x]\n"
         "    for _ in range(n_steps):\n"
         "        x = x + lr * gradient_at(lambda t: t**2, x)\n"
         "        path.append(x)\n"
         "    return torch.stack(path)\n"),
        ("reuses the gradient at the start for every step",
         "def descent_path(x0, lr, n_steps):\n"
         "    x = torch.tensor(float(x0))\n"
         "    g = 2 * x\n"
         "    path = [x]\n"
         "    for _ in range(n_steps):\n"
         "        x = x - lr * g\n"
         "        path.append(x)\n"
         "    return torch.stack(path)\n"),
        ("form: a list of Python floats, not the tensor asked for",
         "def descent_path(x0, lr, n_steps):\n"
         "    xs = [float(x0)]\n"
         "    for _ in range(n_steps):\n"
         "        xs.append(xs[-1] - lr * 2 * xs[-1])\n"
         "    return xs\n"),
    ],
    "train_quadratic": [
        ("never zeroes the gradient, so gradients pile up",
         "def train_quadratic(t, y, params, lr, n_steps):\n"
         "    p = params.detach().clone().requires_grad_()\n"
         "    losses = []\n"
         "    for _ in range(n_steps):\n"
         "        loss = mse(quad(t, p), y)\n"
         "        losses.append(loss.item())\n"
         "        loss.backward()\n"
         "        with torch.no_grad():\n"
         "            p -= lr * p.grad\n"
         "    return p.detach(), losses\n"),
        ("records the loss after the step instead of before",
         "def train_quadratic(t, y, params, lr, n_steps):\n"
         "    p = params.detach().clone().requires_grad_()\n"
         "    losses = []\n"
         "    for _ in range(n_steps):\n"
         "        loss = mse(quad(t, p), y)\n"
         "        loss.backward()\n"
         "        with torch.no_grad():\n"
         "            p -= lr * p.grad\n"
         "            losses.append(mse(quad(t, p), y).item())\n"
         "        p.grad = None\n"
         "    return p.detach(), losses\n"),
        ("trains the caller's tensor in place instead of a copy",
         "def train_quadratic(t, y, params, lr, n_steps):\n"
         "    p = params.requires_grad_()\n"
         "    losses = []\n"
         "    for _ in range(n_steps):\n"
         "        loss = mse(quad(t, p), y)\n"
         "        losses.append(loss.item())\n"
         "        loss.backward()\n"
         "        with torch.no_grad():\n"
         "            p -= lr * p.grad\n"
         "        p.grad = None\n"
         "    return p.detach().clone(), losses\n"),
        ("form: records the loss tensors, not Python floats",
         "def train_quadratic(t, y, params, lr, n_steps):\n"
         "    p = params.detach().clone().requires_grad_()\n"
         "    losses = []\n"
         "    for _ in range(n_steps):\n"
         "        loss = mse(quad(t, p), y)\n"
         "        losses.append(loss.detach())\n"
         "        loss.backward()\n"
         "        p = (p - lr * p.grad).detach().requires_grad_()\n"
         "    return p.detach(), losses\n"),
    ],
    "mnist_loss": [
        ("torch.where branches swapped",
         "def mnist_loss(inputs, targets):\n"
         "    return torch.where(targets == 1, inputs, 1 - inputs).mean()\n"),
        ("a Python loop instead of torch.where",
         "def mnist_loss(inputs, targets):\n"
         "    return torch.stack([1 - p if t == 1 else p\n"
         "                        for p, t in zip(inputs.flatten(), targets.flatten())]).mean()\n"),
        ("hard-coded to the self-check's first answer",
         "def mnist_loss(inputs, targets):\n"
         "    return tensor(0.4333)\n"),
        ("sum instead of mean",
         "def mnist_loss(inputs, targets):\n"
         "    return torch.where(targets == 1, 1 - inputs, inputs).sum()\n"),
        ("form: a Python float, not the rank-0 tensor asked for",
         "def mnist_loss(inputs, targets):\n"
         "    return torch.where(targets == 1, 1 - inputs, inputs).mean().item()\n"),
    ],
    "sigmoid": [
        ("sign error in the exponent",
         "def sigmoid(x):\n"
         "    return 1 / (1 + torch.exp(x))\n"),
        ("exp(x) / (1 + exp(x)): nan for large inputs",
         "def sigmoid(x):\n"
         "    return torch.exp(x) / (1 + torch.exp(x))\n"),
        ("a step instead of a squashing curve: True/False where x > 0",
         "def sigmoid(x):\n"
         "    return x > 0\n"),
    ],
    "mnist_loss_sigmoid": [
        ("forgot the sigmoid",
         "def mnist_loss_sigmoid(inputs, targets):\n"
         "    return mnist_loss(inputs, targets)\n"),
        ("sigmoid applied after torch.where",
         "def mnist_loss_sigmoid(inputs, targets):\n"
         "    return torch.where(targets == 1, 1 - inputs, inputs).sigmoid().mean()\n"),
        ("form: a Python float, not the rank-0 tensor asked for",
         "def mnist_loss_sigmoid(inputs, targets):\n"
         "    inputs = 1 / (1 + torch.exp(-inputs))\n"
         "    return torch.where(targets == 1, 1 - inputs, inputs).mean().item()\n"),
    ],
    "accuracy_slope": [
        ("always zero (hard-coded)",
         "def accuracy_slope(preds, targets, eps):\n"
         "    return torch.zeros(preds.shape)\n"),
        ("nudges every prediction at once",
         "def accuracy_slope(preds, targets, eps):\n"
         "    acc = lambda p: ((p > 0.5) == (targets == 1)).float().mean()\n"
         "    return torch.full(preds.shape, float((acc(preds + eps) - acc(preds)) / eps))\n"),
        ("says whether the accuracy moved (True/False) instead of how fast",
         "def accuracy_slope(preds, targets, eps):\n"
         "    acc = lambda p: ((p > 0.5) == (targets == 1)).float().mean()\n"
         "    out = torch.zeros(preds.shape, dtype=torch.bool)\n"
         "    for i in range(preds.numel()):\n"
         "        q = preds.clone()\n"
         "        q.view(-1)[i] += eps\n"
         "        out.view(-1)[i] = acc(q) != acc(preds)\n"
         "    return out\n"),
        ("forgot to divide by eps",
         "def accuracy_slope(preds, targets, eps):\n"
         "    acc = lambda p: ((p > 0.5) == (targets == 1)).float().mean()\n"
         "    out = torch.zeros(preds.shape)\n"
         "    for i in range(preds.numel()):\n"
         "        q = preds.clone()\n"
         "        q.view(-1)[i] += eps\n"
         "        out.view(-1)[i] = acc(q) - acc(preds)\n"
         "    return out\n"),
    ],
    "usable_as_loss": [
        ("accuracy marked usable as a loss",
         'usable_as_loss = {"accuracy": True, "error_rate": False, "count_wrong": False,\n'
         '                  "mean_squared_error": True, "mean_absolute_error": True,\n'
         '                  "mnist_loss_sigmoid": True}\n'),
        ("mean absolute error marked unusable",
         'usable_as_loss = {"accuracy": False, "error_rate": False, "count_wrong": False,\n'
         '                  "mean_squared_error": True, "mean_absolute_error": False,\n'
         '                  "mnist_loss_sigmoid": True}\n'),
    ],
    "batches_of": [
        ("ignores shuffle",
         "def batches_of(collection, batch_size, shuffle=True):\n"
         "    return list(DataLoader(collection, batch_size=batch_size))\n"),
        ("drops the last, smaller batch",
         "def batches_of(collection, batch_size, shuffle=True):\n"
         "    return list(DataLoader(collection, batch_size=batch_size, shuffle=shuffle,\n"
         "                           drop_last=True))\n"),
        ("returns the DataLoader itself, not a list",
         "def batches_of(collection, batch_size, shuffle=True):\n"
         "    return DataLoader(collection, batch_size=batch_size, shuffle=shuffle)\n"),
    ],
}
