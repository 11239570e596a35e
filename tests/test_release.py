import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from vgcourse.tools.cli import main
from vgcourse.tools.exercise import ReleaseError, make_exercise, question_cells, strip_solutions, strip_written_answers
from vgcourse.tools.notebook_format import fingerprint
from vgcourse.tools.release import release

REPO = Path(__file__).resolve().parents[1]

ANSWER = """import torch

def sigmoid_derivative(x):
    \"\"\"sigma'(x).\"\"\"
    ### BEGIN SOLUTION
    s = torch.sigmoid(x)
    return s * (1 - s)
    ### END SOLUTION

def tanh_derivative(x):
    if x is None:
        ### BEGIN SOLUTION
        raise ValueError
        ### END SOLUTION
    ### BEGIN SOLUTION
    return 1 - torch.tanh(x) ** 2
    ### END SOLUTION
"""

KERNEL = {"name": "python3", "display_name": "Python 3"}
STUB = 'raise NotImplementedError("ex01.derivs: replace this line with your answer")'


def solution(assignment="01", answer="def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n",
             question="ex01.f", points=2, extra=()):
    """A small solution notebook: prose, a graded answer cell with an output, a written answer."""
    answer_cell = new_code_cell(answer, metadata={"vgcourse": {"question": question, "points": points}})
    answer_cell.outputs = [new_output("stream", text="done\n")]
    answer_cell.execution_count = 7
    cells = [
        new_markdown_cell("# Exercise\nWrite `f`."),
        answer_cell,
        new_code_cell("check('ex01.f', f)", metadata={"tags": ["check"]}),
        new_markdown_cell("Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->\nThe end."),
        *extra,
    ]
    return new_notebook(cells=cells, metadata={"vgcourse": {"assignment": assignment}, "kernelspec": KERNEL})


def write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path, version=4)
    return path


def tree(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


# ---- stripping ----------------------------------------------------------------------------------


def test_strip_solutions_keeps_indentation_and_replaces_every_block():
    got = strip_solutions(ANSWER, "ex01.derivs")
    assert got == f"""import torch

def sigmoid_derivative(x):
    \"\"\"sigma'(x).\"\"\"
    # YOUR CODE HERE
    {STUB}

def tanh_derivative(x):
    if x is None:
        # YOUR CODE HERE
        {STUB}
    # YOUR CODE HERE
    {STUB}
"""


def test_strip_solutions_at_top_level_and_without_trailing_newline():
    assert strip_solutions("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "ex02.x") == (
        '# YOUR CODE HERE\nraise NotImplementedError("ex02.x: replace this line with your answer")'
    )


def test_strip_written_answers():
    text = "Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n\nReally.\n<!-- END SOLUTION -->\nThe end."
    assert strip_written_answers(text) == "Why?\n*Your answer here.*\nThe end."


def test_strip_solutions_checks_its_arguments():
    with pytest.raises(ValueError, match="'Ex1.f' must look like 'ex01.snake_name'"):
        strip_solutions("x", "Ex1.f")
    with pytest.raises(TypeError, match="source must be a str"):
        strip_solutions(["x"], "ex01.f")


@pytest.mark.parametrize(
    "source, message",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "line 1: the block opened here is never closed; add '### END SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "line 2: '### BEGIN SOLUTION' inside the block opened on line 1"),
        ("x = 1\n### END SOLUTION\n", "line 2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "line 1: '# BEGIN SOLUTION' looks like a solution marker"),
    ],
)
def test_strip_solutions_rejects_broken_markers(source, message):
    with pytest.raises(ReleaseError) as error:
        strip_solutions(source, "ex01.f")
    assert message in str(error.value)


# ---- the exercise notebook ----------------------------------------------------------------------


def test_make_exercise_strips_answers_clears_outputs_and_keeps_the_rest():
    sol = solution()
    before = nbformat.writes(sol)
    ex = make_exercise(sol, "01_derivatives.ipynb")
    assert nbformat.writes(sol) == before  # the solution is not modified
    assert [c.cell_type for c in ex.cells] == [c.cell_type for c in sol.cells]
    assert ex.cells[0] == sol.cells[0] and ex.cells[2].source == sol.cells[2].source
    assert ex.cells[1].source == ('def f(x):\n    # YOUR CODE HERE\n'
                                  '    raise NotImplementedError("ex01.f: replace this line with your answer")\n')
    assert ex.cells[1].outputs == [] and ex.cells[1].execution_count is None
    assert ex.cells[1].metadata == {"vgcourse": {"question": "ex01.f", "points": 2}}
    assert ex.cells[2].metadata == {"tags": ["check"]}
    assert ex.cells[3].source == "Why?\n*Your answer here.*\nThe end."
    assert ex.metadata.kernelspec == KERNEL and ex.metadata.vgcourse.assignment == "01"
    assert ex.metadata.vgcourse.release == {"fingerprint": fingerprint(ex)}
    assert "BEGIN SOLUTION" not in nbformat.writes(ex) and "2 * x" not in nbformat.writes(ex)
    nbformat.validate(ex)


def test_fingerprint_ignores_outputs_but_not_sources_or_points():
    nb = solution()
    ran = solution()
    ran.cells[1].outputs, ran.cells[1].execution_count = [], None
    ran.metadata["language_info"] = {"name": "python"}
    assert fingerprint(ran) == fingerprint(nb)
    assert fingerprint(solution(answer=nb.cells[1].source + "# mine\n")) != fingerprint(nb)
    assert fingerprint(solution(points=3)) != fingerprint(nb)
    with pytest.raises(TypeError, match="expected a notebook"):
        fingerprint("01_x.ipynb")


def test_question_cells_reads_the_metadata():
    nb = solution(extra=[new_code_cell("### BEGIN SOLUTION\n### END SOLUTION", metadata={"vgcourse": {"question": "ex01.g", "points": 5}})])
    assert question_cells(nb) == [(1, "ex01.f", 2), (4, "ex01.g", 5)]
    assert question_cells(new_notebook(cells=[new_code_cell("1")])) == []


def with_cell(cell):
    return solution(extra=[cell])


@pytest.mark.parametrize(
    "nb, name, message",
    [
        (solution(), "derivatives.ipynb", "'derivatives.ipynb': solution notebook names must start with two digits and '_'"),
        (solution(), "1_derivatives.ipynb", "must start with two digits and '_', like '03_detection.ipynb'"),
        (solution(assignment="02"), "01_d.ipynb", 'must contain {"vgcourse": {"assignment": "01"}}, found assignment \'02\''),
        (new_notebook(cells=[]), "01_d.ipynb", "found assignment None"),
        (solution(answer="### BEGIN SOLUTION\nx = 1\n"), "01_d.ipynb", "01_d.ipynb, cell 2: line 1: the block opened here is never closed"),
        (solution(answer="### BEGIN SOLUTION\n  ### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION"), "01_d.ipynb",
         "01_d.ipynb, cell 2: line 2: '### BEGIN SOLUTION' inside the block opened on line 1; blocks cannot nest"),
        (solution(answer="x = 1\n### END SOLUTION"), "01_d.ipynb", "01_d.ipynb, cell 2: line 2: '### END SOLUTION' without"),
        (with_cell(new_code_cell("### BEGIN SOLUTION\nx\n### END SOLUTION")), "01_d.ipynb",
         "01_d.ipynb, cell 5: solution markers in a cell without question metadata; add"),
        (with_cell(new_markdown_cell("<!-- BEGIN SOLUTION -->\nx")), "01_d.ipynb", "01_d.ipynb, cell 5: line 1: the block opened here is never closed"),
        (solution(question="ex01.Sigmoid"), "01_d.ipynb", "01_d.ipynb, cell 2: question id 'ex01.Sigmoid' must look like 'ex01.snake_name'"),
        (solution(question=None), "01_d.ipynb", "cell 2: question id None must look like"),
        (solution(question="ex02.f"), "01_d.ipynb", "01_d.ipynb, cell 2: question id 'ex02.f' must start with 'ex01.' in assignment 01"),
        (solution(points=0), "01_d.ipynb", "01_d.ipynb, cell 2: points of ex01.f must be a positive integer, got 0"),
        (solution(points="2"), "01_d.ipynb", "points of ex01.f must be a positive integer, got '2'"),
        (solution(points=True), "01_d.ipynb", "points of ex01.f must be a positive integer, got True"),
        (solution(points=1.5), "01_d.ipynb", "got 1.5"),
        (with_cell(new_code_cell("### BEGIN SOLUTION\n### END SOLUTION", metadata={"vgcourse": {"question": "ex01.f", "points": 1}})),
         "01_d.ipynb", "01_d.ipynb, cell 5: question id 'ex01.f' is already used by cell 2"),
        (with_cell(new_markdown_cell("text", metadata={"vgcourse": {"question": "ex01.g", "points": 1}})),
         "01_d.ipynb", "01_d.ipynb, cell 5: question metadata is only allowed on code cells, this is a markdown cell"),
        (solution(answer="def f(x):\n    return 2 * x\n"), "01_d.ipynb",
         "01_d.ipynb, cell 2: question ex01.f has no '### BEGIN SOLUTION' block, so the exercise would publish the answer"),
    ],
)
def test_make_exercise_rejects_broken_solutions_with_where_and_what(nb, name, message):
    with pytest.raises(ReleaseError) as error:
        make_exercise(nb, name)
    assert message in str(error.value)


# ---- release: missing / up to date / updated / skipped / forced / check -------------------------


@pytest.fixture
def course(tmp_path):
    """A solutions/ directory with two notebooks; returns (solutions, exercises)."""
    write(solution(), tmp_path / "solutions" / "01_derivatives.ipynb")
    write(solution("02", question="ex02.f"), tmp_path / "solutions" / "02_depth.ipynb")
    return tmp_path / "solutions", tmp_path / "exercises"


def change_solution(solutions):
    write(solution(extra=[new_markdown_cell("A new hint.")]), solutions / "01_derivatives.ipynb")


def learner_edits(path):
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "def f(x):\n    return x + x\n"
    write(nb, path)
    return path.read_bytes()


def test_release_writes_missing_exercises_then_leaves_them_alone(course):
    solutions, exercises = course
    report = release(solutions, exercises)
    assert report.written == [exercises / "01_derivatives.ipynb", exercises / "02_depth.ipynb"]
    assert report.updated == report.up_to_date == report.skipped == [] and report.out_of_date == []
    ex = nbformat.read(exercises / "01_derivatives.ipynb", as_version=4)
    sol = nbformat.read(solutions / "01_derivatives.ipynb", as_version=4)
    assert nbformat.writes(ex) == nbformat.writes(make_exercise(sol, "01_derivatives.ipynb"))
    before = tree(exercises)
    again = release(solutions, exercises)
    assert again.up_to_date == report.written and again.written == again.updated == []
    assert tree(exercises) == before


def test_release_updates_an_exercise_the_learner_did_not_edit_even_after_running_it(course):
    solutions, exercises = course
    release(solutions, exercises)
    path = exercises / "01_derivatives.ipynb"
    ran = nbformat.read(path, as_version=4)
    ran.cells[1].outputs = [new_output("error", ename="NotImplementedError", evalue="", traceback=[])]
    ran.cells[1].execution_count = 1
    write(ran, path)
    change_solution(solutions)
    report = release(solutions, exercises)
    assert report.updated == [path] and report.up_to_date == [exercises / "02_depth.ipynb"] and not report.backups
    assert nbformat.read(path, as_version=4).cells[-1].source == "A new hint."


@pytest.mark.parametrize("edit", ["source", "no fingerprint", "unreadable"])
def test_release_skips_a_learners_work_and_keeps_it_byte_for_byte(course, edit):
    solutions, exercises = course
    release(solutions, exercises)
    path = exercises / "01_derivatives.ipynb"
    if edit == "source":
        learner_edits(path)
    elif edit == "no fingerprint":
        nb = nbformat.read(path, as_version=4)
        del nb.metadata["vgcourse"]["release"]
        write(nb, path)
    else:
        path.write_text("{ half a notebook")
    mine = path.read_bytes()
    change_solution(solutions)
    report = release(solutions, exercises)
    assert report.skipped == [path] and report.out_of_date == [path] and report.updated == []
    assert path.read_bytes() == mine
    assert not (exercises / "01_derivatives.ipynb.bak").exists()


def test_release_force_overwrites_after_a_backup_of_the_learners_file(course):
    solutions, exercises = course
    release(solutions, exercises)
    path = exercises / "01_derivatives.ipynb"
    mine = learner_edits(path)
    (exercises / "01_derivatives.ipynb.bak").write_text("an older backup")
    change_solution(solutions)
    report = release(solutions, exercises, force=True)
    backup = exercises / "01_derivatives.ipynb.bak2"
    assert report.updated == [path] and report.backups == {path: backup} and report.skipped == []
    assert backup.read_bytes() == mine
    assert (exercises / "01_derivatives.ipynb.bak").read_text() == "an older backup"
    assert nbformat.read(path, as_version=4).cells[-1].source == "A new hint."
    assert release(solutions, exercises).up_to_date == [path, exercises / "02_depth.ipynb"]


def test_release_check_writes_nothing_and_lists_what_is_out_of_date(course):
    solutions, exercises = course
    report = release(solutions, exercises, check=True)
    assert not exercises.exists()
    assert report.out_of_date == [exercises / "01_derivatives.ipynb", exercises / "02_depth.ipynb"]
    release(solutions, exercises)
    assert release(solutions, exercises, check=True).out_of_date == []
    learner_edits(exercises / "02_depth.ipynb")
    assert release(solutions, exercises, check=True).out_of_date == []  # edits of the current release
    change_solution(solutions)
    write(solution("02", question="ex02.f", extra=[new_markdown_cell("A new hint.")]), solutions / "02_depth.ipynb")
    before = tree(exercises)
    report = release(solutions, exercises, check=True)
    assert report.updated == [exercises / "01_derivatives.ipynb"] and report.skipped == [exercises / "02_depth.ipynb"]
    assert report.out_of_date == report.updated + report.skipped
    assert tree(exercises) == before
    with pytest.raises(ValueError, match="force and check cannot be combined"):
        release(solutions, exercises, force=True, check=True)


def test_release_writes_nothing_when_any_solution_is_broken(course):
    solutions, exercises = course
    write(solution("03", question="ex03.f", points=0), solutions / "03_detection.ipynb")
    with pytest.raises(ReleaseError, match="03_detection.ipynb, cell 2: points of ex03.f"):
        release(solutions, exercises)
    assert not exercises.exists()
    (solutions / "03_detection.ipynb").write_text("not json")
    with pytest.raises(ReleaseError, match="03_detection.ipynb: not a valid notebook"):
        release(solutions, exercises)


def test_release_refuses_a_missing_or_identical_directory(tmp_path):
    with pytest.raises(ReleaseError, match="solutions directory .* does not exist"):
        release(tmp_path / "nope", tmp_path / "exercises")
    with pytest.raises(ReleaseError, match="same directory"):
        release(tmp_path, tmp_path)


def test_release_leaves_exercises_without_a_solution_but_check_reports_them(course):
    solutions, exercises = course
    release(solutions, exercises)
    orphan = write(solution("09"), exercises / "09_renamed.ipynb")
    write(solution(), exercises / "notes.ipynb")  # not a course exercise name: ignored
    report = release(solutions, exercises)
    assert report.orphans == [orphan] and orphan.exists()
    assert release(solutions, exercises, check=True).orphans == [orphan]


# ---- the command line ---------------------------------------------------------------------------


def test_cli_release_summary_and_exit_codes(course, capsys):
    solutions, exercises = course
    args = ["release", "--solutions", str(solutions), "--exercises", str(exercises)]
    assert main(args + ["--check"]) == 1
    out = capsys.readouterr().out
    assert f"missing: {exercises / '01_derivatives.ipynb'}" in out and "2 exercises: 2 not matching solutions/" in out
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 exercises: 2 written, 0 updated, 0 up to date, 0 skipped"
    assert main(args + ["--check"]) == 0
    assert capsys.readouterr().out.strip() == "2 exercises: all up to date"
    learner_edits(exercises / "01_derivatives.ipynb")
    change_solution(solutions)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"skipped {exercises / '01_derivatives.ipynb'}: it has your changes" in out
    assert out.splitlines()[-1] == ("2 exercises: 0 written, 0 updated, 1 up to date, 1 skipped "
                                    "(your changes kept; use --force)")
    assert main(args + ["--check"]) == 1
    assert "out of date, edited by hand (release would skip it)" in capsys.readouterr().out
    assert main(args + ["--force"]) == 0
    out = capsys.readouterr().out
    assert f"your version is kept in {exercises / '01_derivatives.ipynb.bak'}" in out
    assert out.splitlines()[-1] == "2 exercises: 0 written, 1 updated, 1 up to date, 0 skipped"


def test_cli_release_defaults_to_the_current_directory_and_reports_errors(course, monkeypatch, capsys):
    solutions, exercises = course
    monkeypatch.chdir(solutions.parent)
    assert main(["release"]) == 0
    assert (exercises / "02_depth.ipynb").exists()
    write(solution(points=-1), solutions / "01_derivatives.ipynb")
    assert main(["release"]) == 2
    err = capsys.readouterr().err
    assert "vgcourse release: error: solutions/01_derivatives.ipynb, cell 2: points of ex01.f" in err
    with pytest.raises(SystemExit):
        main(["release", "--force", "--check"])


# ---- drift: exercises/ must be generated from the current solutions/ ---------------------------


def assert_exercises_match(solutions, exercises):
    report = release(solutions, exercises, check=True)
    stale = [str(p) for p in report.out_of_date + report.orphans]
    assert not stale, f"exercises/ does not match solutions/; run `vgcourse release`. Not matching: {stale}"


def test_exercises_match_solutions():
    assert_exercises_match(REPO / "solutions", REPO / "exercises")


def _locally_modified(path):
    """True when git says ``path`` differs from the last commit (a learner working in a clone)."""
    result = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", str(path)], cwd=REPO, capture_output=True)
    return result.returncode == 1


@pytest.mark.parametrize("solution", sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_committed_exercises_are_exactly_what_release_generates(solution):
    """Nobody hand-edits exercises/: the committed file is byte-for-byte the generated notebook's cells."""
    exercise = REPO / "exercises" / solution.name
    if _locally_modified(exercise):
        pytest.skip(f"{exercise.name} has local changes (your answers?); checked on a clean checkout")
    generated = make_exercise(nbformat.read(solution, as_version=4), str(solution))
    assert fingerprint(nbformat.read(exercise, as_version=4)) == fingerprint(generated), (
        f"{exercise.name} differs from what `vgcourse release` generates; edit solutions/, then release")


def test_a_learners_edits_to_the_current_release_are_up_to_date_and_kept(course):
    solutions, exercises = course
    release(solutions, exercises)
    target = exercises / "01_derivatives.ipynb"
    nb = nbformat.read(target, as_version=4)
    nb.cells[-1].source += "\n# my answer"
    nbformat.write(nb, target)
    before = target.read_bytes()
    report = release(solutions, exercises)
    assert target in report.up_to_date and not report.skipped and target.read_bytes() == before
    assert_exercises_match(solutions, exercises)
    change_solution(solutions)  # a newer release: now the learner's copy is out of date, and kept
    report = release(solutions, exercises)
    assert target in report.skipped and target.read_bytes() == before


def test_drift_check_fails_naming_a_solution_without_an_up_to_date_exercise(course):
    solutions, exercises = course
    with pytest.raises(AssertionError, match="01_derivatives.ipynb.*02_depth.ipynb"):
        assert_exercises_match(solutions, exercises)
    release(solutions, exercises)
    assert_exercises_match(solutions, exercises)
    change_solution(solutions)
    with pytest.raises(AssertionError, match=r"Not matching: \['.*01_derivatives.ipynb'\]"):
        assert_exercises_match(solutions, exercises)
