"""Fixtures of the tests against a cluster."""

from __future__ import annotations

import pytest

from tests.support.cluster import Cluster
from tests.support.datapath import DataPath, DataPathMissingError, load_data_path


@pytest.fixture(scope="session")
def data_path(cluster: Cluster) -> DataPath:
    """The proxy and the pods that run for real; fails (never skips) without them."""
    try:
        return load_data_path(cluster)
    except DataPathMissingError as err:
        pytest.fail(str(err), pytrace=False)
