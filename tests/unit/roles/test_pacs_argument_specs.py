"""The pacs role's argument spec takes what its documentation and defaults promise.

Validated with ansible-core's own ArgumentSpecValidator, the one role argument validation uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLE = Path(__file__).resolve().parents[3] / "roles" / "pacs"
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
LEVEL_ENDINGS = ("warning", "critical", "percent", "days", "hours")
THRESHOLDS = sorted(name for name in SPEC if name.startswith("pacs_health_") and name.endswith(LEVEL_ENDINGS))
SECRETS = dict.fromkeys(("pacs_postgres_password", "pacs_api_password", "pacs_admin_password"), "x" * 16)


def _errors(**provided) -> list[str]:
    spec = {name: SPEC[name] | {"description": None} for name in [*provided, *SECRETS]}
    for entry in spec.values():
        entry.pop("description")
    return [str(error) for error in ArgumentSpecValidator(spec).validate({**SECRETS, **provided}).errors]


def test_every_health_level_is_found():
    assert len(THRESHOLDS) == 12, THRESHOLDS


@pytest.mark.parametrize("name", THRESHOLDS)
def test_health_level_null_turns_it_off(name):
    """Documented "null: off" (the fleet scenario sets the critical disk level to null)."""
    assert _errors(**{name: None}) == []


@pytest.mark.parametrize("name", THRESHOLDS)
def test_health_level_default_matches_defaults_file(name):
    """No "default:" in the spec (it would refuse null), so defaults/main.yml is the one source: a number or
    null, and the description names it."""
    assert "default" not in SPEC[name], name
    value = DEFAULTS[name]
    assert value is None or isinstance(value, (int, float)), (name, value)
    assert _errors(**{name: value}) == []
    assert f"Default {value if value is not None else 'null'}" in SPEC[name]["description"], name
