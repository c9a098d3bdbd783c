"""nbgrader settings of the bertedu coursework. Run every nbgrader command from exercises/.

Layout (nbgrader's course directory): source/<assignment>/<assignment>.ipynb holds the
instructor's notebooks with reference solutions and hidden tests; `nbgrader
generate_assignment <assignment>` writes the student version to release/. Submissions go to
submitted/<student>/<assignment>/, `nbgrader autograde` writes autograded/ and gradebook.db.
Only source/ is kept in git. See book/instructors.md.
"""
from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "bertedu"
c.CourseDirectory.root = str(Path(__file__).resolve().parent)

# The model is loaded in the setup cell; no single cell should take long on a CPU, but a
# loaded shared machine can be slow, so allow each cell five minutes before it is stopped.
c.Execute.timeout = 300

# The stub a student sees in place of the reference solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
