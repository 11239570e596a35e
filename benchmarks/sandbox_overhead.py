"""What does the bubblewrap sandbox cost? Kernel start-up and one graded submission, with and without it.

Runs are interleaved (sandboxed, not sandboxed, sandboxed, ...) so that a busy shared machine
slows both alike. "start" is :class:`~vgcourse.grading.runner.KernelSession`'s start-up (the
kernel plus the grader's setup cell, which imports torch); "grade" is grading exercise 01's
solution with :func:`~vgcourse.grading.submission.grade_submission`.

    python benchmarks/sandbox_overhead.py [--runs 5]

Measured 2026-12-02 on the 2-core machine (shared with another engineer's tests), 5 runs each,
medians, two runs: start 1.78 / 1.73 s sandboxed, 1.86 / 1.62 s not (0.96x / 1.07x); grading
exercise 01's solution 2.07 / 1.79 s sandboxed, 2.14 / 1.75 s not (0.97x / 1.02x): within the
noise of a shared machine, and well inside the issue's 1.2x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from vgcourse.grading.runner import KernelSession
from vgcourse.grading.submission import grade_submission

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "01_derivative_bounds.ipynb"


def start_seconds(sandboxed: bool) -> float:
    """Seconds from nothing to a kernel that has run the grader's setup cell."""
    with tempfile.TemporaryDirectory(prefix="vgcourse-bench-") as folder:
        started = time.perf_counter()
        with KernelSession(Path(folder), cell_timeout=60, deadline=time.monotonic() + 120, memory_limit_mb=4096,
                           sandboxed=sandboxed):
            return time.perf_counter() - started


def grade_seconds(sandboxed: bool) -> float:
    """Seconds to grade exercise 01's solution (it must score full marks)."""
    started = time.perf_counter()
    grade = grade_submission(SOLUTION, seed=0, sandboxed=sandboxed)
    assert grade.status == "ok" and grade.total == grade.max_points, (grade.status, grade.error)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each configuration (default: 5)")
    args = parser.parse_args()
    times: dict[tuple[str, bool], list[float]] = {(kind, box): [] for kind in ("start", "grade") for box in (True, False)}
    for _ in range(args.runs):
        for sandboxed in (True, False):
            times["start", sandboxed].append(start_seconds(sandboxed))
            times["grade", sandboxed].append(grade_seconds(sandboxed))
    for kind in ("start", "grade"):
        boxed, bare = (statistics.median(times[kind, box]) for box in (True, False))
        print(f"{kind}: sandboxed {boxed:.2f} s, not sandboxed {bare:.2f} s (medians of {args.runs}); "
              f"ratio {boxed / bare:.3f}; all sandboxed {[round(t, 2) for t in times[kind, True]]}, "
              f"not {[round(t, 2) for t in times[kind, False]]}")


if __name__ == "__main__":
    main()
