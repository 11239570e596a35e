"""vgcourse.tools.exercise: an exercise from its solution — answers stripped, outputs cleared, the
format checked with errors that say where and what."""

import nbformat
import pytest
from fixtures.solution_notebooks import KERNEL, solution
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vgcourse.tools.exercise import ReleaseError, make_exercise, question_cells, strip_solutions, strip_written_answers
from vgcourse.tools.notebook_format import fingerprint


def with_cell(cell):
    return solution(extra=[cell])


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


STUB = 'raise NotImplementedError("ex01.derivs: replace this line with your answer")'


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


def test_question_cells_reads_the_metadata():
    nb = solution(extra=[new_code_cell("### BEGIN SOLUTION\n### END SOLUTION", metadata={"vgcourse": {"question": "ex01.g", "points": 5}})])
    assert question_cells(nb) == [(1, "ex01.f", 2), (4, "ex01.g", 5)]
    assert question_cells(new_notebook(cells=[new_code_cell("1")])) == []


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
