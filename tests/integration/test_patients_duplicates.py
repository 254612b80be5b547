"""orthanc_patient_duplicates_info and playbooks/duplicates_report.yml on a real Orthanc holding every sample."""

import json
import stat

import pytest
import requests
import yaml

from .conftest import run_ansible
from .patients_util import clear, load_samples, run_playbook, task_results

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def samples(stack):
    count = load_samples(stack)
    yield count
    clear(stack)


def test_info_finds_brainix_and_reports_the_collision(stack, samples):
    res = run_ansible('orthanc_patient_duplicates_info', {'page_size': 10}, stack, check=True)
    assert res['_rc'] == 0, res
    assert res['changed'] is False
    groups = [g['patient_ids'] for g in res['groups']]
    assert ['5Yp0E', 'FromGDCM'] in groups, res['groups']
    assert len(groups) == 1, res['groups']
    collisions = {c['patient_id']: c for c in res['collisions']}
    assert 'COMMON' in collisions and collisions['COMMON']['kind'] == 'id_collision'
    assert sorted(collisions['COMMON']['names']) == ['FOO', 'HELLO', 'WORLD']
    assert all('COMMON' not in g for g in groups)
    assert res['patients']['FromGDCM']['studies'] == 3
    stats = stack.get('/statistics').json()
    assert res['stats']['studies'] == stats['CountStudies']
    assert res['stats']['patients'] == stats['CountPatients']
    # paged reads: one GET per page of 10 studies plus the empty page that ends the paging, and GET /system
    assert res['orthanc_requests'] == {'GET': 1 + -(-stats['CountStudies'] // 10) + 1}


def test_info_find_api_gives_the_same_answer(stack, samples):
    by_studies = run_ansible('orthanc_patient_duplicates_info', {}, stack)
    by_find = run_ansible('orthanc_patient_duplicates_info', {'read_api': 'find', 'page_size': 7}, stack)
    assert by_find['_rc'] == 0, by_find
    for key in ('groups', 'collisions', 'ambiguous', 'shared_study_uids', 'patients'):
        assert by_find[key] == by_studies[key], key
    assert by_find['orthanc_requests'] == {'GET': 1, 'POST': -(-by_find['stats']['studies'] // 7) + 1}


def test_info_options(stack, samples):
    res = run_ansible('orthanc_patient_duplicates_info', {'threshold': 1.0, 'include_patients': False}, stack)
    assert res['_rc'] == 0 and 'patients' not in res
    assert res['threshold'] == 1.0
    res = run_ansible('orthanc_patient_duplicates_info', {'fields': ['birth_date']}, stack)
    assert res['_rc'] != 0 and "must include 'name'" in res['msg']
    res = run_ansible('orthanc_patient_duplicates_info', {'matching': {'no_such_option': 1}}, stack)
    assert res['_rc'] != 0 and "unknown matching option 'no_such_option'" in res['msg']


def test_report_playbook_writes_escaped_reports(stack, samples, tmp_path):
    report_dir = tmp_path / 'reports'
    rc, out = run_playbook(
        'duplicates_report',
        stack,
        {
            'duplicates_report_dir': str(report_dir),
            'duplicates_api_url': stack.url,
            'duplicates_api_username': stack.auth[0],
            'duplicates_api_password': stack.auth[1],
        },
    )
    assert rc == 0, json.dumps(out)[:3000]
    assert out['stats']['localhost']['failures'] == 0
    clinic = report_dir / 'localhost'
    assert stat.S_IMODE(clinic.stat().st_mode) == 0o700
    for name in ('duplicates.json', 'duplicates.html', 'merge-proposals.yml'):
        assert stat.S_IMODE((clinic / name).stat().st_mode) == 0o600, name
    report = json.loads((clinic / 'duplicates.json').read_text())
    assert report['clinic'] == 'localhost'
    assert [g['patient_ids'] for g in report['groups']] == [['5Yp0E', 'FromGDCM']]
    assert 'COMMON' in [c['patient_id'] for c in report['collisions']]
    html = (clinic / 'duplicates.html').read_text()
    # The <script> sample is in no group here: test_report_escapes_markup_of_a_grouped_patient shows a name.
    assert '<script' not in html.lower()
    assert 'FromGDCM' in html and 'COMMON' in html
    # why the group was formed: each pair with the fields that agreed
    assert '<th>Why</th>' in html and '<li>same birth date</li>' in html
    proposals = yaml.safe_load((clinic / 'merge-proposals.yml').read_text())
    assert proposals['merges'] == [
        {'target': 'FromGDCM', 'patient_ids': ['5Yp0E', 'FromGDCM'], 'score': 1.0, 'approved': False, 'force': False}
    ]
    summary = task_results(out, 'Summary')
    assert '1 group(s)' in summary['msg']


MARKUP_NAME = '<script>alert("report")</script>^<b>Mallory</b>'


def test_report_escapes_markup_of_a_grouped_patient(stack, samples, tmp_path):
    """The sample's <script> patient is in no group, so the report above never shows its name. Two patients
    with markup in their name, same birth date and sex, under two PatientIDs do form a group: the HTML must
    show the names as text."""
    created = []
    for patient_id in ('XSS-A', 'XSS-B'):
        tags = {
            'PatientID': patient_id,
            'PatientName': MARKUP_NAME,
            'PatientBirthDate': '19800101',
            'PatientSex': 'F',
            'StudyDescription': 'markup in the patient name',
        }
        response = requests.post(stack.url + '/tools/create-dicom', json={'Tags': tags}, auth=stack.auth, timeout=60)
        assert response.status_code == 200, response.text
        created.append(response.json()['ParentPatient'])
    try:
        report_dir = tmp_path / 'reports'
        rc, out = run_playbook(
            'duplicates_report',
            stack,
            {
                'duplicates_report_dir': str(report_dir),
                'duplicates_api_url': stack.url,
                'duplicates_api_username': stack.auth[0],
                'duplicates_api_password': stack.auth[1],
            },
        )
        assert rc == 0, json.dumps(out)[:3000]
        report = json.loads((report_dir / 'localhost' / 'duplicates.json').read_text())
        assert ['XSS-A', 'XSS-B'] in [g['patient_ids'] for g in report['groups']], report['groups']
        html = (report_dir / 'localhost' / 'duplicates.html').read_text()
        assert '&lt;script&gt;alert(' in html and '&lt;b&gt;Mallory&lt;/b&gt;' in html
        assert '<script' not in html.lower() and '<b>' not in html.lower()
    finally:
        for orthanc_id in created:
            requests.delete(stack.url + f'/patients/{orthanc_id}', auth=stack.auth, timeout=60)
