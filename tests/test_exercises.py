"""The coursework in exercises/: one nbgrader assignment per chapter, proved with nbgrader itself.

`exercises/source/<assignment>/<assignment>.ipynb` is the instructor's notebook of a chapter:
reference solutions between `### BEGIN SOLUTION` and `### END SOLUTION`, locked check cells
with points whose `### BEGIN HIDDEN TESTS` part the students never see, and model answers in
the manually graded cells. On copies of the course directory in a temporary folder (the
repository stays clean), the tests run nbgrader as an instructor would:

1. `nbgrader generate_assignment` makes every student version. The reference solutions,
   typed into the student version as a student would and autograded with
   `nbgrader autograde`, get full marks on every autograded cell; the written answers wait
   for a person.
2. Every student version, autograded as released, scores 0 on every check (so every check
   can fail), and the released file holds no solution marker and no line of a reference
   solution, a hidden test or a model answer.
3. A round trip on chapter 4: a submission with three deliberate mistakes gets exactly the
   expected partial score, and the feedback file names the mistakes.

Quick checks without nbgrader come first: every chapter has its assignment and points at
it, every notebook follows the format, and the points agree with the task tables and the
instructor's guide (book/instructors.md).

The nbgrader part executes every notebook twice (about 2 minutes on 2 cores): the
assignments are split over two course copies graded side by side.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "exercises"
GUIDE = ROOT / "book" / "instructors.md"
ASSIGNMENTS = sorted(p.name for p in (COURSE / "source").iterdir() if p.is_dir())
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WORKERS = 2  # course copies graded side by side
STUBS = ("raise NotImplementedError()", "YOUR ANSWER HERE")
SECRET_REGIONS = (("BEGIN SOLUTION", "END SOLUTION"), ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "Model answer", "Marking:")

# The round trip: chapter 4 submitted with three mistakes. Each entry: the solution cell,
# the wrong code, the check cell that must lose all its points, and what its feedback says.
ROUND_TRIP = "04_encoder"
MISTAKES = {
    # -inf instead of finfo.min: the visible checks pass, a hidden test (a row of padding only) fails
    "t1_attention": ("""
        def attention(q, k, v, attention_mask=None):
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
            if attention_mask is not None:
                scores = scores.masked_fill(attention_mask[:, None, None, :] == 0, float("-inf"))
            weights = scores.softmax(dim=-1)
            return weights @ v, weights
        """, "t1_attention_check", "use finfo(dtype).min, not -inf"),
    # the pooler forgotten: a visible check names it
    "t3_count": ("""
        def count_parameters(c):
            V, P, S = c.vocab_size, c.max_position_embeddings, c.type_vocab_size
            H, I, L = c.hidden_size, c.intermediate_size, c.num_hidden_layers
            return (V + P + S + 2) * H + L * (4 * H * H + 2 * H * I + 9 * H + I)
        """, "t3_count_check", "exactly the size of the pooler"),
    # the wrong letter
    "t5_answer": ('answer_5 = "A"', "t5_answer_check", "is not the right statement"),
}
EXPECTED_WRONG_SCORE = 6  # of 13 autograded points: 13 - 3 (task 1) - 2 (task 3) - 2 (task 5)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def read_notebook(path: Path):
    return nbformat.read(path, as_version=4)


def source_notebook(assignment: str):
    return read_notebook(COURSE / "source" / assignment / f"{assignment}.ipynb")


def check_cells(notebook) -> dict[str, float]:
    """grade_id -> points of the autograded check cells."""
    return {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"] for c in notebook.cells
            if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}


def task_table(notebook) -> list[tuple[int, str, str, int, int]]:
    """(number, title, kind, points, minutes) of each row of the intro's task table."""
    rows = re.findall(r"^\| (\d+) \| (.+?) \| (.+?) \| (\d+) \| (\d+) \|$", notebook.cells[0].source, re.MULTILINE)
    return [(int(n), title, kind, int(points), int(minutes)) for n, title, kind, points, minutes in rows]


def secret_lines(notebook) -> set[str]:
    """Lines that only the instructor may see: reference solutions, hidden tests and model
    answers, minus any line that also appears in the parts the students get."""
    secret, public = set(), set()
    for cell in notebook.cells:
        lines = [line.strip() for line in cell.source.splitlines()]
        if cell.cell_type == "markdown" and nbgrader_meta(cell).get("solution"):
            secret.update(lines)  # a model answer, cleared as a whole
            continue
        inside = False
        for line in lines:
            if any(begin in line for begin, _ in SECRET_REGIONS):
                inside = True
            elif any(end in line for _, end in SECRET_REGIONS):
                inside = False
            else:
                (secret if inside else public).add(line)
    return {line for line in secret if len(line) >= 8} - public


# ---------------------------------------------------------------------------------------
# Quick checks of the files themselves


def test_every_chapter_has_its_assignment():
    assert ASSIGNMENTS == CHAPTERS, (
        f"exercises/source/ should hold one assignment per chapter of notebooks/: missing "
        f"{sorted(set(CHAPTERS) - set(ASSIGNMENTS))}, extra {sorted(set(ASSIGNMENTS) - set(CHAPTERS))}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_points_at_its_exercises(chapter):
    notebook = read_notebook(ROOT / "notebooks" / f"{chapter}.ipynb")
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    path = f"exercises/source/{chapter}/{chapter}.ipynb"
    assert path in text, f"the Exercises section of notebooks/{chapter}.ipynb should name {path}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_follows_the_format(assignment):
    notebook = source_notebook(assignment)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert notebook.cells[0].source.startswith("# Exercises for Chapter "), notebook.cells[0].source[:60]
    ids = [nbgrader_meta(c).get("grade_id") for c in notebook.cells]
    assert None not in ids, "every cell needs nbgrader metadata (read-only, answer or check)"
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in notebook.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):  # a check cell: locked, with hidden tests
            assert meta["locked"] and meta["points"] > 0, meta
            assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source, meta["grade_id"]
        elif meta.get("solution") and cell.cell_type == "code":  # an answer: a solution region
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta["grade_id"]
        elif meta.get("solution"):  # a written answer: points, a model answer, a marking guide
            assert meta["grade"] and meta["points"] > 0 and "Marking:" in cell.source, meta["grade_id"]

    rows = task_table(notebook)
    assert 3 <= len(rows) <= 6, f"{len(rows)} tasks; the course asks for 3 to 6"
    kinds = {kind for _, _, kind, _, _ in rows}
    assert "implementation" in kinds and "experiment" in kinds, kinds
    assert kinds & {"multiple choice", "written answer"}, kinds
    for number, title, _, points, _ in rows:
        cell_points = sum(nbgrader_meta(c).get("points", 0) for c in notebook.cells
                          if nbgrader_meta(c)["grade_id"].startswith(f"t{number}_"))
        assert cell_points == points, f"task {number} ({title}): the table says {points} points, the cells give {cell_points}"
        heading = f"## Task {number}. "
        assert any(c.source.startswith(heading) and f"({points} point" in c.source.splitlines()[0]
                   for c in notebook.cells), f"no heading '{heading}... ({points} points)'"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_leak_check_would_catch_the_source_itself(assignment):
    # the check on the student versions below must be able to fail: the instructor's notebook,
    # released by mistake, has solution lines of every task that has a solution
    notebook = source_notebook(assignment)
    lines = {line.strip() for cell in notebook.cells for line in cell.source.splitlines()}
    leaked = secret_lines(notebook) & lines
    tasks = {nbgrader_meta(c)["grade_id"].split("_")[0] for c in notebook.cells if nbgrader_meta(c).get("solution")}
    for task in tasks:
        task_lines = {line.strip() for c in notebook.cells if nbgrader_meta(c)["grade_id"].startswith(task + "_")
                      for line in c.source.splitlines()}
        assert leaked & task_lines, f"{assignment}, {task}: no line of its solution would be recognised"


def test_guide_lists_every_assignment_with_its_tasks_points_and_minutes():
    guide = GUIDE.read_text()
    for assignment in ASSIGNMENTS:
        notebook = source_notebook(assignment)
        rows = task_table(notebook)
        points, minutes = sum(r[3] for r in rows), sum(r[4] for r in rows)
        match = re.search(rf"^\| `{assignment}` \| (\d+) \| (\d+) \| (\d+) \|", guide, re.MULTILINE)
        assert match, f"book/instructors.md should have a table row | `{assignment}` | tasks | points | minutes |"
        assert [int(g) for g in match.groups()] == [len(rows), points, minutes], (
            f"{assignment}: the guide says {match.groups()}, the notebook has {len(rows)} tasks, "
            f"{points} points, {minutes} minutes")
        table = "\n".join(line for line in notebook.cells[0].source.splitlines() if line.startswith("|"))
        assert table in guide, f"book/instructors.md should show the task table of {assignment} as the notebook does"


# ---------------------------------------------------------------------------------------
# nbgrader, as an instructor runs it


def nbgrader_env() -> dict:
    """nbgrader runs `alembic` and the kernel by name: put this Python's bin/ first on PATH."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def run_nbgrader(course: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=course,
                            env=nbgrader_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stderr[-3000:]}"


def submit(course: Path, student: str, assignment: str, answers: dict[str, str]) -> None:
    """Hand in the released notebook with the given answer cells filled in (grade_id -> source)."""
    released = read_notebook(course / "release" / assignment / f"{assignment}.ipynb")
    submission = copy.deepcopy(released)
    for cell in submission.cells:
        if nbgrader_meta(cell).get("grade_id") in answers:
            cell.source = answers[nbgrader_meta(cell)["grade_id"]]
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(submission, folder / f"{assignment}.ipynb")


def reference_answers(assignment: str) -> dict[str, str]:
    return {nbgrader_meta(c)["grade_id"]: c.source for c in source_notebook(assignment).cells
            if nbgrader_meta(c).get("solution")}


def submit_all(course: Path, assignment: str) -> None:
    """The student version as released, the reference solutions and (chapter 4) the mistakes."""
    submit(course, "blank", assignment, {})
    submit(course, "reference", assignment, reference_answers(assignment))
    if assignment == ROUND_TRIP:
        wrong = reference_answers(assignment)
        wrong.update({grade_id: textwrap.dedent(code).strip() for grade_id, (code, _, _) in MISTAKES.items()})
        submit(course, "wrong", assignment, wrong)


def work(course: Path, share: list[str]) -> None:
    """One worker: a copy of the course with the assignments of `share`, released, submitted
    and autograded (two nbgrader calls: each call costs seconds of start-up)."""
    for assignment in share:
        shutil.copytree(COURSE / "source" / assignment, course / "source" / assignment)
    shutil.copy(COURSE / "nbgrader_config.py", course)
    run_nbgrader(course, "generate_assignment", "*")
    for assignment in share:
        submit_all(course, assignment)
    run_nbgrader(course, "autograde", "*", "--create")


def snake_shares(items: list, n: int) -> list[list]:
    """Deal items out to n workers in snake order (0 1 1 0 0 1 ...), so that the shares cost about
    the same when the cost of an item is unknown."""
    shares = [[] for _ in range(n)]
    for i, item in enumerate(items):
        turn, k = divmod(i, n)
        shares[k if turn % 2 == 0 else n - 1 - k].append(item)
    return shares


def grades(course: Path) -> dict:
    """(assignment, student) -> {grade_id: (score, max_score, needs_manual_grade)}."""
    result = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    result[assignment.name, submission.student.id] = {
                        g.name: (g.score, g.max_score, g.needs_manual_grade) for g in notebook.grades}
    return result


@pytest.fixture(scope="module")
def graded(tmp_path_factory, data_dir):
    """Every assignment released, then autograded as reference, blank and (chapter 4) wrong."""
    base = tmp_path_factory.mktemp("course")
    shares = [share for share in snake_shares(ASSIGNMENTS, WORKERS) if share]
    courses = [base / f"copy{k}" for k in range(len(shares))]
    with ThreadPoolExecutor(len(shares)) as pool:  # the threads only wait on nbgrader processes
        list(pool.map(work, courses, shares))
    results, where = {}, {}
    for course, share in zip(courses, shares):
        results.update({key: value for key, value in grades(course).items() if key[0] in share})
        where.update({assignment: course for assignment in share})
    return {"grades": results, "course": where}


def cell_feedback(course: Path, student: str, assignment: str, grade_id: str) -> str:
    """The error text that a check cell printed in the autograded notebook."""
    notebook = read_notebook(course / "autograded" / student / assignment / f"{assignment}.ipynb")
    cell = next(c for c in notebook.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    return "\n".join(f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", []) if o.output_type == "error")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_solutions_get_full_marks(graded, assignment):
    scores = graded["grades"][assignment, "reference"]
    checks = check_cells(source_notebook(assignment))
    failed = {g: cell_feedback(graded["course"][assignment], "reference", assignment, g)
              for g in checks if scores[g][0] != scores[g][1]}
    assert not failed, f"the reference solutions lose points in {assignment}: {failed}"
    assert {g: scores[g][1] for g in checks} == checks  # nbgrader graded every check with its points
    written = {g for g, (_, _, manual) in scores.items() if manual}
    assert written == set(scores) - set(checks), f"only the written answers should wait for a person: {written}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_version_fails_every_check(graded, assignment):
    scores = graded["grades"][assignment, "blank"]
    passed = {g: scores[g][0] for g in check_cells(source_notebook(assignment)) if scores[g][0] != 0}
    assert not passed, f"these checks give points to the untouched student version of {assignment}: {passed}"
    assert all(score == 0 for score, _, _ in scores.values()), scores  # blank written answers too


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_version_holds_no_solution(graded, assignment):
    released = read_notebook(graded["course"][assignment] / "release" / assignment / f"{assignment}.ipynb")
    text = nbformat.writes(released)
    for marker in MARKERS:
        assert marker not in text, f"the student version of {assignment} contains {marker!r}"
    released_lines = {line.strip() for cell in released.cells for line in cell.source.splitlines()}
    leaked = secret_lines(source_notebook(assignment)) & released_lines
    assert not leaked, f"the student version of {assignment} contains solution lines: {sorted(leaked)}"
    answers = [c for c in released.cells if nbgrader_meta(c).get("solution")]
    assert answers and all(any(stub in c.source for stub in STUBS) for c in answers), (
        "every answer cell of the student version should hold nbgrader's stub")


def test_round_trip_reference_full_marks_and_wrong_partial_with_feedback(graded):
    reference = graded["grades"][ROUND_TRIP, "reference"]
    wrong = graded["grades"][ROUND_TRIP, "wrong"]
    checks = check_cells(source_notebook(ROUND_TRIP))
    full = sum(checks.values())
    lost = {check for _, check, _ in MISTAKES.values()}
    assert sum(reference[g][0] for g in checks) == full
    assert {g: wrong[g][0] for g in checks} == {g: 0 if g in lost else points for g, points in checks.items()}
    assert sum(wrong[g][0] for g in checks) == full - sum(checks[g] for g in lost) == EXPECTED_WRONG_SCORE

    course = graded["course"][ROUND_TRIP]
    for _, check, message in MISTAKES.values():
        assert message in cell_feedback(course, "wrong", ROUND_TRIP, check), (check, message)
    run_nbgrader(course, "generate_feedback", ROUND_TRIP, "--student", "wrong")
    feedback = (course / "feedback" / "wrong" / ROUND_TRIP / f"{ROUND_TRIP}.html").read_text()
    for _, _, message in MISTAKES.values():
        assert message in feedback, f"the student's feedback file should say {message!r}"
