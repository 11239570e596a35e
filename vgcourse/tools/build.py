"""``vgcourse build``: execute the course notebooks and write a browsable HTML copy.

Each notebook runs in a fresh kernel (nbclient) with its own folder as working directory, as in
JupyterLab, and is exported with its outputs by nbconvert's ``HTMLExporter``; an ``index.html``
links them all. The source notebooks are only read, never written. The pages need no network:
MathJax is copied beside them and nothing is loaded from a CDN (``html_template/offline``).
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.filters import strip_ansi
from nbconvert.preprocessors import ClearOutputPreprocessor

TEMPLATE_DIR = Path(__file__).parent / "html_template"
"""nbconvert's lab template without its CDN scripts (``offline/index.html.j2``)."""
MATHJAX_DIR = "mathjax"
"""Where the build puts MathJax, beside the pages: jupyter-server-mathjax's copy (MathJax 2.7)."""
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
DEFAULT_NOTEBOOKS = Path("notebooks")
DEFAULT_OUT = Path("build/html")


@dataclass
class NotebookResult:
    """One notebook's build: where its HTML went, its title, how long it ran, and its error if any."""

    source: Path
    html: Path
    title: str
    seconds: float
    error: str | None = None


@dataclass
class BuildReport:
    """Every notebook's result, in build order, and the index page."""

    index: Path
    results: list[NotebookResult] = field(default_factory=list)

    @property
    def failures(self) -> list[NotebookResult]:
        return [r for r in self.results if r.error is not None]


def notebook_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The text of the notebook's first markdown heading, or ``fallback`` if it has none."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.lstrip().startswith("#"):
                    return line.lstrip().lstrip("#").strip()
    return fallback


def collect_notebooks(paths: list[Path]) -> list[Path]:
    """The notebooks named by ``paths`` (files, or folders meaning every ``*.ipynb`` in them, sorted).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not an ``.ipynb``, a folder holds none, or two notebooks share a name.
    """
    notebooks: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
            if not found:
                raise ValueError(f"no notebooks (*.ipynb) in folder {str(path)!r}")
            notebooks += found
        elif path.is_file():
            if path.suffix != ".ipynb":
                raise ValueError(f"{str(path)!r} is not a notebook; expected a .ipynb file or a folder")
            notebooks.append(path)
        else:
            where = "" if path.is_absolute() else f" (looked in {Path.cwd()})"
            raise FileNotFoundError(f"no such notebook or folder: {str(path)!r}{where}")
    stems = [p.stem for p in notebooks]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise ValueError(f"two notebooks would both be written as {clashes[0]}.html; build them separately")
    return notebooks


KERNEL_ENV = {"TQDM_DISABLE": "1"}
"""Set in the build's kernels: no progress bars in the HTML pages (``training.epoch_bar``)."""


def _execute(nb: nbformat.NotebookNode, folder: Path, timeout: int) -> str | None:
    """Clear ``nb``'s outputs, run it in place in a fresh kernel started in ``folder``; return the
    error, or None. Cleared first, so a failed page cannot show outputs of an earlier session."""
    ClearOutputPreprocessor().preprocess(nb, {})
    client = NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(folder)}})
    try:
        # The kernel's own log lines would bury the build's progress lines.
        client.execute(stderr=subprocess.DEVNULL, env={**os.environ, **KERNEL_ENV})
    except CellExecutionError as error:
        return f"{error.ename}: {strip_ansi(error.evalue)}"
    except Exception as error:  # a cell timeout, a dead or missing kernel: report it and go on
        lines = strip_ansi(str(error)).strip().splitlines()
        return f"{type(error).__name__}: {lines[0] if lines else ''}"
    return None


def _failure_banner(error: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(
        "**This notebook failed to execute.** Outputs stop at the failing cell.\n\n"
        f"```text\n{error}\n```")


def _link_html(body: str, built: set[str]) -> str:
    """Point links between built notebooks (``02_x.ipynb``) at their HTML copies."""
    def fix(match: re.Match) -> str:
        stem, anchor = match.group(1), match.group(2) or ""
        return f'href="{stem}.html{anchor}"' if stem in built else match.group(0)
    return re.sub(r'href="([^"/:#?]+)\.ipynb(#[^"]*)?"', fix, body)


INDEX = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>The vanishing gradient problem</title></head>
<body>
<h1>The vanishing gradient problem, end to end</h1>
<ul>
{items}
</ul>
</body></html>
"""


def write_index(results: list[NotebookResult], out_dir: Path) -> Path:
    """Write ``index.html`` listing every notebook's title with a link; return its path."""
    items = "\n".join(
        f'  <li><a href="{html.escape(r.html.name)}">{html.escape(r.title)}</a>'
        f' <small>({html.escape(r.source.name)}, {r.seconds:.0f} s'
        f'{", <strong>failed</strong>" if r.error else ""})</small></li>' for r in results)
    index = out_dir / "index.html"
    index.write_text(INDEX.format(items=items), encoding="utf-8")
    return index


def _copy_mathjax(out_dir: Path) -> None:
    """Put MathJax beside the pages, so the maths typesets with no network."""
    source = resources.files("jupyter_server_mathjax") / "static"
    with resources.as_file(source) as folder:
        shutil.copytree(folder, out_dir / MATHJAX_DIR, dirs_exist_ok=True)


def _read(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, or not a notebook
        raise ValueError(f"{str(path)!r} is not a readable notebook: {error}") from None


def _say(text: str, end: str = "\n") -> None:
    print(text, end=end, flush=True)  # flushed, so progress shows up at once under `make` and in logs


def build_html(notebooks: list[Path], out_dir: Path = DEFAULT_OUT, timeout: int = 600,
               log: Callable[..., None] | None = _say) -> BuildReport:
    """Execute ``notebooks`` in order, each in a fresh kernel, and write their HTML and an index.

    Args:
        notebooks: ``.ipynb`` files, or folders of them; they are read, never modified.
        out_dir: folder for ``NAME.html`` per notebook and ``index.html`` (created if missing).
        timeout: seconds any one cell may run before the notebook counts as failed.
        log: ``print``-like, called to write one progress line per notebook (``None`` for silence).

    Returns:
        A ``BuildReport``; a notebook that failed still has its HTML, with the error visible.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output path {str(out_dir)!r} exists and is not a folder")
    notebooks = collect_notebooks(notebooks)
    if not notebooks:
        raise ValueError("no notebooks to build")
    sources = {path: _read(path) for path in notebooks}  # every one readable before any kernel starts
    out_dir.mkdir(parents=True, exist_ok=True)
    _copy_mathjax(out_dir)
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATE_DIR)], mathjax_url=MATHJAX_URL)
    report = BuildReport(out_dir / "index.html")
    built = {p.stem for p in notebooks}
    for number, source in enumerate(notebooks, 1):
        if log:
            log(f"[{number}/{len(notebooks)}] {source} ... ", end="")
        nb = sources[source]
        start = time.perf_counter()
        error = _execute(nb, source.parent.resolve(), timeout)
        seconds = time.perf_counter() - start
        title = notebook_title(nb, source.stem)
        if error:
            nb.cells.insert(0, _failure_banner(error))
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        target = out_dir / f"{source.stem}.html"
        target.write_text(_link_html(body, built), encoding="utf-8")
        report.results.append(NotebookResult(source, target, title, seconds, error))
        if log:
            log(f"{'FAILED' if error else 'ok'} in {seconds:.1f} s" + (f": {error}" if error else ""))
    write_index(report.results, out_dir)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``vgcourse build``."""
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"folder for the HTML copy (default: {DEFAULT_OUT})")
    parser.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                        help="seconds one cell may run before its notebook fails (default: 600)")
    parser.add_argument("--notebooks", type=Path, nargs="+", default=[DEFAULT_NOTEBOOKS], metavar="PATH",
                        help="notebooks, or folders of notebooks, to build in order (default: notebooks/)")


def run_command(args: argparse.Namespace) -> int:
    """Build; exit code 0 if every notebook ran, 1 if any failed, 2 for bad arguments."""
    started = time.perf_counter()
    try:
        report = build_html(args.notebooks, args.out, args.timeout)
    except (ValueError, FileNotFoundError) as error:
        print(f"vgcourse build: error: {error}", file=sys.stderr)
        return 2
    total = time.perf_counter() - started
    print(f"{len(report.results)} notebooks in {total:.1f} s; open {report.index}")
    if report.failures:
        names = ", ".join(r.source.name for r in report.failures)
        print(f"vgcourse build: {len(report.failures)} notebook(s) failed: {names}", file=sys.stderr)
        return 1
    return 0
