"""The numbers in a notebook's prose that no code backs: the course's guard for "every claim is checked".

A number in a markdown cell is backed when an ``assert`` in the notebook mentions a value within the
number's stated precision (half a unit in its last digit), when it is a set-up number that appears
exactly as a literal in the notebook's code, or when it sits inside a phrase the notebook's metadata
lists under ``vgcourse.unchecked_prose`` with the reason it needs no check. The rules are written
out in ``docs/notebook-conventions.md``.

    python -m vgcourse.tools.prose_numbers notebooks/02_saturation_and_depth.ipynb

prints every unbacked number with its cell and context, and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import nbformat

METADATA_KEY = "unchecked_prose"
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SUPER = "[⁰¹²³⁴⁵⁶⁷⁸⁹]"
_MINUS = "[-−]"
# a number as prose writes it: 1,348 · 0.14 · 60 % · 1.2×10⁻³⁸ · 1e-3 · 1.5⁹ · −0.75
_NUMBER = re.compile(
    rf"(?<![\w.,/])(?P<sign>{_MINUS}(?=[0-9]))?"
    rf"(?:(?P<pow10>(?<![0-9])10(?:⁻?{_SUPER}+|\^\{{?{_MINUS}?[0-9]+\}}?))"
    r"|(?P<mantissa>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?))"
    rf"(?:(?P<e>e{_MINUS}?[0-9]+)"
    rf"|\s?[×x·]\s?10(?P<exp10>⁻?{_SUPER}+|\^\{{?{_MINUS}?[0-9]+\}}?)"
    rf"|(?P<power>{_SUPER}+))?"
    r"(?P<percent>\s?%)?"
    r"(?!(?:st|nd|rd|th)\b)(?![A-Za-z_][A-Za-z_]|[0-9])"
)
_POWER_OF_TEN = re.compile(
    rf"(?<![0-9.])(?:[0-9]+(?:\.[0-9]+)?\s*(?:\\times|\\cdot|×)\s*)?10(?P<exp>⁻?{_SUPER}+|\^\{{?{_MINUS}?[0-9]+\}}?)")
_RELATION = r"(?:=|<|>|≈|≤|≥|\\approx|\\le(?:q)?|\\ge(?:q)?|\\sim|\\lt|\\gt)"
_MATH_CLAIM = re.compile(
    rf"{_RELATION}\s*(?:\\,|~|\s)*(?P<number>{_MINUS}?[0-9][0-9,]*(?:\.[0-9]+)?"
    rf"(?:\s*(?:\\times|\\cdot|×)\s*10\^\{{?{_MINUS}?[0-9]+\}}?)?(?:\s*\\?%)?)(?![0-9./^(\\A-Za-z_])"
)
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]*)[^)]*\)")
_REFERENCE = re.compile(
    r"\b(?:notebooks?|exercises?|solutions?|cells?)\s+[0-9]{1,2}(?:\s*(?:–|-|,|and|or|&)\s*[0-9]{1,2}\b)*",
    re.I)
_HEADING = re.compile(r"^#+ .*$", re.M)
_LIST_NUMBER = re.compile(r"^\s*[0-9]+[.)]\s", re.M)
_POINTS = re.compile(r"\b[0-9]+ points?\b")
_TIME = re.compile(r"^\*\*Time:\*\* about [0-9]+ minutes\.$", re.M)  # the opening block's estimate
_YEAR = re.compile(r"(?<![0-9.,])(?:19[5-9][0-9]|20[0-3][0-9])[a-z]?(?![0-9%])")


@dataclass(frozen=True)
class ProseNumber:
    """A number as a notebook's markdown states it."""

    text: str          # as written
    value: float
    tolerance: float   # half a unit in the last stated digit
    cell: int          # index into the notebook's cells
    context: str       # the text around it
    exponent: int | None = None  # for a power of ten, its exponent (an assert may check log10)
    alternative: float | None = None  # a percentage also as written (60 for "60 %")
    order_of_magnitude: bool = False  # written as a bare power of ten, "10^{-26}"

    def backed_by(self, literal: float, exact: bool = False) -> bool:
        """Whether ``literal`` states this number: within its precision, or exactly for set-up."""
        candidates = [self.value] + ([self.alternative] if self.alternative is not None else [])
        slack = 1e-9 * abs(self.value)  # relative: a literal 0 backs no tiny number
        for candidate in candidates:
            tolerance = slack if exact else (self.tolerance if candidate == self.value
                                             else self.tolerance * 100)
            if abs(abs(literal) - abs(candidate)) <= tolerance + slack:
                return True
        if exact or self.exponent is None:
            return False
        if literal == int(literal) and abs(literal - self.exponent) < 0.5:
            return True  # an assert on log10 of the value
        # a bare power of ten states an order of magnitude: half a decade either way
        return self.order_of_magnitude and literal != 0 and abs(math.log10(abs(literal)) - self.exponent) <= 0.5 + 1e-9


def _decimals(digits: str) -> int:
    return len(digits.split(".")[1]) if "." in digits else 0


def _exponent(text: str) -> int:
    return int(text.translate(SUPERSCRIPTS).strip("^{}").replace("−", "-"))


def _number(match: re.Match, cell: int, source: str) -> ProseNumber:
    mantissa = "1" if match["pow10"] else match["mantissa"].replace(",", "")
    value, tolerance = float(mantissa), 0.5 * 10.0 ** -_decimals(mantissa)
    exponent = None
    if match["pow10"] or match["e"] or match["exp10"]:
        exponent = (_exponent(match["pow10"][2:]) if match["pow10"] else int(match["e"][1:].replace("−", "-"))
                    if match["e"] else _exponent(match["exp10"]))
        value, tolerance = value * 10.0 ** exponent, tolerance * 10.0 ** exponent
    elif match["power"]:
        value, tolerance = value ** _exponent(match["power"]), 1e-9 * value ** _exponent(match["power"])
    if match["sign"]:
        value = -value
    alternative = None
    if match["percent"]:
        alternative, value, tolerance = value, value / 100, tolerance / 100
    start, end = match.span()
    context = " ".join(source[max(0, start - 40):end + 40].split())
    return ProseNumber(match.group(0).strip(), value, tolerance, cell, context, exponent, alternative,
                       order_of_magnitude=bool(match["pow10"]))


def _math_claims(span: str) -> str:
    """What of a ``$...$`` span is checked: numbers right after a relation, and powers of ten."""
    kept = [m["number"].replace("\\times", "×").replace("\\cdot", "×").replace("\\%", "%")
            for m in _MATH_CLAIM.finditer(span)]
    rest = _MATH_CLAIM.sub(" ", span)
    kept += [re.sub(r"\s*(?:\\times|\\cdot)\s*", "×", m.group(0)) for m in _POWER_OF_TEN.finditer(rest)]
    return " " + " ; ".join(kept) + " "


def _prose(source: str, phrases: list[str]) -> str:
    """``source`` with everything removed that is not a checkable statement."""
    for phrase in sorted(phrases, key=len, reverse=True):
        source = source.replace(phrase, " ")
    source = _CODE.sub(" ", source)
    source = _LINK.sub(lambda m: " " if re.search(r"\.(ipynb|md)(#.*)?$", m["target"]) else m["text"], source)
    source = _HEADING.sub(" ", source)
    source = _LIST_NUMBER.sub(" ", source)
    source = _POINTS.sub(" ", source)
    source = _TIME.sub(" ", source)
    source = _REFERENCE.sub(" ", source)
    source = _MATH.sub(lambda m: _math_claims(m.group(0)), source)
    return _YEAR.sub(" ", source)


def unchecked_phrases(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """The notebook's ``vgcourse.unchecked_prose`` metadata: phrase -> why it needs no check."""
    listed = notebook.metadata.get("vgcourse", {}).get(METADATA_KEY, {})
    if not isinstance(listed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in listed.items()):
        raise ValueError(f"metadata vgcourse.{METADATA_KEY} must map phrases to reasons, got {listed!r}")
    return dict(listed)


def prose_numbers(notebook: nbformat.NotebookNode) -> list[ProseNumber]:
    """Every checkable number in the notebook's markdown cells."""
    phrases = list(unchecked_phrases(notebook))
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            prose = _prose(cell.source, phrases)
            found += [_number(m, index, prose) for m in _NUMBER.finditer(prose)]
    return found


_FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "log10": math.log10, "log2": math.log2, "exp": math.exp}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


def _folded(node: ast.AST) -> float | None:
    """The value of a constant expression (``1.5 ** 10``, ``-0.75``, ``math.sqrt(2)``), else None."""
    try:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = _folded(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = _folded(node.left), _folded(node.right)
            if left is None or right is None or (isinstance(node.op, ast.Pow) and abs(right) > 400):
                return None
            return float(_OPERATORS[type(node.op)](left, right))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math":
            return _CONSTANTS.get(node.attr)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "math"
                and node.func.attr in _FUNCTIONS and len(node.args) == 1 and not node.keywords):
            argument = _folded(node.args[0])
            return None if argument is None else _FUNCTIONS[node.func.attr](argument)
    except (ArithmeticError, ValueError):
        return None
    return None


def _values(node: ast.AST) -> Iterator[float]:
    for child in ast.walk(node):
        value = _folded(child)
        if value is not None and math.isfinite(value):
            yield value


def _modules(notebook: nbformat.NotebookNode) -> Iterator[ast.Module]:
    for cell in notebook.cells:
        if cell.cell_type == "code":
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            try:
                yield ast.parse(source)
            except SyntaxError:
                continue


def code_literals(notebook: nbformat.NotebookNode) -> tuple[list[float], list[float]]:
    """(values the asserts mention, values anywhere in the code).

    An assert mentions the constants inside it and those assigned to any name it uses.
    """
    modules = list(_modules(notebook))
    asserts = [node for module in modules for node in ast.walk(module) if isinstance(node, ast.Assert)]
    used = {node.id for a in asserts for node in ast.walk(a) if isinstance(node, ast.Name)}
    claimed = [value for a in asserts for value in _values(a)]
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                if names & used:
                    claimed += list(_values(node.value))
    everywhere = [value for module in modules for value in _values(module)]
    return claimed, everywhere


def unbacked_numbers(notebook: nbformat.NotebookNode) -> list[ProseNumber]:
    """The prose numbers that neither an assert nor the set-up code backs."""
    claimed, everywhere = code_literals(notebook)
    claimed_set, everywhere_set = sorted(set(claimed)), sorted(set(everywhere))
    return [number for number in prose_numbers(notebook)
            if not any(number.backed_by(v) for v in claimed_set)
            and not any(number.backed_by(v, exact=True) for v in everywhere_set)]


def missing_phrases(notebook: nbformat.NotebookNode) -> list[str]:
    """Phrases listed in ``vgcourse.unchecked_prose`` that are not (or no longer) in the markdown,
    or listed without a reason."""
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    return [phrase for phrase, reason in unchecked_phrases(notebook).items()
            if phrase not in markdown or not reason.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List the numbers in notebooks' prose that no code backs.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks:
        if not path.is_file():
            parser.error(f"no such notebook: {path}")
        notebook = nbformat.read(path, as_version=4)
        for number in unbacked_numbers(notebook):
            failed = True
            print(f"{path}: cell {number.cell}: {number.text!r} unbacked  … {number.context} …")
        for phrase in missing_phrases(notebook):
            failed = True
            print(f"{path}: metadata {METADATA_KEY}: {phrase!r} is not in the markdown or has no reason")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
