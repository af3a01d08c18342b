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
c.CourseDirectory.course_id = "mnist-basics"
c.CourseDirectory.source_directory = "source"          # default: source
c.CourseDirectory.release_directory = "release"        # default: release
c.CourseDirectory.submitted_directory = "submitted"    # default: submitted
c.CourseDirectory.autograded_directory = "autograded"  # default: autograded (NOT autograder/)
c.CourseDirectory.feedback_directory = "feedback"      # default: feedback
c.CourseDirectory.solution_directory = "solutions"     # default: solution (generated notebooks land in solutions/<assignment>/)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# Importing fastai takes 10-20 s and a training cell a few more; nbgrader's default is 30 s.
c.ExecutePreprocessor.timeout = 180
c.Execute.timeout = 180

# Release: every generated notebook starts with a banner naming its source and how to rebuild it.
from nbgrader import preprocessors as nbp  # noqa: E402

from mnistkit.release_banner import AddReleaseBanner  # noqa: E402

# nbgrader 0.9.6's own list (converters/generate_assignment.py), with the banner first.
c.GenerateAssignment.preprocessors = [
    AddReleaseBanner, nbp.IncludeHeaderFooter, nbp.InstantiateTests, nbp.LockCells,
    nbp.ClearSolutions, nbp.ClearOutput, nbp.CheckCellMetadata, nbp.ComputeChecksums,
    nbp.SaveCells, nbp.ClearHiddenTests, nbp.ClearMarkScheme, nbp.ComputeChecksums,
    nbp.CheckCellMetadata,
]
# Feedback goes to students: strip graders' mark schemes (nbgrader shows them by default).
c.GenerateFeedback.preprocessors = [nbp.GetGrades, nbp.ClearHiddenTests, nbp.ClearMarkScheme,
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]
# Students' HTML never runs in feedback files or in formgrader (an instructor's logged-in
# browser): nbgrader's templates render markdown cells without nbconvert's sanitizer, so the
# markdown filter itself sanitizes (mnistkit/grading/html_safety.py); outputs too.
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"markdown2html": "mnistkit.grading.html_safety.SanitizedMarkdown"}

# Autograde: the hidden autograder (mnistkit.grading, sandboxed) grades each notebook instead of
# nbgrader running it in a Jupyter kernel. nbgrader 0.9.6's own list (converters/autograde.py)
# with Execute replaced; the grade lands in each self-check cell as partial credit.
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402

from mnistkit.grading.nbgrader_autograde import ForgetLostGradeIds, GradeWithHiddenTests  # noqa: E402

# nbgrader 0.9.6's sanitize steps, plus one: a duplicated or renamed graded cell would otherwise
# fail nbgrader's metadata check and leave the student ungraded (see ForgetLostGradeIds).
c.Autograde.sanitize_preprocessors = [
    nbp.ClearOutput, nbp.DeduplicateIds, nbp.OverwriteKernelspec, nbp.OverwriteCells,
    ForgetLostGradeIds, nbp.CheckCellMetadata,
]

c.Autograde.autograde_preprocessors = [
    GradeWithHiddenTests, nbp.IgnorePattern, ClearMetadataPreprocessor, nbp.LimitOutput,
    nbp.SaveAutoGrades, nbp.AssignLatePenalties, nbp.CheckCellMetadata,
]
