"""How long does the whole course take to execute? Every notebook and solution, one after another.

Issue 11's budget: notebooks/ + solutions/ executed sequentially on the 2-core CPU with two torch
threads, every notebook under 20 s. Each notebook runs in a fresh kernel, as nbval runs it, so
the time includes the kernel's start, ``import torch`` and the first optimizer's import of
``torch._dynamo`` (about 4 s per notebook here, before any cell does work).

    OMP_NUM_THREADS=2 python benchmarks/course_time.py [--kernel-level default] [paths...]

Prints one line per notebook (seconds, wall clock) and the total, with the kernel level, the
thread count and the load average; on a machine shared with other work the times are not
meaningful (two torch threads on a busy 2-core CPU run many times slower), so run it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path) -> float:
    """Seconds to execute ``path`` top to bottom in a fresh kernel, from its own folder."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/ and solutions/)")
    parser.add_argument("--kernel-level", help="set ATEN_CPU_CAPABILITY for the kernels (default, avx2, avx512)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds allowed per notebook")
    args = parser.parse_args()
    if args.kernel_level:
        os.environ["ATEN_CPU_CAPABILITY"] = args.kernel_level
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
    print(f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'unset')}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.2f}")
    total, over = 0.0, []
    for path in paths:
        seconds = execute(path)
        total += seconds
        if seconds > args.budget:
            over.append(path.name)
        print(f"{seconds:6.1f} s  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
    print(f"{total:6.1f} s  in all ({len(paths)} notebooks); load average now {os.getloadavg()[0]:.2f}")
    if over:
        print(f"over {args.budget:.0f} s: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
