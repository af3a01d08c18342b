"""Error hints for this assignment's notebooks: its first code cell calls `install`.

When a cell stops with "NameError: name '...' is not defined", or with NotImplementedError from
an exercise not written yet, the error then ends with a hint saying which exercise or cell to
finish first. The error stays the same error (the hint is a note on it). Nothing here is graded,
and nothing here needs changing: the notebook only imports it. (Generated with the assignment.)
"""


def _install_error_hints(sections, cells, stars):
    import textwrap
    made_by, answers, told, blank, last = {}, {}, set(), {}, [None]
    for at, cell in enumerate(cells):
        for name in cell[3].split():
            made_by.setdefault(name, at)
            if cell[0] == "answer":
                answers.setdefault(name, at)
    makers = {"answer": "your answer to exercise `%s`", "check": "the cells of exercise `%s`",
              "setup": "the setup cell `%s`", "cell": "the cell `%s`"}
    todos = {"answer": "write that answer and run its cell",
             "check": "finish that exercise and run its cells"}
    shorts = {"answer": "write that answer first", "check": "finish that exercise first"}
    after = (", then the cells below it down to this one (Run > Run All Above Selected Cell), "
             "then run this one again.")

    def where(at):
        section = cells[at][2]
        return ' (section "%s")' % sections[section] if section else " (near the top)"

    def explain(name, ns):
        at, via, seen = made_by.get(name), name, {name}
        while at is not None:       # back to the first cell that has all it needs
            dep = next((d for d in cells[at][4].split()
                        if d not in seen and d in made_by and d not in ns), None)
            if dep is None:
                break
            seen.add(dep)
            at, via = made_by[dep], dep
        for star_at, module in stars:   # a star import that has not run explains the rest
            names = cells[star_at][3].split()
            if names and not any(n in ns for n in names) and (at is None or star_at < at):
                head = "`%s` %s the setup cell with `from %s import *`" % (
                    name, "needs" if name in made_by else "comes from", module)
                return (("cell", star_at), head + where(star_at) + ", which has not run: run it"
                        + after, head + ", which has not run: run it first.")
        if at is None:
            return None
        kind, what = cells[at][:2]
        made = ("`%s` is made by " % name if via == name
                else "`%s` needs `%s`, which is made by " % (name, via))
        head = made + makers[kind] % what
        if kind in todos:
            return ("exercise", what), head + where(at) + ": " + todos[kind] + after, \
                head + ": " + shorts[kind] + "."
        needs = [cells[made_by[d]] for d in cells[at][4].split() if d in made_by]
        uses = sorted({cell[1] for cell in needs if cell[0] == "answer"})
        todo = "run it"
        if uses:                    # a plain cell that calls answers: they may stop it
            todo += "; if it stops there, finish exercise %s first" % ", ".join(
                "`%s`" % u for u in uses)
        stuck = [u for u in uses if u in blank and ns.get(blank[u][0]) is blank[u][1]]
        if stuck:                   # it stopped on an answer still blank: that is the cause
            return ("exercise", stuck[0]), head + where(at) + ": " + todo + after, \
                made + "a cell that cannot run until exercise `%s` is written." % stuck[0]
        return ("cell", at), head + where(at) + ": " + todo + after, head + ": run it first."

    def unwritten(value, tb, user, ns):
        if str(value):              # the blank answer raises it bare; a library's says why
            return None
        frames = []
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        if not frames:
            return None
        pick = frames[-1]           # where it was raised: an answer's function, or ...
        if pick.f_code.co_name not in answers:
            if pick.f_globals is not user:      # ... raised outside the notebook: no hint
                return None
            pick = next((f for f in reversed(frames) if f.f_globals is user
                         and f.f_code.co_name in answers), None)   # ... a helper of one
            if pick is None:
                return None
        function = pick.f_code.co_name
        at = answers[function]
        what = cells[at][1]
        if function in ns:          # still blank while the same function is bound there
            blank[what] = (function, ns[function])
        head = "`%s` is not written yet: its answer cell" % function
        if function != what:
            head = "`%s` (exercise `%s`) is not written yet: its answer cell" % (function, what)
        return (("exercise", what), head + where(at) + " still raises NotImplementedError. "
                "Write your code there in place of `raise NotImplementedError()`, run it, then "
                "run this cell again.", head + " still raises NotImplementedError.")

    def handler(shell, etype, value, tb, tb_offset=None):
        try:
            found = None
            if value is not last[0]:
                last[0] = value
                if type(value) is NameError and value.name and value.name not in shell.user_ns:
                    found = explain(value.name, shell.user_ns)
                elif type(value) is NotImplementedError:
                    found = unwritten(value, tb, shell.user_global_ns, shell.user_ns)
            if found:
                cause, full, short = found
                text = short if cause in told else full   # once in full, then one line or two
                told.add(cause)
                value.add_note(textwrap.fill("Hint: " + text, 78, break_on_hyphens=False,
                                             break_long_words=False))   # the error is unchanged
        except Exception:
            pass
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)

    from IPython import get_ipython
    get_ipython().set_custom_exc((NameError, NotImplementedError), handler)


def grader_can_read(name):
    """A technique self-check's last line: can the grader read the code of exercise `name`?"""
    import os
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        return
    try:
        import grader_reads
    except ImportError:
        print("(grader_reads.py, which came with this assignment, is not in this folder: this "
              "self-check cannot tell whether the grader can read your code)")
        return
    from IPython import get_ipython
    grader_reads.check(name, get_ipython().user_ns.get("In", []))


def install(notebook):
    """Called by the notebook's error-hints cell: later errors get their hint. Returns the
    function the technique self-checks call (`_grader_can_read`). Graded (the hidden grader,
    nbgrader's autograde), it installs nothing."""
    import os
    if os.environ.get("NBGRADER_EXECUTION") != "autograde" and notebook in TABLES:
        _install_error_hints(**TABLES[notebook])
    return grader_can_read


TABLES = {
    'gradient_descent': dict(
        sections=[
            '',
            '1. From a fixed recipe to a model that learns',
            '2. A toy loss: the parabola',
            '3. Gradients: let PyTorch do the calculus',
            '4. Stepping with a learning rate',
            '5. All seven steps together: fitting a curve',
            '6. A loss for recognising threes',
            '7. Sigmoid: squashing any number into (0, 1)',
            '8. Loss versus metric',
            '9. Mini-batches and the `DataLoader`',
        ],
        cells=[  # kind, exercise or first line, section, defines, needs
            ('setup', 'import warnings', 0, 'warnings string', ''),
            ('setup', 'def plot_function(f, xlabel=None, ylabe…', 0, 'plot_function', ''),
            ('answer', 'seven_steps', 1, 'STEP_NAMES seven_steps', ''),
            ('cell', 'def f(x): return x**2', 2, 'f', 'plot_function'),
            ('cell', 'ax = plot_function(f, "x", "x**2")', 2, 'ax', 'plot_function f'),
            ('cell', 'xt = tensor(3.).requires_grad_()', 3, 'xt yt', 'f'),
            ('answer', 'gradient_at', 3, 'gradient_at', ''),
            ('check', 'gradient_at', 3, 'g x g2', 'gradient_at'),
            ('answer', 'sgd_step', 4, 'sgd_step', ''),
            ('check', 'sgd_step', 4, 'w b gw gb new', 'sgd_step'),
            ('answer', 'descent_path', 4, 'descent_path', ''),
            ('check', 'descent_path', 4, 'p', 'descent_path'),
            ('cell', 'fig, axes = plt.subplots(1, 3, figsize=…', 4, 'fig axes xs lr label path', 'descent_path'),
            ('setup', 'def quad(t, params):', 5, 'quad mse', ''),
            ('cell', 'torch.manual_seed(42)', 5, 't y', 'quad'),
            ('answer', 'train_quadratic', 5, 'train_quadratic', ''),
            ('check', 'train_quadratic', 5, 'start fitted losses', 'train_quadratic t y mse quad'),
            ('cell', 'torch.manual_seed(0)', 5, 'init ax1 ax2', 'train_quadratic t y quad'),
            ('cell', 'tgt = tensor([1, 0, 1])', 6, 'tgt inp', ''),
            ('answer', 'mnist_loss', 6, 'mnist_loss', ''),
            ('check', 'mnist_loss', 6, 'loss better', 'mnist_loss inp tgt'),
            ('answer', 'accuracy_slope', 6, 'accuracy_slope', ''),
            ('check', 'accuracy_slope', 6, 's', 'accuracy_slope inp tgt'),
            ('answer', 'sigmoid', 7, 'sigmoid', ''),
            ('answer', 'mnist_loss_sigmoid', 7, 'mnist_loss_sigmoid', ''),
            ('check', 'mnist_loss_sigmoid', 7, 'scores', 'mnist_loss_sigmoid tgt mnist_loss'),
            ('answer', 'usable_as_loss', 8, 'usable_as_loss', ''),
            ('check', 'usable_as_loss', 8, 'expected_keys', 'usable_as_loss'),
            ('cell', 'coll = range(15)', 9, 'coll dl', ''),
            ('cell', 'ds = L(enumerate(string.ascii_lowercase…', 9, 'ds', 'string'),
            ('answer', 'batches_of', 9, 'batches_of', ''),
            ('check', 'batches_of', 9, 'batches pairs', 'batches_of ds'),
        ],
        stars=[(0, 'fastai.vision.all')],
    ),
}
