"""Hostile inputs, second round (issue 15): other inputs of the kinds of the first round (test_bad_inputs.py).

Every run here must fail (or, where marked, succeed) with one line and no traceback, write nothing that it
should not, and print no secret even with -vvv. The small servers are on 127.0.0.1 and started here: answers
that are not Orthanc's, a redirect to another server, a proxy in front of the real Orthanc that drops the
connection or stalls on one write.
"""

import http.server
import json
import os
import stat
import threading
import time
from typing import ClassVar

import pytest
import requests

from .conftest import run_ansible
from .test_bad_inputs import BASELINE, _serve

pytestmark = pytest.mark.integration

SECRET = 'Round2-Secret-Value'


def _output(res):
    return res['_stdout'] + res['_stderr']


def _one_line_failure(res):
    assert res.get('failed') is True, res
    assert '\n' not in res['msg'], res['msg']
    assert 'Traceback' not in _output(res), _output(res)[-3000:]


@pytest.fixture(scope='module')
def baseline(stack):
    res = run_ansible('orthanc_modality', BASELINE, stack)
    assert not res.get('failed'), res
    yield stack.modalities()
    run_ansible('orthanc_modality', {'name': 'pano', 'state': 'absent'}, stack)


# -- 200 answers that are not Orthanc's --------------------------------------------------------------------------
class _Odd(http.server.BaseHTTPRequestHandler):
    """Answers every GET 200 with ``payload``; records every request."""

    payload = b''
    content_type = 'application/json'
    seen: ClassVar[list] = []

    def do_GET(self):
        self.seen.append(('GET', self.path))
        self.send_response(200)
        self.send_header('Content-Type', self.content_type)
        self.send_header('Content-Length', str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def _write(self):
        self.seen.append((self.command, self.path))
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_PUT = do_POST = do_DELETE = _write

    def log_message(self, *args):
        pass


ODD_ANSWERS = {
    'json-array': b'["pano", "central"]',
    'json-null': b'null',
    'empty-body': b'',
    'json-number': b'42',
}


MERGE = {'target_patient_id': 'a' * 44, 'patient_ids': ['b' * 44]}
# Each answer against a module that reads an object there; together they cover the four modules the first round
# did not (orthanc_modalities, orthanc_info's /system, the duplicates and merge modules).
ODD_RUNS = [
    ('json-array', 'orthanc_modalities', {'modalities': [dict(BASELINE, port=2222)]}, 'Orthanc 1.5 or later'),
    ('json-null', 'orthanc_info', {'gather': []}, 'not an Orthanc REST API'),
    ('empty-body', 'orthanc_patient_duplicates_info', {}, 'not an Orthanc REST API'),
    ('json-number', 'orthanc_patient_merge', MERGE, 'not an Orthanc REST API'),
]


@pytest.mark.parametrize(('answer', 'module', 'args', 'fragment'), ODD_RUNS, ids=[f'{r[0]}-{r[1]}' for r in ODD_RUNS])
def test_odd_200_answers_fail_in_one_line_and_write_nothing(stack, answer, module, args, fragment):
    handler = type('Handler', (_Odd,), {'payload': ODD_ANSWERS[answer], 'seen': []})
    server = _serve(handler)
    try:
        res = run_ansible(
            module, dict(args, api_url=f'http://127.0.0.1:{server.server_address[1]}', api_retries=0), stack
        )
    finally:
        server.shutdown()
    _one_line_failure(res)
    assert fragment in res['msg'], res['msg']
    assert [m for m, _p in handler.seen if m != 'GET'] == []


# -- connection options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'api_timeout': 10**12}, 'is out of range: give 1 to 3600 seconds'),
        ({'api_url': 'http://[::1'}, 'is not a valid URL'),
        ({'api_url': 'http://127.0.0.1:8042/?token=' + SECRET}, 'has a query or fragment'),
        ({'api_url': f'http://ansible:{SECRET}%40x@127.0.0.1:8042'}, 'contains a user name or password'),
        ({'api_url': 'https://127.0.0.1:1', 'ca_path': '/nonexistent/ca.pem'}, 'cannot load ca_path'),
    ],
    ids=['timeout-huge', 'url-broken-ipv6', 'url-query-secret', 'url-encoded-password', 'ca-path-missing'],
)  # fmt: skip
def test_connection_options_are_checked(stack, baseline, change, fragment):
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, **change), stack, verbose=True)
    _one_line_failure(res)
    assert fragment in res['msg'], res['msg']
    assert SECRET not in _output(res)
    assert stack.modalities() == baseline


def test_credentials_in_orthanc_url_environment_are_never_printed(stack, baseline):
    """The api_url fallback (ORTHANC_URL) with the real password in it: refused, shown nowhere with -vvv."""
    user, password = stack.auth
    url = stack.url.replace('://', f'://{user}:{password}@', 1)
    res = run_ansible(
        'orthanc_modality', dict(BASELINE, port=2222), stack, verbose=True, env_extra={'ORTHANC_URL': url}
    )
    _one_line_failure(res)
    assert 'contains a user name or password' in res['msg']
    assert password not in _output(res)
    assert stack.modalities() == baseline


# -- redirects ---------------------------------------------------------------------------------------------------
@pytest.fixture
def redirect_servers():
    """A server that redirects every request to a second server (another port), which records headers."""

    class Target(http.server.BaseHTTPRequestHandler):
        seen: ClassVar[list] = []

        def do_GET(self):
            self.seen.append((self.path, self.headers.get('Authorization')))
            payload = json.dumps({'Version': '1.13.0', 'ApiVersion': 27}).encode()
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    target = _serve(Target)

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header('Location', f'http://127.0.0.1:{target.server_address[1]}{self.path}')
            self.send_header('Content-Length', '0')
            self.end_headers()

        def log_message(self, *args):
            pass

    source = _serve(Redirect)
    yield f'http://127.0.0.1:{source.server_address[1]}', Target
    source.shutdown()
    target.shutdown()


def test_redirect_to_another_server_is_refused_and_gets_no_credentials(stack, redirect_servers):
    """urllib sent the Authorization header (api_username:api_password) to whatever host a redirect named."""
    url, target = redirect_servers
    res = run_ansible('orthanc_info', {'api_url': url, 'api_password': SECRET, 'gather': []}, stack, verbose=True)
    _one_line_failure(res)
    assert 'a redirect to another server' in res['msg'] and 'credentials are sent only to api_url' in res['msg']
    assert target.seen == []
    assert SECRET not in _output(res)


# -- failures after partial writes -------------------------------------------------------------------------------
@pytest.fixture
def faulty_proxy(stack):
    """Forwards to the real Orthanc; the PUT of modality 'it2-second' is dropped (connection closed) or stalls."""

    class Proxy(http.server.BaseHTTPRequestHandler):
        mode = 'drop'

        def _forward(self):
            length = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(length) if length else None
            if self.command == 'PUT' and self.path == '/modalities/it2-second':
                if self.mode == 'stall':
                    time.sleep(4)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() in ('authorization', 'content-type')}
            answer = requests.request(self.command, stack.url + self.path, data=body, headers=headers, timeout=10)
            self.send_response(answer.status_code)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_PUT = do_POST = do_DELETE = _forward

        def log_message(self, *args):
            pass

    server = _serve(Proxy)
    yield f'http://127.0.0.1:{server.server_address[1]}', Proxy
    server.shutdown()


@pytest.mark.parametrize('mode', ['drop', 'stall'])
def test_connection_lost_after_real_writes_reports_changed(stack, baseline, faulty_proxy, mode):
    url, proxy = faulty_proxy
    proxy.mode = mode
    items = [dict(BASELINE, name=f'it2-{n}', port=3100 + i) for i, n in enumerate(('first', 'second', 'third'))]
    try:
        args = {'modalities': items, 'api_url': url, 'api_timeout': 2, 'api_retries': 0}
        res = run_ansible('orthanc_modalities', args, stack)
        _one_line_failure(res)
        assert res['changed'] is True
        assert [(d['action'], d['name']) for d in res['done']] == [('create', 'it2-first')]
        assert 'create of it2-second failed after 1 earlier change(s) (create it2-first, already made)' in res['msg']
        current = stack.modalities()
        assert 'it2-first' in current and 'it2-third' not in current
    finally:
        for name in ('it2-first', 'it2-second', 'it2-third'):
            run_ansible('orthanc_modality', {'name': name, 'state': 'absent'}, stack)
    assert stack.modalities() == baseline


# -- the users file ----------------------------------------------------------------------------------------------
def _users_dir_state(directory):
    return sorted((p.name, p.stat().st_mode, p.read_bytes() if p.is_file() else None) for p in directory.iterdir())


@pytest.mark.parametrize(
    ('setup', 'args', 'fragment'),
    [
        ('none', {'path': '{dir}/missing-dir/users.json'}, 'missing-dir/users.json does not exist'),
        ('list', {'path': '{dir}/list.json'}, 'RegisteredUsers is not a JSON object'),
        ('none', {'path': '{dir}/new.json', 'mode': 'u=rwx,o=bad'}, 'mode'),
    ],
    ids=['missing-directory', 'users-not-object', 'mode-symbolic-bad'],
)  # fmt: skip
def test_users_file_failures_leave_nothing(stack, tmp_path, setup, args, fragment):
    (tmp_path / 'is-a-dir').mkdir()
    (tmp_path / 'list.json').write_text(json.dumps({'RegisteredUsers': ['a', 'b']}))
    (tmp_path / 'broken.json').write_text('{"RegisteredUsers": {"a": ')
    before = _users_dir_state(tmp_path)
    call = {k: v.format(dir=tmp_path) if isinstance(v, str) else v for k, v in args.items()}
    res = run_ansible('orthanc_user', dict(call, name='it2-user', password=SECRET), stack, verbose=True)
    _one_line_failure(res)
    assert fragment in res['msg'], res['msg']
    assert res['changed'] is False
    assert SECRET not in _output(res)
    assert _users_dir_state(tmp_path) == before


def test_users_file_written_with_its_mode_at_once(stack, tmp_path):
    """A new file with mode 0640 appears with that mode, never with a wider one, and holds valid JSON."""
    path = tmp_path / 'users.json'
    res = run_ansible('orthanc_user', {'path': str(path), 'name': 'it2', 'password': SECRET, 'mode': '0640'}, stack)
    assert not res.get('failed'), res
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert json.loads(path.read_text()) == {'RegisteredUsers': {'it2': SECRET}}
    assert [p.name for p in tmp_path.iterdir()] == ['users.json']


# -- malformed list options under -vvv ---------------------------------------------------------------------------
MALFORMED = [
    ('orthanc_modalities', {'modalities': [None]}),
    ('orthanc_peers', {'peers': [{'name': 'p', 'url': 'https://p.example/', 'username': 'u', 'password': SECRET}, 7]}),
    ('orthanc_user', {'path': '/nonexistent-dir/users.json', 'users': [{'name': 'a', 'password': SECRET}, 'b']}),
]


@pytest.mark.parametrize(
    ('module', 'args'),
    MALFORMED,
    ids=['modalities-null-item', 'peers-password-then-int', 'users-password-then-string'],
)  # fmt: skip
def test_no_secret_with_malformed_lists_under_vvv(stack, baseline, module, args):
    res = run_ansible(module, dict(args, api_password=stack.auth[1]), stack, verbose=True)
    _one_line_failure(res)
    assert stack.auth[1] not in _output(res)
    assert SECRET not in _output(res)
    assert stack.modalities() == baseline
    assert stack.peers() == {}


# -- peers -------------------------------------------------------------------------------------------------------
PEER = {'name': 'it2-peer', 'url': 'https://archive.example/orthanc/', 'username': 'clinic', 'password': 'peer-pw'}
PEER_CASES = [
    ('tab', {'url': 'https://archive.example/\torthanc/'}, 'contains the character'),
    ('empty-host', {'url': 'https:///orthanc/'}, 'followed by a host'),
    ('non-ascii-host', {'url': 'https://ärchiv.example/'}, 'has the host'),
    ('username-nul', {'username': 'cli\x00nic'}, 'username'),
    ('password-without-username', {'username': None, 'password': SECRET}, 'password'),
]


@pytest.mark.parametrize(('case', 'change', 'fragment'), PEER_CASES, ids=[c[0] for c in PEER_CASES])
def test_peer_values_are_checked_before_orthanc(stack, baseline, case, change, fragment):
    res = run_ansible('orthanc_peer', {k: v for k, v in dict(PEER, **change).items() if v is not None}, stack,
                      verbose=True)  # fmt: skip
    _one_line_failure(res)
    assert fragment in res['msg'], res['msg']
    assert SECRET not in _output(res)
    assert stack.peers() == {}


# -- modality values ---------------------------------------------------------------------------------------------
MODALITY_CASES = [
    ('aet-spaces', {'aet': '    '}, 'aet'),
    ('port-float', {'port': 104.5}, 'port'),
    ('host-ipv4-out-of-range', {'host': '999.1.1.1'}, 'host'),
    ('host-with-port', {'host': '192.0.2.20:104'}, 'host'),
]


@pytest.mark.parametrize(('case', 'change', 'fragment'), MODALITY_CASES, ids=[c[0] for c in MODALITY_CASES])
def test_modality_values_are_checked_before_orthanc(stack, baseline, case, change, fragment):
    res = run_ansible('orthanc_modality', dict(BASELINE, **change), stack)
    _one_line_failure(res)
    assert fragment in res['msg'], res['msg']
    assert stack.modalities() == baseline


# -- concurrent exclusive runs -----------------------------------------------------------------------------------
def test_concurrent_exclusive_peer_runs_all_succeed(stack, baseline):
    """Three exclusive peer lists at once; every run reaches its goal or reports a clean one-line failure, and the
    last state is one of the lists (never a mix with half-deleted peers)."""
    lists = [[{'name': f'it2-{r}-{i}', 'url': f'https://p{i}.example/'} for i in range(3)] for r in 'abc']
    results = [None] * 3

    def run(index):
        results[index] = run_ansible('orthanc_peers', {'peers': lists[index], 'exclusive': True}, stack)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for res in results:
            assert 'Traceback' not in _output(res)
            assert not res.get('failed'), res['msg']
        # Every run converges alone afterwards: run one list again and it is exactly that list.
        res = run_ansible('orthanc_peers', {'peers': lists[0], 'exclusive': True}, stack)
        assert not res.get('failed'), res
        assert sorted(stack.peers()) == sorted(p['name'] for p in lists[0])
    finally:
        run_ansible('orthanc_peers', {'peers': [], 'exclusive': True, 'confirm_remove_all': True}, stack)
    assert stack.peers() == {}


def test_concurrent_user_runs_leave_a_valid_file(stack, tmp_path):
    path = tmp_path / 'users.json'
    path.write_text(json.dumps({'RegisteredUsers': {'keep': 'keep-pw'}}))
    os.chmod(path, 0o600)
    results = [None] * 4

    def run(index):
        results[index] = run_ansible(
            'orthanc_user', {'path': str(path), 'name': f'it2-{index}', 'password': f'pw-{index}'}, stack
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for res in results:
        assert 'Traceback' not in _output(res) and not res.get('failed'), res
    users = json.loads(path.read_text())['RegisteredUsers']
    assert 'keep' in users
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ['users.json']


# -- matching options --------------------------------------------------------------------------------------------
MATCHING = [
    ({'threshold': 2}, 'threshold 2 is an option of its own'),
    ({'fields': ['name']}, 'fields'),
    ({'weights': {'no_such_field': 1}}, 'matching'),
]


@pytest.mark.parametrize(('matching', 'fragment'), MATCHING, ids=[f'matching-{i}' for i in range(len(MATCHING))])
def test_bad_matching_options_fail_before_any_request(stack, matching, fragment):
    """matching: {threshold: 2} was accepted and silently ignored (the threshold option won)."""
    res = run_ansible('orthanc_patient_duplicates_info', {'matching': matching}, stack)
    _one_line_failure(res)
    assert fragment in res['msg'], res['msg']
    assert res.get('orthanc_requests', {}) == {}
