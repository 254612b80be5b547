import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_modality import (
    check_aet,
    normalize_current,
    to_orthanc,
    validate_modality,
)

GOOD = {'name': 'pano', 'aet': 'PANO01', 'host': '192.0.2.20', 'port': 104, 'manufacturer': 'Generic'}


@pytest.mark.parametrize(
    ('value', 'fragment'),
    [
        ('', 'is empty'),
        ('A' * 17, '17 characters long'),
        ('PANO\\1', 'backslash'),
        ('PANO\x01', 'control characters'),
        ('PANÖ', 'printable ASCII'),
        ('   ', 'only spaces'),
    ],
)
def test_check_aet_rejects(value, fragment):
    msg = check_aet(value, 'aet')
    assert msg.startswith('aet')
    assert fragment in msg


@pytest.mark.parametrize('value', ['A', 'A' * 16, 'PANO 01', 'CT-1_x.y'])
def test_check_aet_accepts(value):
    assert check_aet(value, 'aet') is None


@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'name': 'bad name'}, "name 'bad name' is invalid"),
        ({'name': ''}, "name '' is invalid"),
        ({'port': 0}, 'port 0 is out of range: Orthanc accepts a TCP port 1-65534'),
        ({'port': 70000}, 'port 70000 is out of range'),
        ({'host': ''}, 'host is empty'),
        ({'host': '  '}, 'host is empty'),
        ({'host': 'a b'}, 'white space'),
        ({'manufacturer': 'Siemens'}, "manufacturer 'Siemens' is unknown"),
        ({'local_aet': 'B' * 17}, 'local_aet'),
        ({'timeout': -1}, 'timeout -1 is out of range: give 0 (Orthanc default) to 3600 seconds'),
        ({'aet': None}, 'aet is empty'),
    ],
)
def test_validate_modality(change, fragment):
    errors = validate_modality(dict(GOOD, **change), prefix='modalities[0].')
    assert len(errors) == 1
    assert fragment in errors[0]
    assert errors[0].startswith('modalities[0].')


def test_absent_only_checks_name():
    assert validate_modality({'name': 'x', 'state': 'absent'}) == []


def test_to_orthanc_makes_every_default_explicit():
    body = to_orthanc(dict(GOOD, allow_move=False))
    assert len(body) == 17
    assert body['AllowMove'] is False
    assert body['AllowEcho'] is True
    assert body['LocalAet'] == ''
    assert body['Timeout'] == 0
    assert body['UseDicomTls'] is False


def test_normalize_current_short_array_form():
    cur = normalize_current(['PANO01', '192.0.2.20', '104'])
    assert cur == to_orthanc(GOOD)


def test_retrieve_method_option():
    from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_modality import modality_options

    assert modality_options()['retrieve_method']['choices'] == ['SystemDefault', 'C-MOVE', 'C-GET']
    assert to_orthanc(dict(GOOD, retrieve_method='C-GET'))['RetrieveMethod'] == 'C-GET'
    assert normalize_current({'AET': 'A', 'Host': 'h', 'Port': 1})['RetrieveMethod'] == 'SystemDefault'
