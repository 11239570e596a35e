"""vgcourse.tools.prose_numbers: which numbers in a notebook's prose no code backs."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from vgcourse.tools.prose_numbers import main, missing_phrases, prose_numbers, unbacked_numbers


def notebook(markdown, *code, unchecked=None):
    nb = new_notebook(cells=[new_markdown_cell(markdown), *(new_code_cell(c) for c in code)])
    if unchecked is not None:
        nb.metadata["vgcourse"] = {"unchecked_prose": unchecked}
    return nb


def texts(nb):
    return [n.text for n in unbacked_numbers(nb)]


@pytest.mark.parametrize(("prose", "value"), [
    ("about 0.14 per layer", 0.14), ("1,348 images", 1348), ("60 % of units", 0.6),
    ("below $10^{-12}$ of it", 1e-12), ("below 10⁻⁶ of it", 1e-6), ("a ratio of 1.2×10⁻³⁸", 1.2e-38),
    ("negative below −0.75", -0.75), ("1.5⁹ times", 1.5 ** 9), ("a 1e-3 rule", 1e-3),
    (r"where $\sigma'(h^*) \approx 0.224$", 0.224), (r"$f < 1.5 \times 10^{-3}$", 1.5e-3),
])
def test_it_reads_numbers_as_prose_writes_them(prose, value):
    (number,) = prose_numbers(notebook(prose))
    assert number.value == pytest.approx(value)


@pytest.mark.parametrize("prose", [
    "see [03 — detection](03_detection.ipynb)", "as notebook 05 showed", "notebooks 04–07 fix it",
    "Glorot & Bengio (2010)", "`depth=20`", r"the bound $(1/4)^L$ and $\tfrac14/\sqrt3$", "float32 and ReLU6",
    "# 02 — Saturation", "1. first\n2. second", "**Time:** about 25 minutes.", "(6 points, with feedback)", "the 2nd layer",
])
def test_references_names_and_formulas_are_not_claims(prose):
    assert prose_numbers(notebook(prose)) == []


def test_an_assert_backs_a_number_only_within_its_stated_precision():
    assert texts(notebook("factor 0.14", "f = 0.1401\nassert abs(f - 0.14) < 0.005")) == []
    assert texts(notebook("factor 0.14", "assert 0.135 < f < 0.145")) == []
    assert texts(notebook("factor 0.14", "assert 0.13 < f < 0.16")) == ["0.14"]
    assert texts(notebook("about 60 %", "assert abs(s - 0.6) < 0.05")) == []
    assert texts(notebook("about 60 %", "assert s > 59.6")) == []
    assert texts(notebook("scaled by 1.5¹⁰ ≈ 58", "assert round(r) == 58 and r == 1.5 ** 10")) == []


def test_a_power_of_ten_is_backed_by_itself_or_by_its_exponent():
    assert texts(notebook("below $10^{-6}$", "assert r < 1e-6")) == []
    assert texts(notebook("below $10^{-6}$", "assert math.log10(r) < -6")) == []
    assert texts(notebook("below $10^{-6}$", "assert r < 1e-5")) == ["10^{-6}"]
    assert texts(notebook("about $10^{-26}$", "assert r > 0")) == ["10^{-26}"]  # 0 is not within 1e-9 of it
    # a bare power of ten states an order of magnitude: half a decade either way, not a whole one
    assert texts(notebook("about $10^{-26}$", "assert 10 ** -26.5 < r < 10 ** -25.5")) == []
    assert texts(notebook("about $10^{-26}$", "assert 1e-27 < r < 1e-25")) == ["10^{-26}"]
    assert texts(notebook(r"about $2\times10^{-26}$", "assert 10 ** -26.5 < r")) == ["2×10^{-26}"]


def test_an_assert_backs_through_the_constants_it_names():
    assert texts(notebook("scales 0.5 and 8", "SCALES = [0.5, 8]", "assert len(SCALES) == 2")) == []


def test_a_set_up_number_must_appear_exactly_in_the_code():
    assert texts(notebook("learning rate 0.3 for 20 epochs", "train(lr=0.3, epochs=20)")) == []
    assert texts(notebook("learning rate 0.3", "train(lr=0.31)")) == ["0.3"]
    assert texts(notebook("accuracy 0.97", "print(0.97)")) == []  # exact, so a set-up literal counts


def test_listed_phrases_are_exempt_and_must_exist_with_a_reason():
    nb = notebook("hidden layers 2–19 here", unchecked={"layers 2–19": "layer indices"})
    assert texts(nb) == [] and missing_phrases(nb) == []
    stale = notebook("nothing", unchecked={"layers 2–19": "layer indices", "x": " "})
    assert missing_phrases(stale) == ["layers 2–19", "x"]
    with pytest.raises(ValueError, match="must map phrases to reasons"):
        prose_numbers(notebook("x", unchecked=["layers 2–19"]))


def test_the_command_lists_unbacked_numbers_and_fails(tmp_path, capsys):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(notebook("factor 0.14", "assert abs(f - 0.14) < 0.005"), good)
    nbformat.write(notebook("factor 0.14 at depth 20"), bad)
    assert main([str(good)]) == 0
    assert main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "bad.ipynb: cell 0: '0.14' unbacked" in out and "'20'" in out and "good.ipynb" not in out
