"""Plausible wrong answers for a3_training_loop, by exercise id.

Each entry is (description, replacement source for the exercise's `<id>-answer` cell). A notebook
that is the source notebook with only that cell replaced must lose points on that exercise and
on no other one.
"""

MUTANTS: dict[str, list[tuple[str, str]]] = {
    "flatten_images": [
        ("hard-codes 28x28 images", """
def flatten_images(images):
    return images.view(-1, 28*28)
"""),
        ("copies each image in a loop instead of making a view", """
def flatten_images(images):
    return torch.stack([im.flatten() for im in images])
"""),
        ("reads each image column by column", """
def flatten_images(images):
    return images.transpose(1, 2).reshape(len(images), -1)
"""),
        ("reshapes a copy of the images (clone): right values, but not a view", """
def flatten_images(images):
    return images.reshape(len(images), -1).clone()
"""),
        ("views a copy made by arithmetic", """
def flatten_images(images):
    return (images * 1).view(len(images), -1)
"""),
    ],
    "zip_pairs": [
        ("returns the zip object, not a list", """
def zip_pairs(a, b):
    return zip(a, b)
"""),
        ("makes lists instead of tuples", """
def zip_pairs(a, b):
    return [[x, y] for x, y in zip(a, b)]
"""),
        ("indexes up to len(a), so it fails when b is shorter", """
def zip_pairs(a, b):
    return [(a[i], b[i]) for i in range(len(a))]
"""),
        ("hard-codes the example from the question", """
def zip_pairs(a, b):
    return [(1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')]
"""),
    ],
    "init_params": [
        ("requires grad before scaling, so the result is not a leaf", """
def init_params(size, std=1.0):
    return torch.randn(size, requires_grad=True) * std
"""),
        ("ignores std", """
def init_params(size, std=1.0):
    return torch.randn(size).requires_grad_()
"""),
        ("uniform instead of normal random numbers", """
def init_params(size, std=1.0):
    return (torch.rand(size) * std).requires_grad_()
"""),
        ("forgets requires_grad", """
def init_params(size, std=1.0):
    return torch.randn(size) * std
"""),
        ("requires grad, then scales in a second line: not a leaf", """
def init_params(size, std=1.0):
    t = torch.randn(size).requires_grad_()
    return t * std
"""),
    ],
    "blank_image_quiz": [
        ("thinks a blank image scores something other than 0", """
no_bias_output = 0.5
bias_needed_for_blank = True
"""),
        ("thinks weights alone could move the blank image's score", """
no_bias_output = 0.0
bias_needed_for_blank = False
"""),
        ("form: the (1, 1) tensor of the scratch cell, not a number",
         "no_bias_output = torch.zeros(1, 28*28) @ torch.randn(28*28, 1)\n"
         "bias_needed_for_blank = True\n"),
    ],
    "linear1": [
        ("forgets the bias", """
def linear1(xb):
    return xb@weights
"""),
        ("loops over the images in Python", """
def linear1(xb):
    return torch.stack([x@weights + bias for x in xb])
"""),
        ("sums over the whole batch instead of per image", """
def linear1(xb):
    return (xb*weights.T).sum() + bias
"""),
        ("loops over the images with the loop hidden from TorchFunctionMode", """
def linear1(xb):
    with torch._C.DisableTorchFunction():
        return torch.stack([x@weights + bias for x in xb])
"""),
        ("loops with map instead of a for", """
def linear1(xb):
    return torch.stack(list(map(lambda x: x@weights + bias, xb)))
"""),
    ],
    "calc_grad": [
        ("forgets to call backward", """
def calc_grad(xb, yb, model):
    preds = model(xb)
    loss = mnist_loss(preds, yb)
"""),
        ("uses linear1 instead of the model it is given", """
def calc_grad(xb, yb, model):
    preds = linear1(xb)
    loss = mnist_loss(preds, yb)
    loss.backward()
"""),
        ("loss without sigmoid", """
def calc_grad(xb, yb, model):
    preds = model(xb)
    loss = torch.where(yb==1, 1-preds, preds).mean()
    loss.backward()
"""),
    ],
    "train_epoch": [
        ("forgets to reset the gradients", """
def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad * lr
"""),
        ("steps uphill (+= instead of -=)", """
def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data += p.grad * lr
            p.grad.zero_()
"""),
        ("ignores the learning rate", """
def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad
            p.grad.zero_()
"""),
        ("resets the gradients only once, after the epoch", """
def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad * lr
    for p in params:
        p.grad.zero_()
"""),
        ("updates the global weights and bias instead of params", """
def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in (weights, bias):
            p.data -= p.grad * lr
            p.grad.zero_()
"""),
    ],
    "batch_accuracy": [
        ("forgets sigmoid", """
def batch_accuracy(xb, yb):
    correct = (xb > 0.5) == yb
    return correct.float().mean()
"""),
        ("counts instead of averaging", """
def batch_accuracy(xb, yb):
    correct = (xb.sigmoid() > 0.5) == yb
    return correct.float().sum()
"""),
        ("squeezes the labels, so the comparison broadcasts to n x n", """
def batch_accuracy(xb, yb):
    correct = (xb.sigmoid() > 0.5) == yb.squeeze()
    return correct.float().mean()
"""),
        ("form: a Python float, not the rank-0 tensor asked for",
         "def batch_accuracy(xb, yb):\n"
         "    preds = xb.sigmoid()\n"
         "    correct = (preds > 0.5) == yb\n"
         "    return correct.float().mean().item()\n"),
    ],
    "validate_epoch": [
        ("returns a tensor", """
def validate_epoch(model):
    accs = [batch_accuracy(model(xb), yb) for xb, yb in valid_dl]
    return torch.stack(accs).mean()
"""),
        ("looks at the first batch only", """
def validate_epoch(model):
    xb, yb = first(valid_dl)
    return round(batch_accuracy(model(xb), yb).item(), 4)
"""),
        ("measures on the training DataLoader", """
def validate_epoch(model):
    accs = [batch_accuracy(model(xb), yb) for xb, yb in dl]
    return round(torch.stack(accs).mean().item(), 4)
"""),
        ("form: a rank-0 tensor, not the Python float asked for",
         "def validate_epoch(model):\n"
         "    accs = [batch_accuracy(model(xb), yb) for xb, yb in valid_dl]\n"
         "    return torch.stack(accs).mean()\n"),
    ],
    "BasicOptim": [
        ("keeps the parameters generator instead of a list", """
class BasicOptim:
    def __init__(self, params, lr): self.params, self.lr = params, lr

    def step(self, *args, **kwargs):
        for p in self.params: p.data -= p.grad.data * self.lr

    def zero_grad(self, *args, **kwargs):
        for p in self.params: p.grad = None
"""),
        ("steps uphill", """
class BasicOptim:
    def __init__(self, params, lr): self.params, self.lr = list(params), lr

    def step(self, *args, **kwargs):
        for p in self.params: p.data += p.grad.data * self.lr

    def zero_grad(self, *args, **kwargs):
        for p in self.params: p.grad = None
"""),
        ("zero_grad does nothing", """
class BasicOptim:
    def __init__(self, params, lr): self.params, self.lr = list(params), lr

    def step(self, *args, **kwargs):
        for p in self.params: p.data -= p.grad.data * self.lr

    def zero_grad(self, *args, **kwargs):
        pass
"""),
    ],
    "make_learner": [
        ("leaves out opt_func, so fastai uses Adam", """
def make_learner(dls):
    return Learner(dls, nn.Linear(28*28, 1), loss_func=mnist_loss, metrics=batch_accuracy)
"""),
        ("uses the notebook's dls instead of its argument", """
def make_learner(data):
    return Learner(dls, nn.Linear(28*28, 1), opt_func=SGD, loss_func=mnist_loss,
                   metrics=batch_accuracy)
"""),
        ("uses fastai's accuracy as the metric", """
def make_learner(dls):
    return Learner(dls, nn.Linear(28*28, 1), opt_func=SGD, loss_func=mnist_loss, metrics=accuracy)
"""),
        ("reuses one model for every Learner", """
shared_model = nn.Linear(28*28, 1)
def make_learner(dls):
    return Learner(dls, shared_model, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
"""),
        ("uses a plain PyTorch loss instead of mnist_loss", """
def make_learner(dls):
    return Learner(dls, nn.Linear(28*28, 1), opt_func=SGD, loss_func=F.binary_cross_entropy_with_logits,
                   metrics=batch_accuracy)
"""),
    ],
    "simple_net": [
        ("no ReLU between the layers", """
def simple_net(xb):
    res = xb@w1 + b1
    res = res@w2 + b2
    return res
"""),
        ("ReLU after the second layer instead of between", """
def simple_net(xb):
    res = xb@w1 + b1
    res = res@w2 + b2
    return res.max(tensor(0.0))
"""),
    ],
    "relu": [
        ("changes x in place", """
def relu(x):
    x[x < 0] = 0
    return x
"""),
        ("absolute value instead of zeroing negatives", """
def relu(x):
    return x.abs()
"""),
        ("a Python loop over the numbers, which loses the shape", """
def relu(x):
    return tensor([max(v, 0.0) for v in x.flatten().tolist()])
"""),
        ("clamps x itself in place and returns it", """
def relu(x):
    return x.clamp_(min=0)
"""),
        ("zeroes the negatives through a view of x", """
def relu(x):
    flat = x.view(-1)
    flat[flat < 0] = 0
    return x
"""),
        ("F.relu with inplace=True", """
def relu(x):
    return F.relu(x, inplace=True)
"""),
    ],
    "relu_module": [
        ("returns the function F.relu", """
def relu_module():
    return F.relu
"""),
        ("returns the class instead of an instance", """
def relu_module():
    return nn.ReLU
"""),
        ("a sigmoid module", """
def relu_module():
    return nn.Sigmoid()
"""),
    ],
    "collapse_linear": [
        ("adds the biases without passing b1 through w2", """
def collapse_linear(w1, b1, w2, b2):
    return w1@w2, b1 + b2
"""),
        ("keeps only the second bias", """
def collapse_linear(w1, b1, w2, b2):
    return w1@w2, b2
"""),
        ("forgets the second bias", """
def collapse_linear(w1, b1, w2, b2):
    return w1@w2, b1@w2
"""),
    ],
    "deeper_claims": [
        ("believes stacked linear layers add power", """
deeper_claims = {
    "one_nonlinearity_can_approximate_any_function": True,
    "stacked_linear_layers_without_activations_add_power": True,
    "more_smaller_layers_beat_fewer_larger_ones_in_practice": True,
    "deeper_models_are_easier_to_optimise": False,
}
"""),
        ("marks every claim True", """
deeper_claims = {
    "one_nonlinearity_can_approximate_any_function": True,
    "stacked_linear_layers_without_activations_add_power": True,
    "more_smaller_layers_beat_fewer_larger_ones_in_practice": True,
    "deeper_models_are_easier_to_optimise": True,
}
"""),
    ],
    "image_dls": [
        ("a random 20% validation split instead of the valid folder", """
def image_dls(path, bs=64):
    return ImageDataLoaders.from_folder(path, valid_pct=0.2, seed=42, bs=bs)
"""),
        ("ignores bs", """
def image_dls(path, bs=64):
    return ImageDataLoaders.from_folder(path)
"""),
        ("labels from a fixed vocab of 3 and 7", """
def image_dls(path, bs=64):
    return ImageDataLoaders.from_folder(path, vocab=['3', '7'], bs=bs)
"""),
    ],
    "resnet_learner": [
        ("a ResNet-34 instead of a ResNet-18", """
def resnet_learner(dls):
    return vision_learner(dls, resnet34, pretrained=False,
                          loss_func=F.cross_entropy, metrics=accuracy)
"""),
        ("error_rate as the metric", """
def resnet_learner(dls):
    return vision_learner(dls, resnet18, pretrained=False,
                          loss_func=F.cross_entropy, metrics=error_rate)
"""),
        ("leaves the loss to fastai's guess", """
def resnet_learner(dls):
    return vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
"""),
        ("two outputs whatever the data", """
def resnet_learner(dls):
    return vision_learner(dls, resnet18, pretrained=False, n_out=2,
                          loss_func=F.cross_entropy, metrics=accuracy)
"""),
    ],
    "count_parameters": [
        ("counts parameter tensors, not the numbers in them", """
def count_parameters(model):
    return len(list(model.parameters()))
"""),
        ("counts batch norm's running statistics too", """
def count_parameters(model):
    return sum(t.numel() for t in model.state_dict().values())
"""),
        ("counts only the weights, not the biases", """
def count_parameters(model):
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith('weight'))
"""),
        ("form: a tensor, not the Python int asked for",
         "def count_parameters(model):\n"
         "    return torch.tensor(sum(p.numel() for p in model.parameters()))\n"),
    ],
    "count_weight_layers": [
        ("counts only the top-level layers", """
def count_weight_layers(model):
    return sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model.children())
"""),
        ("counts every module that has parameters (batch norm too)", """
def count_weight_layers(model):
    return sum(1 for m in model.modules() if list(m.parameters(recurse=False)))
"""),
        ("counts the modules of any kind", """
def count_weight_layers(model):
    return len(list(model.modules())) - 1
"""),
    ],
}

# The sources above are written as indented blocks; store them without the leading blank line.
MUTANTS = {ex: [(what, src.lstrip("\n")) for what, src in entries] for ex, entries in MUTANTS.items()}
