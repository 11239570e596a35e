"""Test-run summary: how long each notebook took to execute (nbval runs each one in a kernel)."""

from collections import defaultdict


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
    terminalreporter.section("notebook execution time (slowest first)")
    for path, total in sorted(seconds.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{total:6.1f} s  {path}")
    terminalreporter.write_line(f"{sum(seconds.values()):6.1f} s  all notebooks (summed over workers)")
