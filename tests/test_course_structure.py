"""The course notebooks follow docs/notebook-conventions.md: an opening block, a Next link, claims
checked in their own cells, a predict-then-run prompt, and every number in the prose backed."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from vgcourse.tools.prose_numbers import missing_phrases, unbacked_numbers

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
CONTENT = [path for path in LESSONS if not path.name.startswith("00_")]
CHECK_HEADER = "# Check the claims"
PREDICT = "**Predict, then run.**"
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def read(path):
    return nbformat.read(path, as_version=4)


def name(path):
    return f"{path.parent.name}/{path.name}"


def test_the_course_is_all_here():
    assert [p.name[:2] for p in LESSONS] == [f"{n:02d}" for n in range(len(LESSONS))] and len(LESSONS) >= 11
    assert [p.name for p in SOLUTIONS] == [p.name for p in CONTENT]


@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=name)
def test_it_opens_with_objectives_prerequisites_and_a_time(path):
    opening = read(path).cells[0]
    assert opening.cell_type == "markdown" and opening.source.startswith("# ")
    learn = re.search(r"^\*\*You will learn\*\*\n((?:- .+\n?)+)", opening.source, re.M)
    assert learn, "no '**You will learn**' list"
    assert 2 <= len(learn.group(1).strip().splitlines()) <= 5
    prerequisites = re.search(r"^\*\*Prerequisites:\*\* (.+)$", opening.source, re.M)
    assert prerequisites, "no '**Prerequisites:**' line"
    if path.name[:2] not in ("00", "01"):
        earlier = [int(target[:2]) for target in LINK.findall(prerequisites.group(1)) if target[:2].isdigit()]
        assert earlier and all(n <= int(path.name[:2]) for n in earlier), "prerequisites must link earlier notebooks"
    assert re.search(r"^\*\*Time:\*\* about [0-9]+ minutes\.$", opening.source, re.M), "no '**Time:** about N minutes.'"


@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=name)
def test_every_next_is_a_link_to_a_file_that_exists(path):
    cells = read(path).cells
    markdown = [c.source for c in cells if c.cell_type == "markdown"]
    assert "**Next:**" in markdown[-1], "the last markdown cell must say what comes next"
    for source in markdown:
        for line in source.splitlines():
            if "**Next:**" in line:
                targets = LINK.findall(line)
                assert targets, f"'Next' without a link: {line!r}"
                for target in targets:
                    if not target.startswith("http"):
                        assert (path.parent / target.split("#")[0]).exists(), f"{target} does not exist"


def code_cells(path):
    return [(i, c.source, ast.parse("\n".join(l for l in c.source.splitlines() if not l.lstrip().startswith(("%", "!")))))
            for i, c in enumerate(read(path).cells) if c.cell_type == "code"]


@pytest.mark.parametrize("path", LESSONS, ids=name)
def test_claims_are_checked_in_their_own_cells_after_the_lesson(path):
    checks = 0
    for index, source, tree in code_cells(path):
        has_assert = any(isinstance(node, ast.Assert) for node in ast.walk(tree))
        is_check = source.startswith(CHECK_HEADER)
        assert not has_assert or is_check, f"cell {index} asserts but is not a '{CHECK_HEADER}' cell"
        if is_check:
            checks += 1
            assert has_assert, f"cell {index} is labelled a check but asserts nothing"
            calls = {getattr(n.func, "attr", getattr(n.func, "id", "")) for n in ast.walk(tree) if isinstance(n, ast.Call)}
            drawing = sorted(c for c in calls if c.endswith("_figure") or c in ("figure", "subplots", "plot", "show"))
            assert not drawing and "plt." not in source, f"check cell {index} draws: {drawing}"
    assert checks or path.name.startswith("00_")


@pytest.mark.parametrize("path", CONTENT, ids=name)
def test_the_learner_predicts_before_the_cell_that_measures(path):
    cells = read(path).cells
    prompts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith(PREDICT)]
    assert prompts, f"no '{PREDICT}' prompt"
    for i in prompts:
        answer = cells[i + 1]
        assert answer.cell_type == "code" and re.match(r"my_prediction = None\b", answer.source), \
            f"cell {i + 1} must be the learner's 'my_prediction = None' cell"
        later = "\n".join(c.source for c in cells[i + 2:] if c.cell_type == "code")
        assert "prediction_report(my_prediction" in later, f"the prediction of cell {i} is never compared"


@pytest.mark.parametrize("path", LESSONS, ids=name)
def test_every_number_in_the_prose_is_backed(path):
    notebook = read(path)
    unbacked = [f"cell {n.cell}: {n.text!r} … {n.context} …" for n in unbacked_numbers(notebook)]
    assert not unbacked, "numbers no assert or set-up backs:\n" + "\n".join(unbacked)
    assert missing_phrases(notebook) == []


def test_every_lesson_is_in_the_html_build_the_readme_map_and_the_instructor_guide(monkeypatch):
    from vgcourse.tools.build import DEFAULT_NOTEBOOKS, collect_notebooks

    monkeypatch.chdir(ROOT)  # `make html` runs from the repository's root
    assert [p.name for p in collect_notebooks([DEFAULT_NOTEBOOKS])] == [p.name for p in LESSONS]
    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "instructor-guide.md").read_text()
    for path in LESSONS:
        assert f"](notebooks/{path.name})" in readme, f"README's course map does not link {path.name}"
        assert re.search(rf"^\*\*{path.name[:2]} — ", guide, re.M), f"the instructor guide has no section for {path.name}"
