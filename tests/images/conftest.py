"""pytest setup for the image self-test (tests/images)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "images: needs the images built by tests/images/build.sh and Docker")
    config.addinivalue_line("markers", "integration: runs against real services (Docker, Orthanc, PostgreSQL)")
