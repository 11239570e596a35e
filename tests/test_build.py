"""`vgcourse build`: executes notebooks in fresh kernels and writes their HTML, never touching the sources."""

import argparse
import contextlib
import io
import re
from pathlib import Path

import nbformat
import pytest

from vgcourse.tools import build
from vgcourse.tools.build import build_html, collect_notebooks, notebook_title


def main(argv: list[str]) -> int:
    """`vgcourse build ARGV`, through this module's own parser (independent of the other sub-commands)."""
    assert argv[0] == "build"
    parser = argparse.ArgumentParser(prog="vgcourse build")
    build.add_arguments(parser)
    return build.run_command(parser.parse_args(argv[1:]))


def _notebook(path: Path, title: str, *code: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    prose = "Next: [the broken one](02_bad.ipynb); not built: [elsewhere](99_other.ipynb)."
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n{prose}")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in code]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two tiny notebooks (one good, one that raises) built once through the command line."""
    root = tmp_path_factory.mktemp("course")
    src = root / "notebooks"
    src.mkdir()
    (src / "data.txt").write_text("read from the notebook's own folder")
    good = _notebook(src / "01_good.ipynb", "01 — A good one",
                     "print(open('data.txt').read())", "6 * 7")
    bad = _notebook(src / "02_bad.ipynb", "02 — A broken one",
                    "print('before the error')", "raise ValueError('planted failure')", "print('never runs')")
    stale = nbformat.read(bad, as_version=4)   # outputs left by an earlier interactive session
    stale.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="STALE OUTPUT of an old session")]
    nbformat.write(stale, bad)
    _notebook(src / "03_env.ipynb", "03 — The kernel's environment",
              "import os\nprint('TQDM_DISABLE =', os.environ.get('TQDM_DISABLE'))")
    before = {p: p.read_bytes() for p in (good, bad)}
    out = root / "site"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["build", "--out", str(out), "--timeout", "60", "--notebooks", str(src)])
    return {"code": code, "out": out, "good": good, "bad": bad, "before": before,
            "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def test_failure_gives_exit_code_1_and_names_the_notebook(built):
    assert built["code"] == 1
    assert "1 notebook(s) failed: 02_bad.ipynb" in built["stderr"]
    progress = built["stdout"].splitlines()        # one line per notebook, with its time
    assert progress[0].startswith("[1/3]") and "01_good.ipynb ... ok in" in progress[0]
    assert progress[1].startswith("[2/3]") and "02_bad.ipynb ... FAILED in" in progress[1]
    assert "ValueError: planted failure" in progress[1]
    assert progress[3].startswith("3 notebooks in")


def test_index_links_both_notebooks_with_their_titles(built):
    index = (built["out"] / "index.html").read_text()
    assert 'href="01_good.html"' in index and 'href="02_bad.html"' in index
    assert "01 — A good one" in index and "02 — A broken one" in index
    assert index.count("failed") == 1 and index.index("failed") > index.index("02_bad")


def test_good_notebook_html_has_its_outputs_run_in_its_own_folder(built):
    page = (built["out"] / "01_good.html").read_text()
    assert re.search(r"<pre>read from the notebook(&#39;|')s own folder", page)   # cwd = the notebook's folder
    assert re.search(r"<pre>\s*42\s*</pre>", page)
    assert "failed to execute" not in page
    assert 'href="02_bad.html"' in page and 'href="99_other.ipynb"' in page   # only built notebooks relinked


def test_failing_notebook_html_shows_what_ran_and_the_error(built):
    page = (built["out"] / "02_bad.html").read_text()
    assert "failed to execute" in page                        # the banner at the top
    assert '<span class="ansi-red-fg">ValueError</span>: planted failure' in page   # the cell's traceback
    assert "before the error" in page          # the cell before the failure ran
    assert page.count("never runs") == 1       # the source is shown, but it produced no output
    assert "STALE OUTPUT" not in page          # the copy that ran had its old outputs cleared


def test_the_build_kernels_hide_progress_bars(built):
    page = (built["out"] / "03_env.html").read_text()
    assert "TQDM_DISABLE = 1" in page


def test_sources_are_unchanged(built):
    for path, content in built["before"].items():
        assert path.read_bytes() == content
    names = sorted(p.name for p in built["good"].parent.iterdir())
    assert names == ["01_good.ipynb", "02_bad.ipynb", "03_env.ipynb", "data.txt"]   # nothing written next to them


def test_notebook_title_and_collection(tmp_path):
    cells = [nbformat.v4.new_code_cell("1"), nbformat.v4.new_markdown_cell("text\n## Heading two")]
    nb = nbformat.v4.new_notebook(cells=cells)
    assert notebook_title(nb, "fallback") == "Heading two"
    assert notebook_title(nbformat.v4.new_notebook(), "fallback") == "fallback"
    b, a = _notebook(tmp_path / "b.ipynb", "B"), _notebook(tmp_path / "a.ipynb", "A")
    assert collect_notebooks([tmp_path]) == [a, b]
    assert collect_notebooks([b, a]) == [b, a]       # files keep the order given


@pytest.mark.parametrize("args, message", [
    (["--timeout", "0"], "timeout must be a positive number of seconds, got 0"),
    (["--notebooks", "no/such.ipynb"], "no such notebook or folder: 'no/such.ipynb'"),
    (["--notebooks", "{tmp}/notes.txt"], "is not a notebook; expected a .ipynb file or a folder"),
    (["--notebooks", "{tmp}/empty"], "no notebooks (*.ipynb) in folder"),
    (["--notebooks", "{tmp}/a.ipynb", "{tmp}/broken.ipynb"], "broken.ipynb' is not a readable notebook"),
    (["--notebooks", "{tmp}/a.ipynb", "{tmp}/a.ipynb"], "two notebooks would both be written as a.html"),
    (["--out", "{tmp}/notes.txt", "--notebooks", "{tmp}/a.ipynb"], "exists and is not a folder"),
])
def test_bad_arguments_give_clear_errors(tmp_path, capsys, args, message):
    (tmp_path / "notes.txt").write_text("not a notebook")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.ipynb").write_text("{ not json")
    _notebook(tmp_path / "a.ipynb", "A")
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["build", "--out", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()        # nothing was built


def test_non_numeric_timeout_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        main(["build", "--timeout", "soon"])
    assert info.value.code == 2 and "invalid int value" in capsys.readouterr().err


def test_build_html_rejects_an_empty_list(tmp_path):
    with pytest.raises(ValueError, match="no notebooks to build"):
        build_html([], tmp_path / "out", log=None)
