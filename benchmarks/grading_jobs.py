"""How much does ``vgcourse grade --jobs N`` save on a class? A class of 30, graded with 1 and N jobs.

The class is exercise 01 handed in 30 times (half the completed solution, half untouched), one
folder per student as instructors collect them. Each submission runs in its own kernel either
way; ``--jobs`` runs several gradings at once, each in its own grader process.

    python benchmarks/grading_jobs.py [--students 30] [--jobs 2]

Measured 2026-12-02 on the 2-core machine (AVX512, idle), 30 students: --jobs 1 67.3 s (2.24 s
per submission), --jobs 2 40.6 s (1.35 s): 1.66x faster.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from vgcourse.grading.batch import grade_submissions

ROOT = Path(__file__).resolve().parents[1]


def make_class(folder: Path, students: int) -> list[Path]:
    """``students`` submissions of exercise 01 in ``folder/<student>/01_derivative_bounds.ipynb``."""
    paths = []
    for number in range(students):
        source = ROOT / ("solutions" if number % 2 == 0 else "exercises") / "01_derivative_bounds.ipynb"
        target = folder / f"student{number:02d}" / source.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
        paths.append(target)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    print(f"{args.students} submissions of exercise 01, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        paths = make_class(Path(folder), args.students)
        seconds = {}
        for jobs in (1, args.jobs):
            start = time.perf_counter()
            grades = grade_submissions(paths, assignment="01", jobs=jobs, progress=False)
            seconds[jobs] = time.perf_counter() - start
            statuses = sorted({g.status for g in grades})
            print(f"--jobs {jobs}: {seconds[jobs]:6.1f} s ({seconds[jobs] / len(paths):.2f} s per submission; statuses {statuses})")
        print(f"speed-up with --jobs {args.jobs}: {seconds[1] / seconds[args.jobs]:.2f}x")


if __name__ == "__main__":
    main()
