"""Grading time per submission: this checkout's grader against an earlier one, interleaved.

Each solution of the chosen exercises is graded by the earlier grader (its own checkout and its
own copy of the solution, imported through ``PYTHONPATH`` with this environment's packages) and
then by this one, in turn, each in a fresh process, timing :func:`grade_submission` alone.
Issue 14 asks that grading stays within 1.2x of the grader before it (commit 5aa37de):

    git worktree add --detach ../old-grader 5aa37de
    python benchmarks/grading_time.py --before ../old-grader [--runs 3] [--exercises 01 03 10]

Measured 2026-12-02 on the 2-core machine, 3 runs interleaved, medians, this grader against
5aa37de: exercises 01-09 0.87x-1.03x each (3.5-4.0 s a solution); exercise 10, rerun on a quiet
machine (the first run overlapped other tests), 9.98 s against 12.92 s (0.77x): only the imports
and answer cells run now, not the check cells. The first version of the locked kernel, which
imported the whole course before locking it, cost 1.23x-1.46x per exercise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from vgcourse.grading import ASSIGNMENTS

ROOT = Path(__file__).resolve().parents[1]

_GRADE = """\
import json, sys, time
from vgcourse.grading.submission import grade_submission
started = time.perf_counter()
grade = grade_submission(sys.argv[1], seed=0)
print(json.dumps([time.perf_counter() - started, grade.status, grade.total, grade.max_points]))
"""


def grade_seconds(checkout: Path, exercise: str, earlier: bool) -> float:
    """Seconds the grader of ``checkout`` takes for its solution of ``exercise`` (full marks required)."""
    (solution,) = (checkout / "solutions").glob(f"{exercise}_*.ipynb")
    env = dict(os.environ)
    if earlier:
        env["PYTHONPATH"] = str(checkout)  # before the editable install of this checkout
    done = subprocess.run([sys.executable, "-c", _GRADE, str(solution)], capture_output=True, text=True,
                          env=env, cwd=checkout, check=True)
    seconds, status, total, max_points = json.loads(done.stdout.strip().splitlines()[-1])
    assert total == max_points, (checkout, exercise, status, total, max_points)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the earlier grader")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default: 3)")
    parser.add_argument("--exercises", nargs="+", default=list(ASSIGNMENTS))
    args = parser.parse_args()
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.runs):
        for exercise in args.exercises:
            for name, checkout, earlier in (("before", args.before.resolve(), True), ("now", ROOT, False)):
                times.setdefault((exercise, name), []).append(grade_seconds(checkout, exercise, earlier))
    totals = {name: 0.0 for name in ("before", "now")}
    for exercise in args.exercises:
        before, now = (statistics.median(times[exercise, name]) for name in ("before", "now"))
        totals["before"] += before
        totals["now"] += now
        print(f"{exercise}: before {before:.2f} s, now {now:.2f} s (medians of {args.runs}), ratio {now / before:.2f}")
    print(f"all: before {totals['before']:.1f} s, now {totals['now']:.1f} s, ratio {totals['now'] / totals['before']:.2f}")


if __name__ == "__main__":
    main()
