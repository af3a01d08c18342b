"""The exercise, declared once: the source notebook is the one place an exercise is written.

An auto-graded exercise ``X`` of ``source/<assignment>/<notebook>.ipynb`` is, in order:
- its prompt (markdown);
- the answer cell ``X-answer``: the student's skeleton around ``### BEGIN SOLUTION`` /
  ``### END SOLUTION``, and between the markers the reference solution;
- the graded cell ``X``: the self-check students run, the points, the questionnaire items
  (``metadata.mnistkit.questionnaire``) and, where the grader reads the code,
  ``metadata.mnistkit.reads_code``;
- raw cells ``# mutant of X: <what is wrong>``: plausible wrong answers, each a whole
  replacement of the answer cell.
The hidden checks live in ``autograder/test_<assignment>.py`` under ``@pytest.mark.exercise("X")``.

Everything else is made from that: ``mnistkit build`` writes the release notebook and
``solutions/<assignment>.py`` (``references``); the mutant list (``mutants``) and the
registration of code-reading exercises (``catalog``) are read from the notebook when needed;
``mnistkit check`` (``gaps``) names any part that is missing or out of place.
"""
