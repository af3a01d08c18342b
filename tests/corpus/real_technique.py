"""Ways around the technique checks that the old deny-list let through (issue 18), for
tests/test_grade_corpus_real.py. Each answer computes the right values, so it deserves every
point but its technique check, exactly: the grader re-binds the code it read before it
questions an exercise (plugin.rebind_read_code), follows helpers through assignments and
modules, and charges what can still change that code only to the exercises it can reach.

Before this change each of these kept full marks (a1 28/28, a2 31/31)."""
from __future__ import annotations

from .real import Case, share_without

A1, A2 = "a1_pixel_similarity", "a2_gradient_descent"
A1_LOOP_CHECK = "test_mnist_distance_broadcasts_without_a_python_loop"
A1_LISTCOMP_CHECK = "test_odd_doubled_uses_a_list_comprehension"


def a1_without_technique(*exercises: str) -> dict[str, float]:
    checks = {"mnist_distance": A1_LOOP_CHECK, "odd_doubled": A1_LISTCOMP_CHECK}
    return {ex: share_without(A1, ex, checks[ex]) for ex in exercises}


LOOPED_HELPER = '''\
def _per_image(a, b):
    if a.ndim == b.ndim:
        return (a - b).abs().mean((-1, -2))
    return torch.stack([_per_image(x, b) for x in a])
'''
THROUGH_AN_ALIAS = "impl = _per_image\n\ndef mnist_distance(a, b):\n    return impl(a, b)\n"
REBINDER = '''\
def _swap():
    global odd_doubled
    odd_doubled = lambda xs: list(map(lambda x: 2 * x, filter(lambda x: x % 2, xs)))

_swap()
'''
LOOPED_SOURCE = ("def mnist_distance(a, b):\\n"
                 "    if a.ndim == b.ndim:\\n        return (a - b).abs().mean((-1, -2))\\n"
                 "    return torch.stack([mnist_distance(x, b) for x in a])\\n")
EXEC_ALIAS = f'run = exec\nrun("{LOOPED_SOURCE}")\n'
NAMESPACE_WRITE = "get_ipython().user_ns['mnist_distance'] = _per_image\n"
L1_WITH_EXEC = ("def l1_distance(a, b):\n    return (a - b).abs().mean()\n\n"
                f'exec("{LOOPED_SOURCE}")\n')
REDUCE_LOSS = '''\
import functools

def mnist_loss(inputs, targets):
    """Mean distance of each prediction from its target, one pair at a time."""
    pairs = torch.stack([inputs.flatten(), targets.flatten().float()], 1)
    total = functools.reduce(
        lambda acc, pair: acc + torch.where(pair[1] == 1, 1 - pair[0], pair[0]), pairs,
        torch.tensor(0.0))
    return total / len(pairs)
'''

CASES = [
    Case(A1, "helper_alias_and_global_rebinder",
         "a loop in a helper reached through an assignment; a function that rebinds an answer "
         "with `global` after its clean def",
         {"mnist_distance": THROUGH_AN_ALIAS}, a1_without_technique("mnist_distance", "odd_doubled"),
         cells=[("before:mnist_distance", "code", LOOPED_HELPER), ("after:odd_doubled", "code", REBINDER)],
         exact=True),
    Case(A1, "exec_under_another_name_and_user_ns",
         "`exec` under another name and a write to IPython's namespace swap in a looping version "
         "after the clean def: dynamic code reaches every answer",
         {}, a1_without_technique("mnist_distance", "odd_doubled"),
         cells=[("after:mnist_distance", "code", EXEC_ALIAS), ("end", "code", LOOPED_HELPER),
                ("end", "code", NAMESPACE_WRITE)],
         exact=True),
    Case(A1, "exec_in_another_answer_cell",
         "a plain `exec` in l1_distance's answer cell (no technique check there) redefines "
         "mnist_distance; l1_distance keeps its points",
         {"l1_distance": L1_WITH_EXEC}, a1_without_technique("mnist_distance", "odd_doubled"),
         exact=True),
    Case(A2, "functools_reduce_loss", "a loop written as `functools.reduce(...)`",
         {"mnist_loss": REDUCE_LOSS},
         {"mnist_loss": share_without(A2, "mnist_loss", "test_mnist_loss_no_python_loop")}, exact=True),
]
