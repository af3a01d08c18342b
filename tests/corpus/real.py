"""Attacks on the real assignments (issue 10), graded in `make test` by
tests/test_grade_corpus_real.py against the score each deserves.

Cases live in ``tests/corpus/real_<topic>.py`` modules (one per assignment, plus modules for
attacks on the grader itself) as ``CASES``, a list of ``Case``. A case is one submission: the reference answers with some answer cells replaced
(``answers``: exercise id -> cell source), so that one grading carries several attacks on
different exercises. ``deserves`` gives, per attacked exercise, the most it may score (0 for a
cheat that computes nothing); every other auto-graded exercise must keep full marks -- a forged
answer never costs another exercise anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Case:
    assignment: str               # e.g. "a1_pixel_similarity"
    name: str                     # the submission's folder name, e.g. "bools_for_numbers"
    attack: str                   # which class of issue 10 it tries (for the report)
    answers: dict[str, str]       # exercise id -> answer cell source
    deserves: dict[str, float]    # exercise id -> the most it may score
    # exercises that may lose points through the attack's side effects (rare; say why)
    may_also_lose: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)   # extra MNISTKIT_LIMIT_* etc.
