"""The `browser` marker, where the browser test left its screenshots, and the grading tests that
need the kernel sandbox (bubblewrap): skipped with the reason where it is missing, required in CI."""

import functools
import os

import pytest

# Tests marked `sandbox` grade in sandboxed kernels (the grader's default). Where bubblewrap is
# missing they are skipped with the reason — or fail at collection where VGCOURSE_REQUIRE_SANDBOX=1
# (.ci/run installs bubblewrap, so there they must run).


@functools.cache
def _sandbox_problem() -> str | None:
    from vgcourse.grading.sandbox import sandbox_problem

    return sandbox_problem()


def pytest_collection_modifyitems(config, items) -> None:
    grading = [item for item in items if item.get_closest_marker("sandbox")]
    if not grading or (problem := _sandbox_problem()) is None:
        return
    if os.environ.get("VGCOURSE_REQUIRE_SANDBOX") == "1":
        raise pytest.UsageError(f"the grading tests need the kernel sandbox: {problem} "
                                "(VGCOURSE_REQUIRE_SANDBOX=1: .ci/run installs bubblewrap, so they must not skip)")
    skip = pytest.mark.skip(reason=f"the kernel sandbox does not work here: {problem}")
    for item in grading:
        item.add_marker(skip)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "browser: runs JupyterLab in headless Chromium (deselect with -m 'not browser')")
    config.addinivalue_line("markers", "sandbox: needs the grader's kernel sandbox (bubblewrap)")


def pytest_terminal_summary(terminalreporter) -> None:
    """List the screenshots that tests recorded with record_property("screenshot", path)."""
    paths = sorted({value for reports in terminalreporter.stats.values() for report in reports
                    for name, value in getattr(report, "user_properties", ()) if name == "screenshot"})
    if paths:
        terminalreporter.section("browser screenshots")
        for path in paths:
            terminalreporter.write_line(path)
