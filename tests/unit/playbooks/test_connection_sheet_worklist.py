"""The worklist part of the connection sheets: present only for a worklist clinic and a device allowed to query."""

from pathlib import Path

import jinja2
import pytest

TEMPLATES = Path(__file__).resolve().parents[3] / 'playbooks' / 'templates'
SHEET = {
    'removed': False,
    'clinic': 'Smile Dental',
    'clinic_host': 'clinic-a',
    'pacs_aet': 'ORTHANC',
    'pacs_address': '192.0.2.10',
    'pacs_port': 4242,
    'pacs_web': 'https://pacs/',
    'tls': True,
    'device_name': 'pano',
    'device_aet': 'PANO01',
    'device_host': '192.0.2.20',
    'device_port': 104,
    'device_type': 'panoramic X-ray',
    'device_vendor': '',
    'device_model': '',
    'device_location': '',
    'support': '',
    'may_query': True,
    'may_retrieve': True,
}


def render(fmt, **variables):
    # Ansible's template module renders with trim_blocks on.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, autoescape=False)  # noqa: S701 (Markdown; the templates escape with | e)
    env.filters['bool'] = bool  # Ansible's filter, for the real booleans given here
    return env.get_template(f'connection-sheet.{fmt}.j2').render(sheet=SHEET, ansible_managed='managed', **variables)


@pytest.mark.parametrize('fmt', ['md', 'html'])
def test_worklist_settings_for_a_worklist_clinic(fmt):
    text = render(fmt, pacs_worklist_enabled=True, device={'name': 'pano', 'aet': 'PANO01'})
    assert 'Modality worklist (the device picks today' in text
    assert 'PANO01' in text.split('Modality worklist')[1] and 'yes, as for sending images' in text
    if fmt == 'md':
        assert "own entries.\n\nThe AE titles" in text


@pytest.mark.parametrize('fmt', ['md', 'html'])
def test_no_worklist_section_otherwise(fmt):
    plain = render(fmt, device={'name': 'pano'})
    assert 'worklist' not in plain.lower()
    denied = render(fmt, pacs_worklist_enabled=True, device={'name': 'pano', 'allow_find_worklist': False})
    assert denied == plain
