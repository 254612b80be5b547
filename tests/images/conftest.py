"""pytest setup for the image self-test (tests/images)."""

from collections.abc import Iterator

import pytest
from test_images import Containers


def pytest_configure(config):
    config.addinivalue_line("markers", "images: needs the images built by tests/images/build.sh and Docker")
    config.addinivalue_line("markers", "integration: runs against real services (Docker, Orthanc, PostgreSQL)")


@pytest.fixture
def boxes() -> Iterator[Containers]:
    """Containers and networks of one test, removed afterwards, also on failure."""
    c = Containers()
    try:
        yield c
    finally:
        c.cleanup()
