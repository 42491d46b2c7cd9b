"""Report the smoke test's timings at the end of the run, even when it passes."""

import pytest

TIMINGS = "timings"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every test's recorded timings in their own section."""
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport) and report.when == "call"
        for name, value in report.user_properties
        if name == TIMINGS
    ]
    if lines:
        terminalreporter.section("timings")
        for line in lines:
            terminalreporter.write_line(line)
