"""testinfra checks of the smoke box: python3, systemd running, the converge result."""


def test_python3_present(host):
    assert host.exists("python3")
    assert host.run("python3 -c 'import sys; print(sys.version_info.major)'").stdout.strip() == "3"


def test_systemd_running(host):
    result = host.run("systemctl is-system-running")
    assert result.stdout.strip() == "running", result.stdout + result.stderr
    assert host.process.get(pid=1).comm == "systemd"


def test_marker_written(host):
    marker = host.file("/etc/clinicpacs-smoke")
    assert marker.is_file
    assert marker.mode == 0o644
    assert marker.content_string == "converged by molecule smoke\n"
