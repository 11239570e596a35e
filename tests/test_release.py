"""vgcourse.tools.release: ``vgcourse release`` over folders — what is written, kept, backed up and
reported, and that the committed exercises are what it generates."""

import subprocess
from pathlib import Path

import nbformat
import pytest
from fixtures.solution_notebooks import solution, write
from nbformat.v4 import new_markdown_cell, new_output

from vgcourse.tools.cli import main
from vgcourse.tools.exercise import ReleaseError, make_exercise
from vgcourse.tools.notebook_format import fingerprint
from vgcourse.tools.release import release

REPO = Path(__file__).resolve().parents[1]


def tree(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


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
