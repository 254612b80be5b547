"""Unit tests of the fast drift check's comparison, diff and health helpers (module_utils/orthanc_drift.py)."""

import datetime

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.action.orthanc_drift_info import THRESHOLDS, check_thresholds
from ansible_collections.clinicpacs.orthanc.plugins.module_utils import orthanc_drift as d
from ansible_collections.clinicpacs.orthanc.plugins.modules.orthanc_drift_info import newest_by_aet

NOW = datetime.datetime(2026, 12, 2, 3, 0, 0, tzinfo=datetime.UTC)


def device(**over):
    base = {'AET': 'CBCT1', 'Host': '10.214.0.20', 'Port': 104, 'AllowMove': False, 'AllowStore': True}
    base.update(over)
    return base


def test_device_change_reads_field_by_field():
    items = d.compare_objects('device', {'CBCT1': device(Host='10.214.0.99', AllowMove=True)}, {'CBCT1': device()})
    assert len(items) == 1
    assert items[0]['name'] == 'device:CBCT1'
    assert items[0]['detail'] == 'AllowMove: true \u2192 false, Host: 10.214.0.99 \u2192 10.214.0.20'
    assert items[0]['changes'] == [
        {'field': 'AllowMove', 'before': True, 'after': False},
        {'field': 'Host', 'before': '10.214.0.99', 'after': '10.214.0.20'},
    ]


def test_missing_rogue_and_absent_objects():
    current = {'ROGUE': device(AET='ROGUE'), 'OLD': device(AET='OLD')}
    desired = {'CBCT1': device(), 'OLD': None}
    names = {i['name']: i['detail'] for i in d.compare_objects('device', current, desired)}
    assert names == {
        'device:CBCT1': 'missing: would be created',
        'device:OLD': 'declared absent but present: would be removed',
        'device:ROGUE': 'not in the inventory: would be removed',
    }
    assert [i['name'] for i in d.compare_objects('device', current, desired, exclusive=False)] == [
        'device:CBCT1',
        'device:OLD',
    ]


def test_peer_secrets_are_never_compared_nor_shown():
    current = {'central': {'Url': 'https://a/', 'Username': 'sync'}}
    desired = {'central': {'Url': 'https://b/', 'Username': 'sync', 'Password': 'hunter2-secret'}}
    items = d.compare_objects('peer', current, desired, secret_keys=('Password',), unreadable=('Password',))
    assert items[0]['detail'] == 'Url: https://a/ \u2192 https://b/'
    assert 'hunter2' not in repr(items)
    created = d.compare_objects('peer', {}, desired, secret_keys=('Password',))
    assert 'hunter2' not in repr(created) and d.MASK in repr(created)


def test_users_compare_passwords_without_showing_them():
    items = d.compare_users(
        {'reception': 'old-pw', 'ghost': 'x'},
        [{'name': 'reception', 'password': 'new-pw'}, {'name': 'dr', 'password': 'p'}],
        exclusive=True,
    )
    assert {i['name']: i['detail'] for i in items} == {
        'user:reception': 'password differs (not shown)',
        'user:dr': 'missing: would be created',
        'user:ghost': 'not in the inventory: would be removed',
    }
    assert 'old-pw' not in repr(items) and 'new-pw' not in repr(items)


@pytest.mark.parametrize(
    'line, masked',
    [
        ('  "Password": "s3cret-value",\n', '  "Password": "********",\n'),
        ('POSTGRES_PASSWORD: s3cret-value\n', 'POSTGRES_PASSWORD: ********\n'),
        ('api_token=s3cret-value\n', 'api_token=********\n'),
        ('  "Username": "orthanc",\n', '  "Username": "orthanc",\n'),
        ('  "Password": null,\n', '  "Password": null,\n'),
    ],
)
def test_mask_text(line, masked):
    assert d.mask_text(line) == masked


def test_config_diff_is_unified_with_secrets_masked():
    before = '{\n  "Name": "A",\n  "Password": "old-secret"\n}\n'
    after = '{\n  "Name": "B",\n  "Password": "new-secret"\n}\n'
    spec = {'name': 'orthanc.json', 'content': after, 'uid': 4242, 'gid': 4242, 'mode': '0600'}
    found = d.compare_file(spec, {'exists': True, 'content': before, 'uid': 4242, 'gid': 4242, 'mode': '0644'})
    assert found['name'] == 'config:orthanc.json'
    assert found['detail'] == 'content differs; mode: 0644 \u2192 0600'
    assert found['diff'].startswith('--- orthanc.json (on the clinic)\n+++ orthanc.json (inventory)\n')
    assert '-  "Name": "A",\n+  "Name": "B",\n' in found['diff']
    assert 'old-secret' not in found['diff'] and 'new-secret' not in found['diff']


def test_secret_file_is_named_without_content():
    spec = {'name': 'postgres_password', 'content': 'new-secret', 'secret': True}
    found = d.compare_file(spec, {'exists': True, 'content': 'old-secret'})
    assert found['diff'] is None and 'not shown' in found['detail']
    assert 'secret' not in repr({k: v for k, v in found.items() if k != 'detail'})
    assert d.compare_file(spec, {'exists': True, 'content': 'new-secret'}) is None
    assert d.compare_file(spec, {'exists': False})['detail'] == 'missing: would be written'


def test_containers():
    specs = [{'service': 'orthanc', 'image': 'o:2'}, {'service': 'nginx', 'image': 'n:1'}]
    found = {'orthanc': {'Config': {'Image': 'o:1'}, 'State': {'Running': False, 'Status': 'exited'}}}
    assert {i['name']: i['detail'] for i in d.compare_containers(specs, found)} == {
        'image:orthanc': 'image: o:1 \u2192 o:2',
        'container:orthanc': 'not running (exited)',
        'container:nginx': 'missing',
    }


def health(**raw):
    base = {'devices': [], 'last_received': {}, 'certificates': [], 'containers': {}, 'disk': {}}
    base.update(raw)
    base.setdefault('backup', {'dir': '/b', 'newest': '20261202T010000Z'})
    return base


def by_name(items):
    return {i['name']: i['severity'] for i in items}


def test_disk_use_and_days_until_full_from_history():
    gib = 2**30
    raw = health(disk={'path': '/srv', 'total': 100 * gib, 'used': 50 * gib, 'free': 50 * gib})
    assert by_name(d.evaluate_health(raw, THRESHOLDS, [], NOW, '1.13.0'))['health:disk'] == 'ok'
    # 10 GiB more in one day: 5 days left -> critical (7), although only half full.
    history = [{'time': '2026-12-01T03:00:00Z', 'disk_used': 40 * gib}]
    items = d.evaluate_health(raw, THRESHOLDS, history, NOW, '1.13.0')
    disk = next(i for i in items if i['name'] == 'health:disk')
    assert disk['severity'] == 'critical' and disk['value']['days_until_full'] == 5.0
    full = health(disk={'path': '/srv', 'total': 100, 'used': 95, 'free': 5})
    assert by_name(d.evaluate_health(full, THRESHOLDS, [], NOW, '1.13.0'))['health:disk'] == 'critical'
    warn = health(disk={'path': '/srv', 'total': 100, 'used': 85, 'free': 15})
    assert by_name(d.evaluate_health(warn, THRESHOLDS, [], NOW, '1.13.0'))['health:disk'] == 'warning'


def test_silent_devices_use_the_history():
    raw = health(devices=['CBCT1', 'PANO1', 'NEW1'], last_received={'CBCT1': '20261202T020000'})
    history = [{'time': '2026-11-20T00:00:00Z', 'last_received': {'PANO1': '20261120T000000'}}]
    sev = by_name(d.evaluate_health(raw, THRESHOLDS, history, NOW, '1.13.0'))
    assert sev == {
        'health:device:CBCT1': 'ok',
        'health:device:PANO1': 'warning',
        'health:device:NEW1': 'warning',
        'health:backup': 'ok',
    }


def test_certificates_backup_version_and_restarts():
    raw = health(
        certificates=[
            {'path': '/tls/ca.crt', 'not_after': '2036-12-01T00:00:00Z'},
            {'path': '/tls/server.crt', 'not_after': '2026-12-20T00:00:00Z'},
            {'path': '/tls/dicom.crt', 'not_after': '2026-12-05T00:00:00Z'},
        ],
        backup={'dir': '/b', 'newest': '20261128T000000Z'},
        orthanc_version='1.12.7',
        containers={'orthanc': {'restart_count': 9}, 'nginx': {'restart_count': 0, 'restarting': True}},
    )
    history = [{'time': '2026-12-01T03:00:00Z', 'restarts': {'orthanc': 7, 'nginx': 0}}]
    sev = by_name(d.evaluate_health(raw, THRESHOLDS, history, NOW, '1.13.0'))
    assert sev == {
        'health:certificate:/tls/ca.crt': 'ok',
        'health:certificate:/tls/server.crt': 'warning',
        'health:certificate:/tls/dicom.crt': 'critical',
        'health:backup': 'critical',
        'health:orthanc_version': 'critical',
        'health:container:nginx': 'critical',
        'health:container:orthanc': 'warning',
    }
    allowed = by_name(d.evaluate_health(raw, THRESHOLDS, history, NOW, '1.13.0', allow_below_minimum=True))
    assert allowed['health:orthanc_version'] == 'warning'
    none = by_name(d.evaluate_health(health(backup={'dir': '/b', 'newest': None}), THRESHOLDS, [], NOW, '1.13.0'))
    assert none['health:backup'] == 'warning'  # a new clinic: no backup yet
    assert [d.age_text(s) for s in (None, 59, 2400, 7200, 172800)] == ['never', '0m', '40m', '2h', '2d']


def test_thresholds_are_checked():
    assert check_thresholds({'disk_used_warning_percent': 70})['disk_used_warning_percent'] == 70
    assert check_thresholds({'device_silent_warning_days': None})['device_silent_warning_days'] is None
    with pytest.raises(Exception, match="unknown key 'disk_full'"):
        check_thresholds({'disk_full': 1})
    with pytest.raises(Exception, match="disk_used_warning_percent is 'eighty'"):
        check_thresholds({'disk_used_warning_percent': 'eighty'})


def test_newest_reception_per_calling_aet():
    entries = [
        {'Metadata': {'RemoteAET': 'CBCT1', 'ReceptionDate': '20261201T100000'}},
        {'Metadata': {'RemoteAET': 'CBCT1', 'ReceptionDate': '20261202T010000'}},
        {'Metadata': {'RemoteAET': 'PANO1', 'ReceptionDate': '20261130T090000'}},
        {'Metadata': {'Origin': 'RestApi', 'ReceptionDate': '20261202T020000'}},
    ]
    assert newest_by_aet(entries) == {'CBCT1': '20261202T010000', 'PANO1': '20261130T090000'}
