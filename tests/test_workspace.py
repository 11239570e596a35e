"""vgcourse.tools.workspace: the learner's own copy, updated from the course without losing their work."""

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from vgcourse.tools.cli import main
from vgcourse.tools.workspace import MANIFEST, sync_workspace

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}")] + [nbformat.v4.new_code_cell(s) for s in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    _notebook(root / "notebooks" / "00_welcome.ipynb", "print('welcome')")
    _notebook(root / "notebooks" / "01_one.ipynb", "x = 1")
    _notebook(root / "exercises" / "01_one.ipynb", "# YOUR CODE HERE")
    _notebook(root / "solutions" / "01_one.ipynb", "answer = 42")
    (root / "exercises" / "README.md").write_text("How to do the exercises.")
    return root


def _run(path: Path) -> None:
    """What running a notebook in JupyterLab does to the file: outputs and execution counts."""
    nb = nbformat.read(path, as_version=4)
    for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {count}")]
    nbformat.write(nb, path)


def _edit(path: Path, source: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source = source
    nbformat.write(nb, path)


def test_a_new_workspace_gets_every_course_file_with_the_same_layout(course, tmp_path):
    work = tmp_path / "work"
    report = sync_workspace(course, work)
    names = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert names == ["exercises/01_one.ipynb", "exercises/README.md", "notebooks/00_welcome.ipynb",
                     "notebooks/01_one.ipynb", "solutions/01_one.ipynb"]
    assert len(report.copied) == 5 and not report.updated and not report.kept
    for name in names:
        assert (work / name).read_bytes() == (course / name).read_bytes()
    again = sync_workspace(course, work)
    assert again.up_to_date == 5 and not (again.copied or again.updated or again.kept)
    assert again.lines()[-1] == "5 files: 0 copied, 0 updated, 0 kept with an update beside them, 5 up to date"


def test_an_update_replaces_what_was_only_run_and_keeps_what_was_changed(course, tmp_path):
    work = tmp_path / "work"
    sync_workspace(course, work)
    _run(work / "notebooks" / "01_one.ipynb")                  # the learner ran notebook 01
    _edit(work / "exercises" / "01_one.ipynb", "answer = 41")  # and answered exercise 01
    _run(work / "notebooks" / "00_welcome.ipynb")              # ran 00, which the course does not change
    mine = (work / "exercises" / "01_one.ipynb").read_bytes()
    ran_welcome = (work / "notebooks" / "00_welcome.ipynb").read_bytes()

    _edit(course / "notebooks" / "01_one.ipynb", "x = 2  # the course fixed a bug")
    _edit(course / "exercises" / "01_one.ipynb", "# YOUR CODE HERE (clearer)")
    _notebook(course / "notebooks" / "02_two.ipynb", "y = 2")  # and added a notebook
    report = sync_workspace(course, work)

    assert report.updated == [Path("notebooks/01_one.ipynb")]
    assert (work / "notebooks" / "01_one.ipynb").read_bytes() == (course / "notebooks" / "01_one.ipynb").read_bytes()
    assert report.kept == [(Path("exercises/01_one.ipynb"), Path("exercises/01_one.course-update.ipynb"))]
    assert (work / "exercises" / "01_one.ipynb").read_bytes() == mine          # the learner's answer is untouched
    update = nbformat.read(work / "exercises" / "01_one.course-update.ipynb", as_version=4)
    assert update.cells[-1].source == "# YOUR CODE HERE (clearer)"
    assert report.copied == [Path("notebooks/02_two.ipynb")]
    assert (work / "notebooks" / "00_welcome.ipynb").read_bytes() == ran_welcome  # its outputs are kept too
    assert any(line.startswith("kept     exercises/01_one.ipynb: you changed it") for line in report.lines())

    # Still the learner's on the next sync: kept again, never overwritten.
    assert sync_workspace(course, work).kept == report.kept
    assert (work / "exercises" / "01_one.ipynb").read_bytes() == mine


def test_a_notebook_the_learner_broke_is_kept(course, tmp_path):
    work = tmp_path / "work"
    sync_workspace(course, work)
    (work / "notebooks" / "01_one.ipynb").write_text("{ half saved")
    _edit(course / "notebooks" / "01_one.ipynb", "x = 3")
    report = sync_workspace(course, work)
    assert [path for path, _ in report.kept] == [Path("notebooks/01_one.ipynb")]
    assert (work / "notebooks" / "01_one.ipynb").read_text() == "{ half saved"


def test_bad_folders_are_refused_with_the_reason(course, tmp_path):
    with pytest.raises(ValueError, match="has no notebooks/ folder"):
        sync_workspace(tmp_path / "nowhere", tmp_path / "work")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        sync_workspace(course, tmp_path / "file")
    with pytest.raises(ValueError, match="cannot be inside the course's notebooks/ folder"):
        sync_workspace(course, course / "notebooks" / "mine")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / MANIFEST).write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a workspace record"):
        sync_workspace(course, tmp_path / "work")


def test_the_command_line_prints_what_it_did(course, tmp_path, capsys):
    assert main(["workspace", "--course", str(course), "--dir", str(tmp_path / "work")]) == 0
    assert "copied   notebooks/00_welcome.ipynb" in capsys.readouterr().out
    assert main(["workspace", "--course", str(tmp_path / "nowhere"), "--dir", str(tmp_path / "w")]) == 2
    assert "has no notebooks/ folder" in capsys.readouterr().err


def test_make_lab_serves_the_workspace_and_opens_notebook_00():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), "lab", "-o", ".venv/.installed"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    workspace = (ROOT / "my-course").as_posix()
    assert dry[0].endswith('vgcourse workspace --dir "my-course"')
    assert f'--ServerApp.root_dir="{workspace}"' in dry[1]
    assert dry[1].endswith(f'"{workspace}/notebooks/00_welcome.ipynb"')
    assert "/my-course/" in (ROOT / ".gitignore").read_text().splitlines()
