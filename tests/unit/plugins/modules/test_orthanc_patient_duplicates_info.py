import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OrthancClient
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_patients import find_body, version_tuple
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_patient_duplicates_info as info

from ..orthanc_fake import run_module
from .patients_fake import PatientsFake, install_patients


@pytest.fixture
def fake(monkeypatch):
    f = PatientsFake()
    install_patients(monkeypatch, f)
    f.add_study('5Yp0E', '1.1', 'BRAINIX', '19490301', '', date='20061201', sops=22)
    for n in range(3):
        f.add_study('FromGDCM', f'1.2.{n}', 'BRAINIX', '19490301', '0000', date='20061201')
    for n, name in enumerate(['HELLO', 'WORLD', 'FOO']):
        f.add_study('COMMON', f'1.3.{n}', name)
    f.add_study('P1', '1.4', 'Smith^John', '19800101', 'M', date='20200101')
    f.add_study('P2', '1.5', 'SMITH^JOHN', '19800101', 'M', others='P1', date='20230101')
    f.add_study('P2', '1.6', 'Smith^John', '19800101', 'M', others='P1', date='20240101')
    f.add_study('P3', '1.7', 'Doe^Jane', '19700101', 'F')
    return f


@pytest.mark.parametrize('check_mode', [False, True])
def test_groups_collisions_and_paging(fake, capsys, check_mode):
    failed, res = run_module(info, {'page_size': 4, '_ansible_check_mode': check_mode}, capsys)
    assert not failed, res
    assert res['changed'] is False
    assert sorted(g['patient_ids'] for g in res['groups']) == [['5Yp0E', 'FromGDCM'], ['P1', 'P2']]
    by_ids = {tuple(g['patient_ids']): g for g in res['groups']}
    assert by_ids[('5Yp0E', 'FromGDCM')]['suggested_target'] == 'FromGDCM'  # three studies against one
    assert by_ids[('P1', 'P2')]['suggested_target'] == 'P2'
    assert [c['patient_id'] for c in res['collisions']] == ['COMMON']
    assert res['collisions'][0]['kind'] == 'id_collision'
    assert res['stats']['studies'] == 11 and res['stats']['patients'] == 6
    # 11 studies, 4 per page: 3 pages and the empty one that ends the paging; no other request
    assert res['orthanc_requests'] == {'GET': 5}
    assert [c[1] for c in fake.calls if c[1].startswith('/studies')] == [
        f'/studies?expand&since={since}&limit=4' for since in (0, 4, 8, 11)
    ]
    assert res['stats']['pages'] == 4
    assert fake.writes == []
    assert set(res['patients']) == {'5Yp0E', 'FromGDCM', 'COMMON', 'P1', 'P2'}
    assert res['patients']['P2']['studies'] == 2
    assert res['patients']['P2']['other_patient_ids'] == ['P1']
    assert sorted(res['patients']['COMMON']['names']) == ['FOO', 'HELLO', 'WORLD']
    assert res['patients']['FromGDCM']['orthanc_id'] == '8039d221-63570985-1fa2b171-2bb77e4f-4467b83b'


def test_find_api_pages_with_since_and_limit(fake, capsys):
    failed, res = run_module(info, {'read_api': 'find', 'page_size': 5}, capsys)
    assert not failed, res
    assert sorted(g['patient_ids'] for g in res['groups']) == [['5Yp0E', 'FromGDCM'], ['P1', 'P2']]
    assert res['orthanc_requests'] == {'GET': 1, 'POST': 4}
    assert [c[2]['Since'] for c in fake.calls if c[1] == '/tools/find'] == [0, 5, 10, 11]


def test_find_requests_only_main_tags_and_small_answers(fake, capsys):
    run_module(info, {'read_api': 'find'}, capsys)
    body = next(c[2] for c in fake.calls if c[1] == '/tools/find')
    assert body == {
        'Level': 'Study',
        'Expand': True,
        'Query': {},
        'Since': 0,
        'Limit': 1000,
        'ResponseContent': ['MainDicomTags', 'Parent'],
    }


def test_old_orthanc_gets_no_response_content():
    assert 'ResponseContent' not in find_body('Study', 0, 10, '1.12.4')
    assert 'ResponseContent' in find_body('Study', 0, 10, 'mainline')
    assert version_tuple('1.12') == (1, 12, 0)


def test_threshold_fields_and_no_patients(fake, capsys):
    failed, res = run_module(info, {'threshold': 0.99, 'fields': ['name'], 'include_patients': False}, capsys)
    assert not failed, res
    assert res['groups'] == [] and res['threshold'] == 0.99
    assert 'patients' not in res


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        ({'page_size': 0}, 'page_size 0 must be at least 1'),
        ({'threshold': 1.5}, 'threshold 1.5 must be greater than 0 and at most 1'),
        ({'fields': ['birth_date']}, "must include 'name'"),
        ({'matching': {'bogus': 1}}, "unknown matching option 'bogus'"),
    ],
)
def test_bad_options_fail_before_reading(fake, capsys, args, message):
    failed, res = run_module(info, args, capsys)
    assert failed and message in res['msg'], res
    assert fake.calls == []


def test_empty_orthanc(monkeypatch, capsys):
    f = PatientsFake()
    install_patients(monkeypatch, f)
    failed, res = run_module(info, {}, capsys)
    assert not failed and res['groups'] == [] and res['stats']['studies'] == 0
    assert res['orthanc_requests'] == {'GET': 2}


def test_orthanc_error_is_reported(fake, capsys, monkeypatch):
    def broken(client, method, url, data, headers):
        return 500, b'{"Message": "Internal error", "HttpError": "Internal Server Error"}'

    monkeypatch.setattr(OrthancClient, '_transport', broken)
    failed, res = run_module(info, {}, capsys)
    assert failed and 'HTTP 500' in res['msg'] and res['orthanc_requests'] == {'GET': 1}


# -- issue 15, item 9 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ('matching', 'message'),
    [
        ({'weights': 'abc'}, "weights 'abc' is not a dictionary: give {name: number} with names among"),
        ({'weights': {'name': 'x'}}, "weights.name 'x' is not a number: give a number from 0.0 to 1.0"),
        ({'weights': {'name': 2}}, 'weights.name 2 is out of range: give a number from 0.0 to 1.0'),
        ({'weights': {'name': True}}, 'weights.name True is not a number'),
        ({'window': 'abc'}, "window 'abc' is not an integer: give an integer from 1 to 100000"),
        ({'max_block_size': 0}, 'max_block_size 0 is out of range: give an integer from 2 to 100000'),
        ({'family_min': -0.1}, 'family_min -0.1 is out of range: give a number from 0.0 to 1.0'),
        ({'placeholder_dates': '19000101'}, "placeholder_dates '19000101' is not a list of strings"),
    ],
)
def test_matching_options_fail_in_one_line_before_reading(fake, capsys, matching, message):
    failed, res = run_module(info, {'matching': matching}, capsys)
    assert failed
    assert res['msg'].startswith('invalid matching options: ' + message), res['msg']
    assert '\n' not in res['msg'] and 'exception' not in res
    assert fake.calls == []
