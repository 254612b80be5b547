"""The firewall role's ruleset template and its address checks, rendered by ansible-playbook on localhost.

No Docker and no firewall change: the template is rendered into a temporary file; when `nft` can check
rules here (root with CAP_NET_ADMIN, as in CI) it is validated with `nft -c -f` inside a new network
namespace (`unshare -n`), so nothing of this machine's ruleset is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles" / "firewall"


def _render(tmp_path: Path, devices: list, **extra) -> subprocess.CompletedProcess:
    out = tmp_path / "firewall.nft"
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {"inventory_hostname": "unit-box", "pacs_devices": devices, **extra},
                    "tasks": [
                        {"ansible.builtin.include_vars": str(ROLE / "defaults" / "main.yml")},
                        {"ansible.builtin.include_vars": str(ROLE / "vars" / "main.yml")},
                        {"ansible.builtin.set_fact": extra} if extra else {"ansible.builtin.meta": "noop"},
                        {"ansible.builtin.include_tasks": str(ROLE / "tasks" / "preflight.yml")},
                        {
                            "ansible.builtin.template": {
                                "src": str(ROLE / "templates" / "firewall.nft.j2"),
                                "dest": str(out),
                                "mode": "0600",
                            }
                        },
                    ],
                }
            ]
        )
    )
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    cmd += ["-e", f"ansible_python_interpreter={sys.executable}"]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def _nft_check(path: Path) -> None:
    nft, unshare = shutil.which("nft") or "/usr/sbin/nft", shutil.which("unshare")
    if os.geteuid() != 0 or not Path(nft).exists() or not unshare:
        pytest.skip("nft -c needs root, nft and unshare")
    res = subprocess.run([unshare, "-n", nft, "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


DEVICES = [
    {"name": "pano", "aet": "PANO", "host": "192.168.10.21", "port": 104},
    {"name": "cbct", "aet": "CBCT", "host": "192.168.10.22", "port": 104, "state": "present"},
    {"name": "gone", "aet": "GONE", "host": "192.168.10.23", "port": 104, "state": "absent"},
    {"name": "v6", "aet": "V6", "host": "fd00::21", "port": 104},
]


def test_dicom_sources_are_the_registered_devices(tmp_path):
    res = _render(tmp_path, DEVICES)
    assert res.returncode == 0, res.stdout[-3000:]
    text = (tmp_path / "firewall.nft").read_text()
    assert "elements = { 192.168.10.21, 192.168.10.22 }" in text
    assert "192.168.10.23" not in text  # state: absent
    assert "elements = { fd00::21 }" in text
    assert "delete table inet clinicpacs" in text
    assert "meta l4proto tcp ct status dnat ct original proto-dst 4242 counter name dicom_dropped drop" in text
    _nft_check(tmp_path / "firewall.nft")


def test_extra_and_removed_sources(tmp_path):
    res = _render(
        tmp_path,
        DEVICES,
        firewall_dicom_extra_sources=["10.1.2.3"],
        firewall_dicom_removed_sources=["192.168.10.21"],
    )
    assert res.returncode == 0, res.stdout[-3000:]
    text = (tmp_path / "firewall.nft").read_text()
    assert "elements = { 10.1.2.3, 192.168.10.22 }" in text
    _nft_check(tmp_path / "firewall.nft")


def test_no_device_means_no_dicom_source(tmp_path):
    res = _render(tmp_path, [])
    assert res.returncode == 0, res.stdout[-3000:]
    text = (tmp_path / "firewall.nft").read_text()
    dicom4 = text.split("set dicom4 {", 1)[1].split("}", 1)[0]
    assert "elements" not in dicom4
    _nft_check(tmp_path / "firewall.nft")


def test_host_name_as_device_host_is_refused(tmp_path):
    res = _render(tmp_path, [{"name": "pano", "aet": "PANO", "host": "pano.clinic.lan", "port": 104}])
    assert res.returncode != 0
    assert "DICOM source 'pano.clinic.lan'" in res.stdout and "must be an IPv4 or IPv6 address" in res.stdout


def test_bad_network_is_refused(tmp_path):
    res = _render(tmp_path, [], firewall_ssh_sources=["the-msp"])
    assert res.returncode != 0
    assert "'the-msp' in firewall_https_sources or firewall_ssh_sources" in res.stdout


def test_dicom_only_to_the_clinic_lan_address(tmp_path):
    """pacs_dicom_address (an IPv4 address) limits DICOM to it; IPv6 DICOM is then not accepted at all."""
    res = _render(tmp_path, DEVICES, pacs_dicom_address="192.168.10.5")
    assert res.returncode == 0, res.stdout[-3000:]
    text = (tmp_path / "firewall.nft").read_text()
    assert "tcp dport 4242 ip daddr 192.168.10.5 ip saddr @dicom4 accept" in text
    assert "ct original proto-dst 4242 ct original ip daddr 192.168.10.5 ct original ip saddr @dicom4 accept" in text
    assert "ip6 saddr @dicom6 accept" not in text
    assert [line for line in text.splitlines() if "saddr @dicom4 accept" in line and "daddr" not in line] == []
    _nft_check(tmp_path / "firewall.nft")


def test_dicom_address_as_a_name_leaves_every_address(tmp_path):
    res = _render(tmp_path, DEVICES, pacs_dicom_address="pacs.clinic.lan")
    assert res.returncode == 0, res.stdout[-3000:]
    text = (tmp_path / "firewall.nft").read_text()
    assert "daddr" not in text
    assert "tcp dport 4242 ip saddr @dicom4 accept" in text and "tcp dport 4242 ip6 saddr @dicom6 accept" in text
