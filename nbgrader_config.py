"""nbgrader configuration for the course kit (run nbgrader commands from this folder).

Folder names follow the kit's design; nbgrader's defaults are stated where they differ.
The hidden autograder lives in autograder/ and is never part of a release; nbgrader's own
`autograded/` output folder is a different thing (graded copies of submissions).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so nbgrader finds mnistkit

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# Course id and exchange folder: `mnistkit course init` writes them to .mnistkit/course.json
# (not in git: they are this class's); until then "mnist-basics" and nbgrader's default exchange.
from mnistkit.course import VALIDATE_CELL_SECONDS, read_settings  # noqa: E402

_settings = read_settings(c.CourseDirectory.root)
c.CourseDirectory.course_id = _settings.course_id
c.Exchange.root = _settings.exchange
c.CourseDirectory.source_directory = "source"          # default: source
c.CourseDirectory.release_directory = "release"        # default: release
c.CourseDirectory.submitted_directory = "submitted"    # default: submitted
c.CourseDirectory.autograded_directory = "autograded"  # default: autograded (NOT autograder/)
c.CourseDirectory.feedback_directory = "feedback"      # default: feedback
c.CourseDirectory.solution_directory = "solutions"     # default: solution (generated notebooks land in solutions/<assignment>/)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# Importing fastai takes 10-20 s and a training cell a few more; nbgrader's default is 30 s.
c.ExecutePreprocessor.timeout = VALIDATE_CELL_SECONDS   # the students' Validate has the same
c.Execute.timeout = VALIDATE_CELL_SECONDS

# Release: every student notebook gets a banner in students' words (its source and how to rebuild
# it are in that cell's metadata) and a cell that makes NameErrors say which exercise to finish.
from nbgrader import preprocessors as nbp  # noqa: E402

from mnistkit.release_banner import AddReleaseBanner, FeedbackBanner  # noqa: E402
from mnistkit.selfcheck_hints import AddErrorHints  # noqa: E402
from mnistkit.authoring.mutants import RemoveAuthoringCells  # noqa: E402

# nbgrader 0.9.6's own list (converters/generate_assignment.py), with the banner and the hints
# first (the hints read what answer cells define, so before ClearSolutions). The instructors'
# authoring cells (mutants, the reference prelude) go before anything else reads the notebook.
c.GenerateAssignment.preprocessors = [
    RemoveAuthoringCells, AddReleaseBanner, AddErrorHints, nbp.IncludeHeaderFooter, nbp.InstantiateTests, nbp.LockCells,
    nbp.ClearSolutions, nbp.ClearOutput, nbp.CheckCellMetadata, nbp.ComputeChecksums,
    nbp.SaveCells, nbp.ClearHiddenTests, nbp.ClearMarkScheme, nbp.ComputeChecksums,
    nbp.CheckCellMetadata,
]
# Feedback goes to students: strip graders' mark schemes (nbgrader shows them by default); the
# banner says how to read feedback, and the error-hint cell is left out.
# mnistkit/grading/nbgrader_feedback.py: nbgrader's two clearing steps without their config
# warning, the bare partial-credit numbers under self-check cells left out (the kit's message
# stays; scores come from the gradebook), long lines wrapped.
from mnistkit.grading import nbgrader_feedback as feedback  # noqa: E402

c.GenerateFeedback.preprocessors = [FeedbackBanner, nbp.GetGrades, feedback.ScoresAsGraded,
                                    feedback.ClearHiddenTests,
                                    feedback.ClearMarkScheme, feedback.ShowScoreMessages,
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
                                    feedback.FeedbackStyle]
# The kit's feedback template (hand-graded points pending, not 0; exercises named in the
# contents) is found before nbgrader's own, whichever way feedback is generated.
c.HTMLExporter.extra_template_basedirs = feedback.template_basedirs()
# Students' HTML never runs in feedback files or in formgrader (an instructor's logged-in
# browser): nbgrader's templates render markdown cells without nbconvert's sanitizer, so the
# markdown filter itself sanitizes (mnistkit/grading/html_safety.py); outputs too.
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"markdown2html": "mnistkit.grading.html_safety.SanitizedMarkdown"}

# Autograde: the hidden autograder (mnistkit.grading, sandboxed) grades each notebook instead of
# nbgrader running it in a Jupyter kernel. nbgrader 0.9.6's own list (converters/autograde.py)
# with Execute replaced; the grade lands in each self-check cell as partial credit.
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402

from mnistkit.grading.nbgrader_autograde import (ForgetLostGradeIds, GradeWithHiddenTests,  # noqa: E402
                                                 OverwriteCellsAsReleased,
                                                 quiet_known_nbgrader_warnings)

# nbgrader 0.9.6's sanitize steps, plus one: a duplicated or renamed graded cell would otherwise
# fail nbgrader's metadata check and leave the student ungraded (see ForgetLostGradeIds).
# OverwriteCells is nbgrader's, without its false "checksum has changed" warning for every
# untouched task cell with a mark scheme (upstream nbgrader#1961; see OverwriteCellsAsReleased).
# The student's own cells keep the outputs they handed in, plain and bounded (KeepOwnOutputs
# in place of ClearOutput: mnistkit/grading/submitted_outputs.py); the kit's cells are cleared.
from mnistkit.grading.submitted_outputs import KeepOwnOutputs  # noqa: E402

c.Autograde.sanitize_preprocessors = [
    KeepOwnOutputs, nbp.DeduplicateIds, nbp.OverwriteKernelspec, OverwriteCellsAsReleased,
    ForgetLostGradeIds, nbp.CheckCellMetadata,
]
# nbgrader's gradebook, run under SQLAlchemy 2, warns three times per submission that objects
# "not in session" will not be added (they are, a line later): harmless, silenced by message.
quiet_known_nbgrader_warnings()

# Submissions are files, never links (mnistkit/grading/nbgrader_submitted.py): autograde reads a
# notebook only when it is a file of the submission (a link to source/ is graded as missing, and
# never reaches autograded/ or feedback), and collect copies a link in the exchange as a link
# rather than the file it points to.
c.Autograde.exporter_class = "mnistkit.grading.nbgrader_submitted.SubmittedFilesOnly"
c.ExchangeFactory.collect = "mnistkit.grading.nbgrader_submitted.CollectKeepingLinks"

c.Autograde.autograde_preprocessors = [
    GradeWithHiddenTests, nbp.IgnorePattern, ClearMetadataPreprocessor, nbp.LimitOutput,
    nbp.SaveAutoGrades, nbp.AssignLatePenalties, nbp.CheckCellMetadata,
]

# Formgrader's Manage Assignments page shows this configuration as JSON (FormgradeExtension.debug,
# on by default); a class is not JSON,
# so every preprocessor in the lists above is named by its import path, which nbgrader and
# nbconvert import the same way. (Classes: "Formgrader config is not serializable" and the
# lists shown as [, , , ...].)
for _section in list(c.values()):
    for _key, _value in list(_section.items()):
        if isinstance(_value, list):
            _section[_key] = [f"{v.__module__}.{v.__qualname__}" if isinstance(v, type) else v
                              for v in _value]
