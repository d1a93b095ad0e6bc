"""Fixtures of the tests against a cluster.

Tests that use `data_path` are marked `datapath`: on the local control plane they need the
private network namespace of tools/netns.py, so `make test` runs them in a session of
their own inside it (`-m datapath`), and every other test outside it (`-m "not datapath"`).
"""

from __future__ import annotations

import pytest

from tests.support.cluster import Cluster
from tests.support.datapath import DataPath, DataPathMissingError, load_data_path
from tests.support.proxytraffic import TALLY


@pytest.fixture(scope="session")
def data_path(cluster: Cluster) -> DataPath:
    """The proxy and the pods that run for real; fails (never skips) without them."""
    try:
        return load_data_path(cluster)
    except DataPathMissingError as err:
        pytest.fail(str(err), pytrace=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "data_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.datapath)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.lines:
        return
    terminalreporter.section("real traffic through the data path")
    for line in TALLY.lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"{TALLY.requests} requests sent, {TALLY.failed} failed")
