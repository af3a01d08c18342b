"""Does a4's data limit measure information, across everything a submission carries in (issue 18)?

The grader counts what a notebook carries beyond the release (``carried_bytes`` in a4's hidden
tests: its text, lzma-compressed with the release as context) on the notebook the sandbox gets
(``submission.clean``/``prepare``: kit-made ids, no outputs, attachments or metadata but the
grader's nbgrader keys), and relabels the digits ``train_digits`` learns (``relabeling``). These
tests need no sandbox: they read notebooks as the grader prepares them, measure honest and
attack notebooks against the limit, and run the attacks' own decoding here. The sandboxed
gradings of the same notebooks are cases of tests/corpus/real_a4_further_research.py.
"""
import importlib
import json
import os
import time

import numpy as np
import nbformat
import pytest
import torch

from mnistkit import examples
from mnistkit.catalog import read_cells
from mnistkit.data import shipped_mnist
from mnistkit.grading import submission
from mnistkit.paths import RELEASE, SOURCE

from .corpus import real_a4_further_research as corpus

hidden = importlib.import_module("autograder.test_a4_further_research")

ASSIGNMENT = "a4_further_research"
NAME = "further_research"
LIMIT = hidden.MAX_CARRIED_BYTES


def released():
    return read_cells(RELEASE / ASSIGNMENT / f"{NAME}.ipynb")


def write_submission(folder, answers, cells=(), written=None):
    """The release with ``answers`` filled in, ``cells`` added and the written-answer prompts
    replaced by ``written`` (task grade id -> text), as a student's folder."""
    examples.with_answers(ASSIGNMENT, answers, folder, cells)
    if written:
        path = folder / f"{NAME}.ipynb"
        nb = nbformat.read(path, as_version=4)
        after = None
        for cell in nb.cells:
            if after and cell.source.startswith("*Write your answer"):
                cell.source, after = written[after], None
            after = cell.metadata.get("nbgrader", {}).get("grade_id") if \
                cell.metadata.get("nbgrader", {}).get("grade_id") in written else after
        nbformat.write(nb, path)
    return folder


def graded(folder, scratch):
    """The notebook grading runs and the sandbox gets, prepared as ``mnistkit grade`` does."""
    prepared, _ = submission.prepare(folder, [NAME], [RELEASE / ASSIGNMENT, SOURCE / ASSIGNMENT],
                                     scratch)
    assert prepared[0].path is not None, prepared[0].reason
    return prepared[0].path


def carried(folder, scratch) -> int:
    return hidden.carried_bytes(read_cells(graded(folder, scratch)), released())


def test_the_release_as_handed_out_carries_nothing(tmp_path):
    """Does the untouched notebook carry 0 bytes, and a reordered one more than 0?"""
    cells = released()
    assert hidden.carried_bytes(cells, cells) == 0
    assert hidden.carried_bytes(cells[1:] + cells[:1], cells) > 0


def test_reference_and_verbose_honest_notebooks_are_well_under_the_limit(tmp_path):
    """Do the reference answers (~1.1 KB) and two verbose learner notebooks (comments,
    docstrings, prints, a plot, helper cells, notes, written answers, kept experiments: ~3.4 and
    ~3.9 KB) carry less than half of the limit?"""
    reference = examples.reference_answers(ASSIGNMENT)
    sizes = {
        "reference": carried(write_submission(tmp_path / "r", reference), tmp_path / "rs"),
        "verbose": carried(write_submission(tmp_path / "v", corpus.HONEST_ANSWERS, corpus.HONEST_CELLS,
                                            corpus.HONEST_WRITTEN), tmp_path / "vs"),
        "journal": carried(write_submission(tmp_path / "j", corpus.JOURNAL_ANSWERS, corpus.JOURNAL_CELLS,
                                            corpus.HONEST_WRITTEN), tmp_path / "js"),
    }
    print(sizes)
    assert sizes["reference"] < sizes["verbose"] < sizes["journal"] < LIMIT / 2, sizes


def test_a_table_of_the_test_set_is_far_over_the_limit(tmp_path):
    """Is the corpus's table of the test set (4x4 block means and labels of 10,000 images)
    over three times the limit, though compression could make a repetitive text tiny?"""
    answers = dict(examples.reference_answers(ASSIGNMENT),
                   train_digits=corpus.TABLE_ATTACK.replace("{table}", corpus.test_set_table()))
    size = carried(write_submission(tmp_path / "t", answers), tmp_path / "ts")
    assert size > 3 * LIMIT, size


def test_repeated_code_costs_little_and_random_data_what_it_holds():
    """Does a helper cell pasted 50 times cost little more than once, and 6,000 random bytes
    (as hex, twice as many characters) at least 6,000?"""
    cells = released()
    helper = {"cell_type": "code", "metadata": {},
              "source": "def show(x, title=''):\n    plt.imshow(x, cmap='gray')\n    plt.title(title)\n"}
    once = hidden.carried_bytes(cells + [helper], cells)
    fifty = hidden.carried_bytes(cells + [helper] * 50, cells)
    assert fifty < once + 300, (once, fifty)
    blob = {"cell_type": "code", "metadata": {},
            "source": f"W = '{np.random.default_rng(0).bytes(6000).hex()}'\n"}
    assert hidden.carried_bytes(cells + [blob], cells) >= 6000


def test_copies_of_the_courses_own_cells_are_not_free():
    """Can data hide in which course cells a student copies where (free if copies were
    skipped)? 300 copies chosen at random hold 300 x log2(57) bits, about 220 bytes."""
    cells = released()
    rng = np.random.default_rng(1)
    copies = [dict(cells[i]) for i in rng.integers(0, len(cells), 300)]
    assert hidden.carried_bytes(cells + copies, cells) > 220


def test_a_huge_notebook_is_stopped_early_and_still_over():
    """Is 8 MB of random text (minutes at lzma's pace for 256 MB) judged over the limit in
    a second or two, without compressing all of it?"""
    cells = released()
    blob = {"cell_type": "markdown", "metadata": {},
            "source": np.random.default_rng(2).bytes(6 << 20).hex()[: 8 << 20]}
    start = time.perf_counter()
    size = hidden.carried_bytes(cells + [blob], cells, stop_above=LIMIT)
    assert size > LIMIT and time.perf_counter() - start < 10


def test_the_sandbox_copy_keeps_no_id_metadata_output_or_attachment_of_the_student(tmp_path):
    """Are cell ids kit-made, outputs and attachments gone, and nbgrader metadata only the keys
    grading reads, with their types, in the notebook the sandbox gets?"""
    answers = examples.reference_answers(ASSIGNMENT)
    folder = write_submission(tmp_path / "s", answers,
                              [("end", "markdown", "", f"payload{i:03d}" + "x" * 54) for i in range(20)])
    path = folder / f"{NAME}.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell["metadata"]["payload"] = "y" * 100
        cell["metadata"].setdefault("nbgrader", {})["extra"] = "z" * 100
        if cell["cell_type"] == "markdown":
            cell["attachments"] = {"w.png": {"image/png": "AAAA" * 100}}
        else:
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "o" * 100}]
    path.write_text(json.dumps(nb))
    text = graded(folder, tmp_path / "scratch").read_text()
    for planted in ("payload", "x" * 54, "y" * 100, "z" * 100, "AAAA" * 100, "o" * 100):
        assert planted not in text, planted
    ids = [c["id"] for c in json.loads(text)["cells"]]
    release_ids = {c["id"] for c in released()}
    assert all(i.startswith("cell-") or i in release_ids for i in ids) and len(set(ids)) == len(ids)
    for cell in json.loads(text)["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        assert set(cell["metadata"]) <= {"nbgrader"} and set(meta) <= set(submission.NBGRADER_KEYS)


def test_nbgraders_copy_gets_the_release_not_the_mark_schemes():
    """nbgrader restores locked cells from its gradebook, mark schemes included: does the copy
    its autograde sends to the sandbox hold the released cells and kit-made ids instead?"""
    release = RELEASE / ASSIGNMENT / f"{NAME}.ipynb"
    nb = submission.read_release(SOURCE / ASSIGNMENT / f"{NAME}.ipynb", full=True)
    nb, _ = submission.restore_cells(nb, submission.read_release(release, full=True), replace=False)
    assert "MARK SCHEME" in json.dumps(nb)    # as GradeWithHiddenTests has it
    nb.cells[0]["id"] = "studentchosenid"
    copy = submission.grading_copy(nb, release)
    text = json.dumps(copy)
    assert "MARK SCHEME" not in text and "BEGIN SOLUTION" in text   # answers are the student's
    assert "studentchosenid" not in text
    codes = [c for c in nb.cells if c["cell_type"] == "code"]
    assert len(codes) == len([c for c in copy.cells if c["cell_type"] == "code"])  # results map back


def test_relabeling_moves_every_digit_and_repeats():
    """Is the relabeling a permutation with no fixed digit, the same for the same seed, and
    different across seeds?"""
    found = set()
    for seed in range(20):
        r = hidden.relabeling(np.random.default_rng(seed))
        assert sorted(r) == list(range(10)) and not (r == np.arange(10)).any()
        assert (r == hidden.relabeling(np.random.default_rng(seed))).all()
        found.add(tuple(r))
    assert len(found) == 20


def _attack_scope(answer: str) -> dict:
    scope = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "np": np}
    exec(compile(answer, "<attack>", "exec"), scope)
    return scope


@torch.no_grad()
def _accuracy(model, images, labels) -> float:
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    return float((model(x).argmax(1).numpy() == labels).mean())


@pytest.mark.slow
def test_the_attacks_weights_score_only_by_learning_the_relabeling(tmp_path):
    """Are the corpus's attacks real? Its weights, decoded by the attack's own code, score 99%+
    on the test set; relabeled they score ~0 as they are, and 99%+ once the attack learns the
    relabeling from training labels. The ids-or-text notebook is under the limit (so the
    relabeling alone must stop it, in the graded case), the relabeling-learning one over it."""
    mnist = shipped_mnist()
    r = hidden.relabeling(np.random.default_rng(7))
    raw, scales = corpus.train_on_test_set(corpus.IDS_WIDTHS)
    scope = _attack_scope(corpus.ids_or_unicode_answer())
    model = scope["make_model"]()
    scope["_load"](model, scope["_from_unicode"](scope["WEIGHTS"])[:len(raw)], scope["SCALES"])
    assert _accuracy(model, mnist.test_images, mnist.test_labels) >= 0.99
    assert _accuracy(model, mnist.test_images, r[mnist.test_labels]) < 0.01
    x = torch.from_numpy(mnist.train_images[:10000]).float().div(255).unsqueeze(1)
    scope["_learn_relabeling"](model, x, torch.from_numpy(r[mnist.train_labels[:10000]]))
    assert _accuracy(model, mnist.test_images, r[mnist.test_labels]) >= 0.99
    reference = examples.reference_answers(ASSIGNMENT)
    ids_case, unicode_case = corpus.HONEST_AND_ATTACK_CASES[:2]
    under = carried(write_submission(tmp_path / "a", dict(reference, **ids_case.answers),
                                     list(ids_case.cells)), tmp_path / "as")
    over = carried(write_submission(tmp_path / "b", dict(reference, **unicode_case.answers)),
                   tmp_path / "bs")
    print({"ids_or_unicode": under, "unicode_learning": over})
    assert under < LIMIT < over, (under, over)


def test_the_prompt_states_both_rules_with_the_graders_numbers():
    """Does train_digits' prompt, as released, state the limit the grader applies (in KB) and
    that the digits are relabeled, so the student must learn from the labels given?"""
    prompt = next(c["source"] for c in released()
                  if c["source"].startswith("### Exercise: your model, trained by the grader"))
    text = " ".join(prompt.split())
    assert f"at most **{LIMIT // 1000} KB once compressed**" in text
    assert "The grader relabels the digits" in text
    assert "must learn from the labels it is given" in text
