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
    'training_loop': dict(
        sections=[
            '',
            '1. The data, once more',
            '2. From images to a training set',
            '3. Parameters: weights and a bias',
            '4. Predictions for a whole mini-batch with `@`',
            '5. Gradients',
            '6. One epoch of training',
            '7. Measuring accuracy',
            '8. An optimizer',
            "9. fastai's `Learner`",
            '10. Adding a non-linearity',
            '11. Going deeper: a ResNet-18 with fastai',
            '12. Looking back: activations and depth',
        ],
        cells=[  # kind, exercise or first line, section, defines, needs
            ('setup', 'import warnings', 0, 'warnings', ''),
            ('setup', 'path = untar_data(URLs.MNIST_SAMPLE)', 1, 'path load_digits stacked_threes stacked_sevens valid_3_tens valid_7_tens', ''),
            ('setup', 'torch.set_num_threads(1)   # our models…', 1, 'mnist_loss plot_function', ''),
            ('cell', 't = torch.arange(6)', 2, 't v', ''),
            ('answer', 'flatten_images', 2, 'flatten_images', ''),
            ('check', 'flatten_images', 2, 'flat3', 'flatten_images stacked_threes'),
            ('setup', 'train_x = torch.cat([stacked_threes, st…', 2, 'train_x train_y', 'stacked_threes stacked_sevens'),
            ('answer', 'zip_pairs', 2, 'zip_pairs', ''),
            ('check', 'zip_pairs', 2, 'got pairs', 'zip_pairs train_x train_y'),
            ('setup', 'dset = list(zip(train_x, train_y))', 2, 'dset x y', 'train_x train_y'),
            ('setup', 'dl = DataLoader(dset, batch_size=256)', 2, 'dl xb yb', 'dset'),
            ('setup', 'valid_x = torch.cat([valid_3_tens, vali…', 2, 'valid_x valid_y valid_dset valid_dl', 'valid_3_tens valid_7_tens'),
            ('answer', 'init_params', 3, 'init_params', ''),
            ('check', 'init_params', 3, 'p spread', 'init_params'),
            ('cell', 'torch.manual_seed(42)', 3, 'weights bias', 'init_params'),
            ('answer', 'blank_image_quiz', 3, 'no_bias_output bias_needed_for_blank', ''),
            ('cell', 'batch = train_x[:4]', 4, 'batch', 'train_x'),
            ('answer', 'linear1', 4, 'linear1', ''),
            ('check', 'linear1', 4, 'preds one', 'linear1 batch train_x weights bias'),
            ('cell', 'loss = mnist_loss(preds, train_y[:4])', 5, 'loss', 'mnist_loss preds train_y'),
            ('answer', 'calc_grad', 5, 'calc_grad', ''),
            ('check', 'calc_grad', 5, 'w_check b_check model_check first_grad', 'calc_grad batch train_y'),
            ('answer', 'train_epoch', 6, 'train_epoch', ''),
            ('check', 'train_epoch', 6, 'loss_before loss_after', 'mnist_loss train_x train_y train_epoch'),
            ('answer', 'batch_accuracy', 7, 'batch_accuracy', ''),
            ('check', 'batch_accuracy', 7, 'scores labels acc', 'batch_accuracy'),
            ('answer', 'validate_epoch', 7, 'validate_epoch', ''),
            ('check', 'validate_epoch', 7, 'always_3', 'validate_epoch'),
            ('cell', 'lr = 1.', 7, 'lr params', 'weights bias train_epoch linear1 validate_epoch'),
            ('setup', 'for i in range(10):', 7, 'i', 'train_epoch linear1 lr params validate_epoch'),
            ('cell', 'torch.manual_seed(42)', 8, 'linear_model w b', ''),
            ('answer', 'BasicOptim', 8, 'BasicOptim', ''),
            ('check', 'BasicOptim', 8, 'p_check opt_check', 'BasicOptim'),
            ('cell', 'opt = BasicOptim(linear_model.parameter…', 8, 'opt train_epoch_opt train_model', 'BasicOptim linear_model lr'),
            ('cell', 'dls = DataLoaders(dl, valid_dl)', 9, 'dls', 'dl valid_dl'),
            ('answer', 'make_learner', 9, 'make_learner', ''),
            ('check', 'make_learner', 9, 'learn', 'make_learner dls mnist_loss train_x'),
            ('cell', 'torch.manual_seed(42)', 10, 'w1 b1 w2 b2', 'init_params'),
            ('answer', 'simple_net', 10, 'simple_net', ''),
            ('check', 'simple_net', 10, 'out blank', 'simple_net batch b1 w2 b2'),
            ('answer', 'relu', 10, 'relu', ''),
            ('check', 'relu', 10, 'x_check', 'relu'),
            ('answer', 'collapse_linear', 10, 'collapse_linear', ''),
            ('check', 'collapse_linear', 10, 'w1_check b1_check w2_check b2_check two_layers', 'collapse_linear'),
            ('cell', 'with_relu = (x_check@w1_check + b1_chec…', 10, 'with_relu', 'x_check w1_check b1_check w2_check b2_check w_check b_check'),
            ('answer', 'relu_module', 10, 'relu_module', ''),
            ('check', 'relu_module', 10, 'm', 'relu_module'),
            ('cell', 'torch.manual_seed(42)', 10, 'seq_net', ''),
            ('setup', 'fig, ax = plt.subplots(figsize=(4, 2.5))', 10, 'fig ax', 'learn'),
            ('answer', 'image_dls', 11, 'image_dls', ''),
            ('check', 'image_dls', 11, 'dls_check sizes xb_check yb_check', 'image_dls path'),
            ('answer', 'resnet_learner', 11, 'resnet_learner', ''),
            ('check', 'resnet_learner', 11, 'learn_check scores_check', 'resnet_learner dls'),
            ('answer', 'count_parameters', 11, 'count_parameters', ''),
            ('check', 'count_parameters', 11, 'n_check', 'count_parameters'),
            ('answer', 'count_weight_layers', 11, 'count_weight_layers', ''),
            ('check', 'count_weight_layers', 11, 'nested_check', 'count_weight_layers'),
            ('setup', 'for name, model in [("two-layer net (se…', 11, 'name model', 'seq_net learn count_weight_layers count_parameters'),
            ('setup', 'import os, time', 11, 'os time start', 'learn'),
            ('answer', 'deeper_claims', 12, 'deeper_claims', ''),
            ('check', 'deeper_claims', 12, 'expected_keys', 'deeper_claims'),
        ],
        stars=[(0, 'fastai.vision.all')],
    ),
}
