"""vgcourse.tools.notebook_format: the one definition of the course's notebook format."""

import subprocess
import sys

import nbformat
import pytest
from fixtures.solution_notebooks import solution
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from vgcourse.tools.notebook_format import (
    QUESTION_ID, cell_question, code_stub, file_number, fingerprint, notebook_assignment, recorded_fingerprint,
    release_metadata,
)


@pytest.mark.parametrize(("qid", "ok"), [("ex03.hook", True), ("ex10.fix_2", True), ("ex3.hook", False),
                                         ("ex03.Hook", False), ("ex03.2hook", False), ("ex03.hook ", False)])
def test_question_ids(qid, ok):
    assert bool(QUESTION_ID.match(qid)) == ok


def test_file_numbers():
    assert file_number("03_detection.ipynb") == "03"
    assert file_number("solutions/10_capstone.ipynb") == "10"
    assert file_number("3_detection.ipynb") is None and file_number("alice.ipynb") is None
    assert file_number("x/03detection.ipynb") is None


def test_metadata_is_read_where_the_format_puts_it():
    nb = new_notebook(metadata={"vgcourse": {"assignment": "03"}})
    graded = new_code_cell("x = 1", metadata={"vgcourse": {"question": "ex03.hook", "points": 3}})
    plain = new_code_cell("y = 2", metadata={"vgcourse": "not a dict"})
    assert notebook_assignment(nb) == "03" and notebook_assignment(new_notebook()) is None
    assert cell_question(graded) == ("ex03.hook", 3) and cell_question(plain) is None
    assert cell_question(new_markdown_cell("text")) is None


def test_a_code_stub_raises_naming_the_question():
    namespace = {}
    with pytest.raises(NotImplementedError, match="ex03.hook: replace this line with your answer"):
        exec("\n".join(code_stub("ex03.hook")), namespace)


def test_the_fingerprint_ignores_outputs_but_not_sources_or_question_metadata():
    cell = new_code_cell("x = 1", metadata={"vgcourse": {"question": "ex01.x", "points": 1}})
    nb = new_notebook(cells=[cell])
    before = fingerprint(nb)
    cell.outputs, cell.execution_count = [new_output("stream", text="1")], 4
    assert fingerprint(nb) == before
    cell.metadata["vgcourse"]["points"] = 2
    assert fingerprint(nb) != before
    cell.metadata["vgcourse"]["points"] = 1
    cell.source = "x = 2"
    assert fingerprint(nb) != before
    nb.metadata["vgcourse"] = release_metadata(before)
    assert recorded_fingerprint(nb) == before
    with pytest.raises(TypeError, match="expected a notebook"):
        fingerprint(["not", "a", "notebook"])
    nbformat.validate(nb)


def test_it_does_not_import_torch():
    code = "import sys, vgcourse.tools.notebook_format, vgcourse.tools.release; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


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
