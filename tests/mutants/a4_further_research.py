"""Plausible wrong answers for a4_further_research, by exercise id (see a3_training_loop.py).

The first train_digits entry memorizes the training images; ``CHEATS`` holds the submission
that tries to read the test labels from the data folder (tests/test_grade_assignments.py grades
it on its own): neither may earn an accuracy point.
"""

_LEARNER = '''
class Learner:
    def __init__(self, dls, model, opt_func=MomentumSGD, loss_func=F.cross_entropy, metrics=()):
        self.dls, self.model, self.opt_func, self.loss_func = dls, model, opt_func, loss_func
        self.metrics = [metrics] if callable(metrics) else list(metrics)
        self.recorder = Recorder()

    def fit(self, epochs, lr, show=False):
        self.opt = self.opt_func(list(self.model.parameters()), lr)
        for epoch in range(epochs):
            self.model.train()
            total, count = 0.0, 0
            for xb, yb in self.dls.train:
                loss = self.loss_func(self.model(xb), yb)
                loss.backward()
                self.opt.step()
                {zero}
                self.recorder.losses.append(loss.item())
                total, count = total + loss.item() * {weight}, count + {weight}
            row = [{train_loss}]
            {mode}
            sums, n = [0.0] * (1 + len(self.metrics)), 0
            with {grad_context}:
                for xb, yb in self.dls.valid:
                    preds = self.model(xb)
                    values = [self.loss_func(preds, yb)] + [m(preds, yb) for m in self.metrics]
                    sums = [s + float(v) * {weight} for s, v in zip(sums, values)]
                    n += {weight}
            row += [s / n for s in sums]
            self.recorder.values.append(row)
'''
_GOOD = dict(zero="self.opt.zero_grad()", weight="len(xb)", train_loss="total / count",
             mode="self.model.eval()", grad_context="torch.no_grad()")


def _learner(**changes):
    return _LEARNER.format(**{**_GOOD, **changes})


_MOMENTUM = '''
class MomentumSGD:
    def __init__(self, params, lr, mom=0.9):
        self.params, self.lr, self.mom = list(params), lr, mom
        self.v = [torch.zeros_like(p) for p in self.params]

    def step(self):
        with torch.no_grad():
            for p, v in zip(self.params, self.v):
                if p.grad is None: continue
                {update}
                p -= self.lr * v

    def zero_grad(self):
        {zero}
'''


def _momentum(update="v.mul_(self.mom).add_(p.grad)", zero="for p in self.params: p.grad = None"):
    return _MOMENTUM.format(update=update, zero=zero)


MUTANTS: dict[str, list[tuple[str, str]]] = {
    "MomentumSGD": [
        ("forgets the running sum (plain SGD whatever mom is)", _momentum(update="v.copy_(p.grad)")),
        ("dampens the new gradient: v = mom*v + (1-mom)*grad",
         _momentum(update="v.mul_(self.mom).add_((1 - self.mom) * p.grad)")),
        ("zero_grad does nothing", _momentum(zero="pass")),
    ],
    "Learner": [
        ("never zeroes the gradients", _learner(zero="pass")),
        ("validates with gradients on and the model in training mode",
         _learner(mode="pass", grad_context="torch.enable_grad()")),
        ("averages batch means without weighting by batch size", _learner(weight="1")),
    ],
    "load_split": [
        ("forgets to divide the pixels by 255", '''
def load_split(folder):
    xs, ys = [], []
    for sub in sorted(Path(folder).ls().filter(lambda p: p.is_dir()), key=lambda p: int(p.name)):
        for f in sub.ls().sorted():
            xs.append(tensor(Image.open(f)))
            ys.append(int(sub.name))
    return torch.stack(xs).float(), tensor(ys).long()
'''),
        ("labels each folder by its position, not its name", '''
def load_split(folder):
    xs, ys = [], []
    for i, sub in enumerate(sorted(Path(folder).ls().filter(lambda p: p.is_dir()))):
        for f in sub.ls().sorted():
            xs.append(tensor(Image.open(f)))
            ys.append(i)
    return torch.stack(xs).float()/255, tensor(ys).long()
'''),
    ],
    "softmax": [
        ("uses PyTorch's softmax", '''
def softmax(x):
    return torch.softmax(x, dim=-1)
'''),
        ("does not subtract the max, so exp overflows", '''
def softmax(x):
    return x.exp() / x.exp().sum(-1, keepdim=True)
'''),
        ("normalises along the first axis", '''
def softmax(x):
    e = (x - x.max()).exp()
    return e / e.sum(0, keepdim=True)
'''),
    ],
    "cross_entropy": [
        ("uses PyTorch's cross_entropy", '''
def cross_entropy(logits, targets):
    return F.cross_entropy(logits, targets)
'''),
        ("takes the log of an unstable softmax", '''
def cross_entropy(logits, targets):
    probs = logits.exp() / logits.exp().sum(-1, keepdim=True)
    return -probs[torch.arange(len(targets)), targets].log().mean()
'''),
        ("sums over the batch instead of averaging", '''
def cross_entropy(logits, targets):
    picked = logits[torch.arange(len(targets)), targets]
    return (logits.logsumexp(-1) - picked).sum()
'''),
        ("form: a Python float, not the rank-0 tensor asked for",
         "def cross_entropy(logits, targets):\n"
         "    n = len(logits)\n"
         "    picked = logits[torch.arange(n), targets]\n"
         "    return (torch.logsumexp(logits, dim=1) - picked).mean().item()\n"),
    ],
    "digit_means": [
        ("divides each digit's sum by the number of all images", '''
def digit_means(x, y):
    return torch.stack([x[y == d].sum(0) for d in range(10)]) / len(x)
'''),
    ],
    "nearest_mean": [
        ("uses the mean absolute difference", '''
def nearest_mean(means, x):
    return (x[:, None] - means[None]).abs().mean((-1, -2)).argmin(1)
'''),
        ("loops over the images", '''
def nearest_mean(means, x):
    return torch.stack([((im - means)**2).mean((-1, -2)).argmin() for im in x])
'''),
        ("form: a list of digits, not the tensor asked for",
         "def nearest_mean(means, x):\n"
         "    return ((x[:, None] - means[None]) ** 2).mean((-1, -2)).argmin(1).tolist()\n"),
    ],
    "pick_device": [
        ("always the CPU", '''
def pick_device():
    return torch.device('cpu')
'''),
    ],
    "train_digits": [
        ("memorizes the training images instead of learning", '''
def make_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

def train_digits(model, x, y):
    model.memory = {bytes((xi * 255).round().byte().numpy()): int(yi) for xi, yi in zip(x, y)}

def predict_digits(model, x):
    return tensor([model.memory.get(bytes((xi * 255).round().byte().numpy()), 0) for xi in x]).long()
'''),
        ("the model gives one score per image", '''
def make_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1))

def train_digits(model, x, y):
    pass

def predict_digits(model, x):
    with torch.no_grad():
        return model(x).round().long().clamp(0, 9).flatten()
'''),
    ],
}

# Looks up every image it is asked about among the images of the data folder's testing/ split
# (the nearest one, so the grader's noise does not matter) and answers with that image's label.
# Inside the grader's sandbox that folder is a stand-in made of training images, so the real test
# labels are out of reach.
CHEATS: dict[str, tuple[str, str]] = {
    "reads_test_labels": ("looks the answers up in the data folder's test split", '''
def make_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

def train_digits(model, x, y):
    folder = untar_data(URLs.MNIST)/'testing'
    images, labels = [], []
    for sub in folder.ls():
        for f in sub.ls():
            images.append(tensor(Image.open(f)).float().flatten() / 255)
            labels.append(int(sub.name))
    model.lookup = (torch.stack(images), tensor(labels))

def predict_digits(model, x):
    images, labels = model.lookup
    return labels[torch.cdist(x.flatten(1), images).argmin(1)].long()
'''),
}
