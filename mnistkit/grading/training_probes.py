"""Probes of training code: gradients, training loops, optimizers, Learners.

Why here: these are the programs a hidden check sends into the sandbox (``probes``: their source
text is what is sent) to question a3's ``calc_grad``, ``train_epoch``, ``validate_epoch``,
``BasicOptim``, ``make_learner`` and a4's ``MomentumSGD`` and ``Learner`` with live models and
optimizers, then bring back plain data. Each probe builds fresh objects (the student's state
must not leak between checks) and calls the student's code by its name, a global of the probe.

Kit code only (the trust rule): nothing here comes from ``solutions/``. The model helpers
(``leaves``, ``linear_or_net``, ``grads_of``) also run in the grader, so both sides build the
very same models. The stand-ins for the helpers such code calls are in ``stand_ins``.
"""
from __future__ import annotations



# ------------------------------------------------------------------- models from parameters
def leaves(tensors):
    """Fresh leaf tensors that track gradients, with the values of ``tensors``."""
    return [t.detach().clone().requires_grad_() for t in tensors]


def linear_or_net(kind, ps):
    """A model that uses the parameter tensors `ps` (a closure: no notebook globals)."""
    if kind == "linear":
        return lambda xb: xb @ ps[0] + ps[1]
    return lambda xb: (xb @ ps[0] + ps[1]).clamp(min=0) @ ps[2] + ps[3]


def grads_of(ps):
    """Copies of the parameters' gradients (None where there is none)."""
    return [None if p.grad is None else p.grad.detach().clone() for p in ps]


# ---------------------------------------------------------------------------- a3: calc_grad
def calc_grad_gradients(params, kind, x, y, calls):
    """The gradients ``calc_grad`` leaves on a fresh model's parameters after ``calls`` calls."""
    ps = leaves(params)
    model = linear_or_net(kind, ps)
    for _ in range(calls):
        calc_grad(x, y, model)  # noqa: F821 (the student's, in the sandbox)
    return grads_of(ps)


# --------------------------------------------------------------------------- a3: train_epoch
def train_epoch_epochs(params, kind, lr, epochs):
    """A fresh model's parameters and gradients after ``epochs`` calls of ``train_epoch``."""
    ps = leaves(params)
    model = linear_or_net(kind, ps)
    for _ in range(epochs):
        train_epoch(model, lr, tuple(ps))  # noqa: F821
    return dict(params=[p.detach().clone() for p in ps], grads=grads_of(ps))


# ------------------------------------------------------------------------ a3: validate_epoch
def validate_epoch_of(a, c):
    """``validate_epoch`` of an elementwise model (no matrix product, so the scores it hands
    batch_accuracy are bit for bit the ones the grader computes)."""
    model = lambda xb: xb[:, :1] * a + c  # noqa: E731
    return validate_epoch(model)  # noqa: F821


# ---------------------------------------------------------------------------- a3: BasicOptim
def basic_optim_after_step(params, grads, lr):
    """Fresh parameters given ``grads``, after one ``BasicOptim(ps, lr).step()``."""
    ps = leaves(params)
    for p, g in zip(ps, grads):
        p.grad = g.clone()
    opt = BasicOptim(ps, lr)  # noqa: F821
    opt.step()
    return [p.detach().clone() for p in ps]


def basic_optim_after_zero_grad(params):
    """The gradients of fresh parameters (all ones) after ``BasicOptim(ps, 0.1).zero_grad()``."""
    import torch
    ps = leaves(params)
    for p in ps:
        p.grad = torch.ones_like(p)
    opt = BasicOptim(ps, 0.1)  # noqa: F821
    opt.zero_grad()
    return grads_of(ps)


def basic_optim_trains_linear(x, y, w, b, lr, steps):
    """An nn.Linear(784, 1) set to ``w``, ``b`` after ``steps`` steps of ``BasicOptim`` on
    ``kit_loss`` (``stand_ins.kit_loss``, sent with it as a helper)."""
    import torch
    m = torch.nn.Linear(784, 1)
    with torch.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(b)
    opt = BasicOptim(m.parameters(), lr)  # noqa: F821
    for _ in range(steps):
        kit_loss(m(x), y).backward()  # noqa: F821
        opt.step()
        opt.zero_grad()
    return [m.weight.detach().clone(), m.bias.detach().clone()]


# -------------------------------------------------------------------------- a3: make_learner
def learner_made(x, y, vx, vy):
    """``make_learner`` of DataLoaders of (x, y) and (vx, vy), mini-batches of 16: (dls, learn)."""
    from fastai.data import core, load
    dls = core.DataLoaders(load.DataLoader(list(zip(x, y)), batch_size=16),
                           load.DataLoader(list(zip(vx, vy)), batch_size=16))
    return dls, make_learner(dls)  # noqa: F821


def plain_tensor(t):
    """A plain torch.Tensor copy of ``t`` (fastai's tensor subclasses are not plain data)."""
    import torch
    return torch.Tensor.as_subclass(t, torch.Tensor).detach().clone()


def learner_first_batches(x, y, vx, vy):
    """The first (inputs, labels) mini-batch of the Learner's training and validation dls."""
    _, learn = learner_made(x, y, vx, vy)
    return [[plain_tensor(t) for t in next(iter(dl))] for dl in (learn.dls.train, learn.dls.valid)]


def learner_model(x, y, vx, vy, probe_x):
    """The Learner's model's parameters, its output on ``probe_x``, and the parameters of the
    model of a second ``make_learner`` call."""
    dls, learn = learner_made(x, y, vx, vy)
    params = [p.detach().clone() for p in learn.model.parameters()]
    out = learn.model(probe_x)
    other = make_learner(dls)  # noqa: F821
    return [params, out, [p.detach().clone() for p in other.model.parameters()]]


def learner_loss(x, y, vx, vy, preds, targs):
    """The Learner's loss function on ``preds`` and ``targs``."""
    _, learn = learner_made(x, y, vx, vy)
    return learn.loss_func(preds, targs)


def learner_optimizer_steps(x, y, vx, vy, p0, g1, g2, lr):
    """A parameter after each of two steps of the Learner's ``opt_func`` (gradients g1, g2)."""
    _, learn = learner_made(x, y, vx, vy)
    p = p0.clone().requires_grad_()
    opt = learn.opt_func([p], lr=1.0)
    opt.set_hypers(lr=lr)              # as Learner.fit does: a fastai optimizer has hyper-parameters
    steps = []
    for g in (g1, g2):
        p.grad = g.clone()
        opt.step()
        steps.append(p.detach().clone())
    return steps


def learner_metric_values(x, y, vx, vy, preds, targs):
    """Each of the Learner's metrics' function on ``preds`` and ``targs`` (those that take them)."""
    import torch
    _, learn = learner_made(x, y, vx, vy)
    values = []
    for m in learn.metrics:
        try:
            values.append(torch.as_tensor(m.func(preds, targs)).detach().clone())
        except Exception:
            pass  # not a metric of scores and labels: it cannot be batch_accuracy
    return values


# --------------------------------------------------------------------------- a4: MomentumSGD
def momentum_steps(start, grads, lr, mom):
    """Fresh parameters after a ``MomentumSGD`` step per list of ``grads`` (``mom`` None: the
    default), and whether each is still a leaf that requires gradients."""
    import torch
    ps = [torch.as_tensor(p).clone().requires_grad_() for p in start]
    opt = MomentumSGD(ps, lr) if mom is None else MomentumSGD(ps, lr, mom=mom)  # noqa: F821
    for step_grads in grads:
        for p, g in zip(ps, step_grads):
            p.grad = torch.as_tensor(g).clone()
        opt.step()
    return dict(values=[p.detach().clone() for p in ps],
                leaves=[p.is_leaf and p.requires_grad for p in ps])


def momentum_zero_grad_and_missing_grads(a0, b0):
    """``step()`` with only ``a`` holding a gradient (``b`` after it), then ``zero_grad()``."""
    import torch
    a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = MomentumSGD([a, b], 0.1)  # noqa: F821
    a.grad = torch.ones_like(a)
    opt.step()                        # b has no gradient: left alone
    b_after = b.detach().clone()
    opt.zero_grad()
    return dict(b=b_after, grads=[None if p.grad is None else p.grad.detach().clone() for p in (a, b)])


# ------------------------------------------------------------------------------- a4: Learner
def learner_run(kind, weights, train_x, train_y, valid_x, valid_y, lr, epochs):
    """``Learner(dls, model, opt_func, loss_func, metrics).fit(epochs, lr)`` with the grader's
    model, data, loss, metrics and optimizer (``seeded.learner_inputs``); what it brings back
    (parameters, the gradients each step was handed, the log of calls, the recorder) is compared
    with the same run of the reference ``Learner`` in the grader (``probes.run_here``).

    The optimizer is SGD whose rate shrinks with each step it takes, so a second optimizer made
    by ``fit`` shows in the parameters. In the "modes" scenario the model has batch norm and
    computes something else when called in evaluation mode with gradients on (or in training
    mode with them off), so how validation runs shows in the values, not only in a log."""
    import types
    import torch
    from torch import nn
    from torch.nn import functional as F

    log = dict(opt_calls=[], steps=[], forwards=[])

    class GraderOpt:
        """SGD whose rate shrinks with each step it takes; records the gradients it steps with."""
        def __init__(self, parameters, lr):
            self.params, self.lr, self.taken = list(parameters), lr, 0
            log["opt_calls"].append([len(self.params), float(lr)])

        def step(self):
            log["steps"].append([torch.zeros(()) if p.grad is None else p.grad.detach().clone()
                                 for p in self.params])
            rate = self.lr / (1 + 0.25 * self.taken)
            self.taken += 1
            with torch.no_grad():
                for p in self.params:
                    if p.grad is not None:
                        p.sub_(rate * p.grad)

        def zero_grad(self):
            for p in self.params:
                p.grad = None

    class Spy(nn.Module):
        """The grader's model. Logs its calls; when ``strict``, a call in evaluation mode with
        gradients on (or in training mode with them off) gives other scores."""
        def __init__(self, inner, kinds, strict):
            super().__init__()
            self.inner, self.kinds, self.strict = inner, kinds, strict

        def forward(self, x):
            log["forwards"].append([self.kinds.get(x.data_ptr(), "other"),
                                    torch.is_grad_enabled(), self.training])
            out = self.inner(x)
            if self.strict and torch.is_grad_enabled() != self.training:
                out = 3 * out + 1
            return out

    def margin_loss(scores, targets):
        return torch.relu(1 - (2 * targets - 1) * scores).mean()

    def hit_rate(scores, targets):
        return ((scores > 0).float() == targets).float().mean()

    def top1(scores, targets):
        return (scores.argmax(1) == targets).float().mean()

    def mean_right_score(scores, targets):
        return scores.gather(1, targets[:, None]).mean()

    if kind == "3v7":
        inner = nn.Linear(784, 1)
        loss_func, metrics = margin_loss, hit_rate
    elif kind == "10":
        inner = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
        loss_func, metrics = F.cross_entropy, [top1, mean_right_score]
    else:
        inner = nn.Sequential(nn.Linear(784, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Linear(12, 10))
        loss_func, metrics = F.cross_entropy, [mean_right_score]
    with torch.no_grad():
        for p, w in zip(inner.parameters(), weights):
            p.copy_(torch.as_tensor(w))
    train = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(train_x, train_y)]
    valid = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(valid_x, valid_y)]
    kinds = {xb.data_ptr(): "train" for xb, _ in train}
    kinds.update({xb.data_ptr(): "valid" for xb, _ in valid})
    dls = types.SimpleNamespace(train=train, valid=valid)
    learn = Learner(dls, Spy(inner, kinds, kind == "modes"), opt_func=GraderOpt,  # noqa: F821
                    loss_func=loss_func, metrics=metrics)
    learn.fit(epochs, lr)
    rec = learn.recorder
    return dict(state={k: v.detach().clone() for k, v in inner.state_dict().items()},
                steps=log["steps"], opt_calls=log["opt_calls"], forwards=log["forwards"],
                losses=[float(v) for v in rec.losses],
                values=[[float(v) for v in row] for row in rec.values])


# What a probe that builds a model from parameters sends with it (``isolation.probe(helpers=)``).
MODEL_HELPERS = (leaves, linear_or_net, grads_of)
