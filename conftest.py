"""Root pytest hooks: report how long each chapter notebook took under nbval."""
from collections import defaultdict

_notebook_seconds = defaultdict(float)


def pytest_runtest_logreport(report):
    if report.when == "call" and ".ipynb" in report.nodeid:
        _notebook_seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook execution times")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  total")
