"""The pacs role's ingest tuning: what it renders, and that it never renders a setting that can lose an
acknowledged instance.

Rendered by ansible-playbook on localhost (no Docker): the role's defaults and vars, the Compose template
and Orthanc's two configuration files, with the box's memory and cores given as facts. The preflight
checks run in check mode and must refuse fsync, full_page_writes or synchronous_commit turned off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "pacs"
SECRETS = dict.fromkeys(("pacs_postgres_password", "pacs_api_password", "pacs_admin_password"), "unit-test-secret-0123")
# What PostgreSQL must keep as it is: with any of these off, a crash can lose a commit it already reported.
UNSAFE = {"fsync", "full_page_writes", "synchronous_commit"}
FACTS_MODULE = """#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule

module = AnsibleModule({"memtotal_mb": {"type": "int"}, "vcpus": {"type": "int"}})
module.exit_json(ansible_facts={"memtotal_mb": module.params["memtotal_mb"],
                                "processor_vcpus": module.params["vcpus"]})
"""


def _play(tmp_path: Path, tasks: list, extra: dict, memtotal_mb: int, vcpus: int) -> subprocess.CompletedProcess:
    playbook = tmp_path / "render.yml"
    # The box's facts as the setup module returns them (a module next to the playbook: set_fact cannot).
    (tmp_path / "library").mkdir(exist_ok=True)
    (tmp_path / "library" / "box_facts.py").write_text(FACTS_MODULE)
    facts = {"memtotal_mb": memtotal_mb, "vcpus": vcpus}
    playbook.write_text(
        json.dumps(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {"inventory_hostname": "unit-box"},
                    "tasks": [
                        {"box_facts": facts},
                        {"ansible.builtin.include_vars": str(ROLE / "defaults" / "main.yml")},
                        {"ansible.builtin.include_vars": str(ROLE / "vars" / "main.yml")},
                        {"ansible.builtin.set_fact": {**SECRETS, **extra}},
                        *tasks,
                    ],
                }
            ]
        )
    )
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    cmd += ["-e", f"ansible_python_interpreter={sys.executable}"]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)


def _render(tmp_path: Path, extra: dict | None = None, memtotal_mb: int = 24000, vcpus: int = 2) -> dict:
    """The Compose file, orthanc.json and postgresql.json the role would write."""
    out = {name: tmp_path / name for name in ("compose.yml", "orthanc.json", "postgresql.json")}
    tasks = [
        {"ansible.builtin.template": {"src": str(ROLE / "templates" / "docker-compose.yml.j2"),
                                      "dest": str(out["compose.yml"]), "mode": "0600"}},
        {"ansible.builtin.copy": {"content": "{{ _pacs_orthanc_config | to_nice_json }}",
                                  "dest": str(out["orthanc.json"]), "mode": "0600"}},
        {"ansible.builtin.copy": {"content": "{{ _pacs_orthanc_postgresql_config | to_nice_json }}",
                                  "dest": str(out["postgresql.json"]), "mode": "0600"}},
    ]  # fmt: skip
    res = _play(tmp_path, tasks, extra or {}, memtotal_mb, vcpus)
    assert res.returncode == 0, res.stdout[-3000:]
    return {
        "compose": yaml.safe_load(out["compose.yml"].read_text()),
        "orthanc": json.loads(out["orthanc.json"].read_text()),
        "postgresql": json.loads(out["postgresql.json"].read_text())["PostgreSQL"],
    }


def _postgres_settings(compose: dict) -> dict:
    command = compose["services"]["postgres"]["command"]
    assert command[0] == "postgres"
    pairs = command[1:]
    assert pairs[::2] == ["-c"] * (len(pairs) // 2)
    return dict(item.split("=", 1) for item in pairs[1::2])


def _unsafe(settings: dict) -> dict:
    off = ("0", "n", "no", "of", "off", "f", "fa", "fal", "fals", "false")
    return {k: v for k, v in settings.items() if k.lower() in UNSAFE and str(v).strip().lower() in off}


def test_defaults_render_sized_settings_and_nothing_unsafe(tmp_path):
    rendered = _render(tmp_path)
    settings = _postgres_settings(rendered["compose"])
    # 24 GB box, 1g container limit: sized for min(24000 / 4, 1024) = 1024 MB.
    assert settings["shared_buffers"] == "256MB"
    assert settings["effective_cache_size"] == "768MB"
    assert settings["max_wal_size"] == "2GB"
    assert settings["max_worker_processes"] == "2"
    assert _unsafe(settings) == {}
    assert not UNSAFE & {k.lower() for k in settings}, "the role must leave durability settings at PostgreSQL's"
    assert rendered["orthanc"]["DicomThreadsCount"] == 2  # the cores, at least 2, at most 4
    assert "IndexConnectionsCount" not in rendered["postgresql"]  # the plugin's own default
    assert rendered["orthanc"]["StorageCompression"] is False


def test_small_box_is_sized_from_its_memory(tmp_path):
    rendered = _render(tmp_path, {"pacs_orthanc_index_connections": 3}, memtotal_mb=2048, vcpus=4)
    settings = _postgres_settings(rendered["compose"])
    assert settings["shared_buffers"] == "128MB"  # 2048 / 4 = 512 MB for PostgreSQL
    assert settings["max_worker_processes"] == "4"
    assert rendered["orthanc"]["DicomThreadsCount"] == 4
    assert rendered["postgresql"]["IndexConnectionsCount"] == 3


@pytest.mark.parametrize(
    "extra",
    [
        {"fsync": False},
        {"full_page_writes": "OFF"},
        {"Synchronous_Commit": " of "},
    ],
)
def test_preflight_refuses_settings_that_lose_acknowledged_instances(tmp_path, extra):
    tasks = [{"ansible.builtin.include_tasks": str(ROLE / "tasks" / "preflight.yml")}]
    res = _play(tmp_path, tasks, {"pacs_postgres_extra_settings": extra}, 24000, 2)
    assert res.returncode != 0
    name = next(iter(extra))
    assert "must not turn off fsync, full_page_writes or" in res.stdout, res.stdout[-3000:]
    assert f"{name}={extra[name]}" in res.stdout


def test_preflight_accepts_safe_extra_settings(tmp_path):
    tasks = [
        {"ansible.builtin.include_tasks": str(ROLE / "tasks" / "preflight.yml")},
    ]
    res = _play(tmp_path, tasks, {"pacs_postgres_extra_settings": {"synchronous_commit": "on", "commit_delay": 10}},
                24000, 2)  # fmt: skip
    assert "TASK [Check the tuning settings" in res.stdout
    assert res.returncode == 0, res.stdout[-3000:]
