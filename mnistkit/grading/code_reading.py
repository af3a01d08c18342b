"""Reading a technique from the answer's source: rules built on ``source_checks``.

Why: a technique ("returns a view", "makes a leaf", "no Python loop", "leaves its input alone",
"builds a module", "written by hand") cannot be measured in the sandbox, where the student's
code could forge any measure (the trust rule, docs/ARCHITECTURE.md). It is decided here, in the
grader, from the syntax tree of the questioned code (``source_checks.function_code``: the last
top-level binding of the exercise's name and what it reaches), by the rules below, which each
notebook states ("What the grader reads in your code"). The hidden tests name a rule and the
advice a student reads; the rules themselves are engine, kept out of the test modules.

Each rule takes a ``source_checks.FunctionCode`` and returns the problems found (plain words; an
empty list: the technique holds). ``expect_technique`` turns them into a check.
"""
from __future__ import annotations

import ast

from mnistkit.grading import source_checks
from mnistkit.grading.expect import Mismatch, check


def _returns(fn: ast.AST) -> list[ast.AST | None]:
    """The values the function returns (a lambda's body), nested functions left out."""
    if isinstance(fn, ast.Lambda):
        return [fn.body]
    found, todo = [], list(getattr(fn, "body", []))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Return):
            found.append(node.value)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _parameters(fn: ast.AST) -> list[str]:
    a = getattr(fn, "args", None)
    return [x.arg for x in a.posonlyargs + a.args] if a else []


def _assigned(fn: ast.AST) -> dict[str, list[ast.AST]]:
    """name -> the values assigned to it in the function (any binding that is not a plain
    ``name = value`` counts as an unknown value, None)."""
    found: dict[str, list] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found.setdefault(name.id, []).append(
                            node.value if isinstance(target, ast.Name) else None)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)) \
                and isinstance(node.target, ast.Name):
            found.setdefault(node.target.id, []).append(
                node.value if isinstance(node, ast.NamedExpr) else None)
        elif isinstance(node, (ast.For, ast.With, ast.comprehension)):
            targets = [node.target] if not isinstance(node, ast.With) else \
                [item.optional_vars for item in node.items if item.optional_vars]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found.setdefault(name.id, []).append(None)
    return found


EVASION = "code the grader cannot read"


def _base(code):
    """The answer's own function node, and the problems every technique rule shares."""
    found = source_checks.evasions(code)
    problems = [f"{EVASION} (see \"What the grader reads in your code\"): "
                + ", ".join(found)] if found else []
    return code.nodes[code.name], problems


VIEW_METHODS = {"view", "reshape", "flatten"}
# Calls allowed anywhere in flatten_images: the view itself and arithmetic on the shape.
SHAPE_CALLS = VIEW_METHODS | {"size", "numel", "len", "int", "prod", "dim"}


def view_problems(code) -> list[str]:
    """flatten_images must return `images.view(...)` (or `.reshape`/`.flatten`, or
    `torch.reshape(images, ...)`/`torch.flatten(images, ...)`) of its own argument, directly
    or through one name, with no other call than those and shape arithmetic, and no loop."""
    fn, problems = _base(code)
    problems += source_checks.python_loops(code)
    params = _parameters(fn)
    images = params[0] if params else None
    assigned = _assigned(fn)
    if images in assigned:
        problems.append(f"`{images}` is given a new value before the view is taken")
    others = sorted(source_checks.calls(code) - SHAPE_CALLS - set(code.nodes))
    if others:
        problems.append("it calls " + ", ".join(f"`{c}`" for c in others))

    def is_view(value, depth=0) -> bool:
        if isinstance(value, ast.Name) and depth == 0:
            values = assigned.get(value.id, [])
            return len(values) == 1 and values[0] is not None and is_view(values[0], 1)
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and value.func.attr in VIEW_METHODS):
            return False
        receiver = value.func.value
        if isinstance(receiver, ast.Name) and receiver.id == images:
            return True
        return (isinstance(receiver, ast.Name) and receiver.id == "torch" and value.args
                and isinstance(value.args[0], ast.Name) and value.args[0].id == images)

    returns = _returns(fn)
    if not returns or not all(is_view(v) for v in returns):
        problems.append(f"what it returns is not `{images}.view(...)` of the images it is given")
    return problems


LEAF_FACTORIES = {"randn", "normal", "rand", "zeros", "ones", "empty", "full", "tensor",
                  "randn_like", "rand_like", "zeros_like", "ones_like", "empty_like", "full_like"}


def _keyword_true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def leaf_problems(code) -> list[str]:
    """init_params must return a leaf that tracks gradients: the last thing done to what it
    returns is `.requires_grad_()` (or `nn.Parameter(...)`, or a factory call such as
    `torch.randn(size, requires_grad=True)` returned as it is); a tensor made with
    `requires_grad=True` and then computed on is not a leaf."""
    fn, problems = _base(code)
    assigned = _assigned(fn)

    def grad_tracking_inside(node) -> bool:
        return any(isinstance(n, ast.Call) and _keyword_true(n, "requires_grad")
                   for n in ast.walk(node))

    def is_leaf(value, depth=0) -> bool:
        if isinstance(value, ast.Name) and depth == 0:
            values = assigned.get(value.id, [])
            if len(values) != 1 or values[0] is None:
                return False
            if is_leaf(values[0], 1):
                return True
            # `t = ...; t.requires_grad_()` (a statement) or `t.requires_grad = True`
            return any(
                (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr == "requires_grad_" and isinstance(n.func.value, ast.Name)
                 and n.func.value.id == value.id and not n.args)
                or (isinstance(n, ast.Assign) and len(n.targets) == 1
                    and isinstance(n.targets[0], ast.Attribute)
                    and n.targets[0].attr == "requires_grad"
                    and isinstance(n.targets[0].value, ast.Name)
                    and n.targets[0].value.id == value.id
                    and isinstance(n.value, ast.Constant) and n.value.value is True)
                for n in ast.walk(fn)) and not grad_tracking_inside(values[0])
        if not isinstance(value, ast.Call):
            return False
        name = value.func.attr if isinstance(value.func, ast.Attribute) else \
            value.func.id if isinstance(value.func, ast.Name) else None
        if name == "requires_grad_":
            ok_args = not value.args or (len(value.args) == 1 and isinstance(value.args[0], ast.Constant)
                                         and value.args[0].value is True)
            return ok_args and isinstance(value.func, ast.Attribute) \
                and not grad_tracking_inside(value.func.value)
        if name == "Parameter":
            return not any(k.arg == "requires_grad" for k in value.keywords)
        return name in LEAF_FACTORIES and _keyword_true(value, "requires_grad") \
            and not any(grad_tracking_inside(a) for a in value.args)

    returns = _returns(fn)
    if not returns or not all(is_leaf(v) for v in returns):
        problems.append("what it returns is not a leaf tensor that tracks gradients (make "
                        "`.requires_grad_()` the last thing done to it)")
    return problems


def loop_problems(code) -> list[str]:
    _, problems = _base(code)
    return problems + source_checks.python_loops(code)


# Methods and attributes that give another view of the same memory: changing the result in
# place changes the argument too.
VIEWS = {"view", "view_as", "reshape", "flatten", "squeeze", "unsqueeze", "detach", "transpose",
         "permute", "expand", "expand_as", "t", "narrow", "select", "unflatten", "as_strided",
         "contiguous", "data", "T", "mT"}


def in_place_problems(code) -> list[str]:
    """relu must not change its argument: `source_checks.in_place_operations` on the argument,
    plus the same on names that are views of it (`y = x`, `y = x.view(-1)`, `y = x.data`),
    `torch.relu_(x)`-style functions and `inplace=True`."""
    fn, problems = _base(code)
    problems += source_checks.in_place_operations(code)
    aliases = set(_parameters(fn))

    def root(node):
        while True:
            if isinstance(node, ast.Attribute) and node.attr in VIEWS:
                node = node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in VIEWS:
                node = node.func.value
            elif isinstance(node, ast.Subscript) and all(
                    isinstance(s, (ast.Slice, ast.Constant)) or
                    (isinstance(s, ast.UnaryOp) and isinstance(s.operand, ast.Constant))
                    for s in (node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice])):
                node = node.value                     # basic slicing: a view
            else:
                return node.id if isinstance(node, ast.Name) else None

    changed = True
    while changed:                                    # names that are views of the argument
        changed = False
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and root(node.value) in aliases:
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id not in aliases:
                        aliases.add(target.id)
                        changed = True

    def target_root(node):
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr.endswith("_") \
                    and not func.attr.startswith("_"):
                if root(func.value) in aliases:
                    problems.append(f"`.{func.attr}(...)`")
                elif node.args and root(node.args[0]) in aliases:     # torch.relu_(x)
                    problems.append(f"`{func.attr}(...)`")
            if any(k.arg == "inplace" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                   for k in node.keywords):
                problems.append("`inplace=True`")
        elif isinstance(node, ast.AugAssign) and target_root(node.target) in aliases:
            problems.append("an augmented assignment (`+=`, ...)")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, (ast.Subscript, ast.Attribute)) and target_root(target) in aliases:
                    problems.append("an assignment into the tensor (`x[...] = ...`)")
    return sorted(set(problems))


def module_problems(code) -> list[str]:
    """relu_module must create a module: call `nn.ReLU()` or a class of the notebook's own
    that subclasses `nn.Module`."""
    _, problems = _base(code)
    module_classes = {name for name, node in code.nodes.items() if isinstance(node, ast.ClassDef)
                      and any((isinstance(b, ast.Attribute) and b.attr == "Module")
                              or (isinstance(b, ast.Name) and b.id == "Module") for b in node.bases)}
    if not source_checks.calls(code) & ({"ReLU"} | module_classes):
        problems.append("it does not create a module (`nn.ReLU()`, or an instance of your own "
                        "`nn.Module` class)")
    return problems


def expect_technique(notebook, name: str, rule, advice: str) -> None:
    problems = rule(source_checks.function_code(notebook, name))
    own = [p for p in problems if not p.startswith(EVASION)]
    hidden = [p for p in problems if p.startswith(EVASION)]
    if own:
        raise Mismatch(f"{name}: {advice}; in your code: {'; '.join(own + hidden)}")
    check(not hidden, f"{name}: its technique earns no point while the notebook holds "
                      f"{'; '.join(hidden)}")



def expect_written_by_hand(notebook, name, forbidden, advice):
    """From the source, in the grader: ``name`` (and the notebook functions it calls) calls none
    of ``forbidden`` (the student's own ``softmax`` is theirs to call) and hides nothing."""
    source_checks.expect_no_evasion(notebook, name)
    code = source_checks.function_code(notebook, name)
    used = set()
    for fn in code.nodes.values():
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in forbidden:
                used.add(func.attr)
            elif isinstance(func, ast.Name) and func.id in forbidden \
                    and func.id not in code.nodes:
                used.add(func.id)
    check(not used, f"{name} should be written by hand ({advice}), not with PyTorch's "
                    f"{sorted(used)[0] if used else ''}")
