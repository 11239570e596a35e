"""Test-run header and summary: the CPU kernel level and thread count the run used (both change
float rounding; see `make test-matrix`), and how long each notebook took to execute. Progress bars
are switched off for the whole run."""

import os
from collections import defaultdict

# No progress bars in the notebooks nbval runs (their kernels inherit this environment):
# `training.epoch_bar` leaves the choice to tqdm, which reads TQDM_DISABLE.
os.environ.setdefault("TQDM_DISABLE", "1")


def _machine() -> str:
    import torch

    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    return (f"torch CPU kernels {torch.backends.cpu.get_cpu_capability()}"
            f"{' (forced by ATEN_CPU_CAPABILITY)' if forced else ''}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def pytest_report_header(config) -> str:
    """The kernel level and thread count the notebooks' kernels inherit."""
    return _machine()


def pytest_terminal_summary(terminalreporter) -> None:
    """Print every notebook's execution time (setup + cells), slowest first, and their total."""
    seconds: dict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            path = getattr(report, "nodeid", "").split("::")[0]
            if path.endswith(".ipynb") and hasattr(report, "duration"):
                seconds[path] += report.duration
    if not seconds:
        return
    terminalreporter.section(f"notebook execution time (slowest first; {_machine()})")
    for path, total in sorted(seconds.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{total:6.1f} s  {path}")
    terminalreporter.write_line(f"{sum(seconds.values()):6.1f} s  all notebooks (summed over workers)")
