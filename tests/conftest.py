"""The `browser` marker, and where the browser test left its screenshots."""


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "browser: runs JupyterLab in headless Chromium (deselect with -m 'not browser')")


def pytest_terminal_summary(terminalreporter) -> None:
    """List the screenshots that tests recorded with record_property("screenshot", path)."""
    paths = sorted({value for reports in terminalreporter.stats.values() for report in reports
                    for name, value in getattr(report, "user_properties", ()) if name == "screenshot"})
    if paths:
        terminalreporter.section("browser screenshots")
        for path in paths:
            terminalreporter.write_line(path)
