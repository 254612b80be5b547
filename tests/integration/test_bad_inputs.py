"""Bad inputs: each run fails with a message naming the field and the rule, and nothing is written.

Runs against the real Orthanc compare its modalities and peers before and after; runs against the small
servers below check what those servers were sent (the real Orthanc never sees those requests).

The "Orthanc answering 500" and "TLS verification failure" cases use small servers on 127.0.0.1 started
here (a 500 responder and an HTTPS server with a self-signed certificate made by openssl at test time).

The hostile inputs of issue 15 follow: servers answering 200 with something that is not Orthanc's JSON (an
HTML page, a redirect to one, a JSON string, an object with non-object entries), connection options, a run
that fails after real writes (a proxy in front of the real Orthanc refuses one PUT), the users file, secrets
with -vvv, peer URLs and credentials, modality values and the duplicate-matching options.
"""

import http.server
import json
import socket
import ssl
import subprocess
import threading
import time
from typing import ClassVar

import pytest
import requests

from .conftest import ORTHANC_VERSION, run_ansible

pytestmark = pytest.mark.integration

BASELINE = {'name': 'pano', 'aet': 'PANO01', 'host': '192.0.2.20', 'port': 104}


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``status`` and ``body``; records each method and path in ``seen``."""

    status = 200
    body: ClassVar[dict] = {}
    seen: ClassVar[list] = []

    def _answer(self):
        self.seen.append((self.command, self.path))
        payload = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


def _serve(handler, context=None):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope='module')
def failing_server():
    class Handler(_Handler):
        status = 500
        body: ClassVar[dict] = {
            'HttpError': 'Internal Server Error',
            'HttpStatus': 500,
            'Message': 'Database plugin error',
            'Details': 'connection to PostgreSQL lost',
            'OrthancStatus': 31,
        }
        seen: ClassVar[list] = []

    server = _serve(Handler)
    yield f'http://127.0.0.1:{server.server_address[1]}', Handler
    server.shutdown()


@pytest.fixture(scope='module')
def tls_server(tmp_path_factory):
    """HTTPS on loopback with a fresh self-signed certificate (never committed)."""
    directory = tmp_path_factory.mktemp('tls')
    cert, key = directory / 'cert.pem', directory / 'key.pem'
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
         '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', str(key), '-out', str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip

    class Handler(_Handler):
        body: ClassVar[dict] = {'Version': ORTHANC_VERSION, 'ApiVersion': 27, 'DatabaseBackendPlugin': None}
        seen: ClassVar[list] = []

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server = _serve(Handler, context)
    yield f'https://127.0.0.1:{server.server_address[1]}', str(cert), Handler
    server.shutdown()


@pytest.fixture(scope='module')
def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(scope='module')
def baseline(stack):
    res = run_ansible('orthanc_modality', BASELINE, stack)
    assert not res.get('failed'), res
    yield stack.modalities()
    run_ansible('orthanc_modality', {'name': 'pano', 'state': 'absent'}, stack)


CASES = [
    (
        'aet-17',
        'orthanc_modality',
        dict(BASELINE, aet='A' * 17),
        ["aet 'AAAAAAAAAAAAAAAAA' is 17 characters long", 'at most 16 characters'],
    ),
    (
        'aet-backslash',
        'orthanc_modality',
        dict(BASELINE, aet='PANO\\01'),
        ['aet', 'contains a backslash', 'DICOM AE character set'],
    ),
    ('aet-control', 'orthanc_modality', dict(BASELINE, aet='PANO\t1'), ['aet', 'no control characters']),
    (
        'port-0',
        'orthanc_modality',
        dict(BASELINE, port=0),
        ['port 0 is out of range: Orthanc accepts a TCP port 1-65534'],
    ),
    (
        'port-70000',
        'orthanc_modality',
        dict(BASELINE, port=70000),
        ['port 70000 is out of range: Orthanc accepts a TCP port 1-65534'],
    ),
    ('empty-host', 'orthanc_modality', dict(BASELINE, host=''), ['host is empty']),
    (
        'invalid-name',
        'orthanc_modality',
        dict(BASELINE, name='pano room/1'),
        ["name 'pano room/1' is invalid", "letters, digits, '-' or '_'"],
    ),
    (
        'unknown-manufacturer',
        'orthanc_modality',
        dict(BASELINE, manufacturer='Siemens'),
        ['manufacturer', 'must be one of', 'Siemens'],
    ),
    ('bad-local-aet', 'orthanc_modality', dict(BASELINE, local_aet='X' * 20), ['local_aet', '20 characters long']),
    (
        'duplicate-names',
        'orthanc_modalities',
        {'modalities': [dict(BASELINE, port=1111), dict(BASELINE, aet='OTHER')], 'exclusive': True},
        ["modalities[1].name 'pano' is already used by modalities[0]", 'names must be unique'],
    ),
    (
        'peer-bad-url',
        'orthanc_peer',
        {'name': 'p', 'url': 'ftp://x'},
        ["url 'ftp://x' is invalid", 'http:// or https://'],
    ),
]


@pytest.mark.parametrize(('case', 'module', 'args', 'fragments'), CASES, ids=[c[0] for c in CASES])
def test_validation_errors(stack, baseline, case, module, args, fragments):
    res = run_ansible(module, args, stack)
    assert res.get('failed') is True, res
    for fragment in fragments:
        assert fragment in res['msg'], res['msg']
    assert stack.modalities() == baseline
    assert stack.peers() == {}


def test_wrong_password_401(stack, baseline):
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, api_password='not-the-password'), stack)
    assert res.get('failed') is True
    assert 'HTTP 401 Unauthorized' in res['msg'] and "user 'ansible'" in res['msg']
    assert 'check api_username and api_password' in res['msg']
    assert 'not-the-password' not in res['_stdout']
    assert stack.modalities() == baseline


def test_orthanc_not_running(stack, baseline, closed_port):
    args = dict(BASELINE, port=2222, api_url=f'http://127.0.0.1:{closed_port}', api_retries=1)
    res = run_ansible('orthanc_modality', args, stack)
    assert res.get('failed') is True
    assert f'cannot connect to Orthanc at http://127.0.0.1:{closed_port}: connection refused' in res['msg']
    assert 'is Orthanc running and is api_url right?' in res['msg']
    # Nothing listens there, so nothing can have been written: the module tried two reads and no write.
    assert res['orthanc_requests'] == {'GET': 2}
    assert 'Traceback' not in res['_stdout']


def test_orthanc_answering_500(stack, baseline, failing_server):
    url, handler = failing_server
    handler.seen.clear()
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, api_url=url), stack)
    assert res.get('failed') is True
    assert res['msg'] == (
        'Orthanc GET /modalities?expand: HTTP 500 Internal Server Error: Database plugin error '
        '(connection to PostgreSQL lost)'
    )
    # What the server was sent (the real Orthanc was never asked): reads only, the run stopped at the 500.
    assert handler.seen and all(method == 'GET' for method, _path in handler.seen), handler.seen


def test_tls_verification_failure_and_ca_path(stack, baseline, tls_server):
    url, cert, handler = tls_server
    handler.seen.clear()
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, api_url=url), stack)
    assert res.get('failed') is True
    assert res['msg'].startswith(f'TLS verification of {url} failed')
    assert 'CERTIFICATE_VERIFY_FAILED' in res['msg'] and 'set ca_path' in res['msg']
    # The handshake failed, so the server got no request at all (the real Orthanc was never asked).
    assert handler.seen == []
    # the same server is trusted with ca_path, or with validate_certs=false
    res = run_ansible('orthanc_info', {'api_url': url, 'ca_path': cert, 'gather': []}, stack)
    assert res['version'] == ORTHANC_VERSION
    res = run_ansible('orthanc_info', {'api_url': url, 'validate_certs': False, 'gather': []}, stack)
    assert res['version'] == ORTHANC_VERSION


def test_user_invalid_name_leaves_file(stack):
    before = stack.users_file.read_bytes()
    res = run_ansible('orthanc_user', {'path': str(stack.users_file), 'name': 'bad user', 'password': 'x-pw'}, stack)
    assert res.get('failed') is True
    assert "name 'bad user' is invalid" in res['msg']
    assert stack.users_file.read_bytes() == before


def test_user_exclusive_empty_list_is_refused_and_orthanc_keeps_its_users(stack):
    """An empty exclusive user list (an inventory variable left empty) would lock everyone out of the real
    Orthanc at its next restart: refused without confirm_remove_all, the file untouched, the login works."""
    before = stack.users_file.read_bytes()
    res = run_ansible('orthanc_user', {'path': str(stack.users_file), 'users': [], 'exclusive': True}, stack)
    assert res.get('failed') is True and 'confirm_remove_all=true' in res['msg'], res
    assert stack.users_file.read_bytes() == before
    assert stack.restart_orthanc()['Version'] == ORTHANC_VERSION


# -- issue 15: hostile inputs, second round ------------------------------------------------------------------------
class _NotOrthanc(http.server.BaseHTTPRequestHandler):
    """Answers 200 with something that is not Orthanc's JSON; records every method it is sent."""

    kind = 'html'
    seen: ClassVar[list] = []

    def do_GET(self):
        self.seen.append(('GET', self.path))
        if self.kind == 'redirect' and not self.path.startswith('/login'):
            self.send_response(302)
            self.send_header('Location', '/login.html')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        if self.kind in ('html', 'redirect'):
            payload, kind = b'<!DOCTYPE html><html><body><form>Login</form></body></html>', 'text/html'
        elif self.kind == 'json-string':
            payload, kind = b'"hello"', 'application/json'
        else:  # a JSON object with entries that are not objects
            payload, kind = json.dumps({'pano': 'x', 'central': 'x', 'p': 'x'}).encode(), 'application/json'
        self.send_response(200)
        self.send_header('Content-Type', kind)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _write(self):
        self.seen.append((self.command, self.path))
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_PUT = do_POST = do_DELETE = _write

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module', params=['html', 'redirect', 'json-string', 'entry-not-object'])
def not_orthanc(request):
    handler = type('Handler', (_NotOrthanc,), {'kind': request.param, 'seen': []})
    server = _serve(handler)
    yield f'http://127.0.0.1:{server.server_address[1]}', handler
    server.shutdown()


NOT_ORTHANC_RUNS = [
    ('orthanc_modality', dict(BASELINE, port=2222)),
    ('orthanc_peer', {'name': 'p', 'url': 'https://archive.example/', 'username': 'u', 'password': 'peer-pw'}),
    ('orthanc_peers', {'peers': [{'name': 'p', 'url': 'https://archive.example/'}]}),
    ('orthanc_info', {'gather': ['modalities', 'peers']}),
]


@pytest.mark.parametrize(('module', 'args'), NOT_ORTHANC_RUNS, ids=[r[0] for r in NOT_ORTHANC_RUNS])
def test_answer_that_is_not_orthanc_is_one_line_and_nothing_is_written(stack, not_orthanc, module, args):
    """Item 1: an HTML page, a redirect to one, a JSON string, an object with non-object entries."""
    url, handler = not_orthanc
    handler.seen.clear()
    res = run_ansible(module, dict(args, api_url=url, api_retries=0), stack)
    assert res.get('failed') is True, res
    assert res['msg'].endswith('this is not an Orthanc REST API (check api_url)'), res['msg']
    assert '\n' not in res['msg']
    assert 'Traceback' not in res['_stdout'] + res['_stderr']
    assert [m for m, _p in handler.seen if m != 'GET'] == []


@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'api_timeout': -1}, 'api_timeout -1 is out of range: give 1 to 3600 seconds'),
        ({'api_timeout': 0}, 'api_timeout 0 is out of range: give 1 to 3600 seconds'),
        ({'api_retries': -1}, 'api_retries -1 is out of range: give 0 to 20 repetitions'),
    ],
)
def test_api_timeout_and_retries_are_checked(stack, baseline, change, fragment):
    """Item 2: -1 was a traceback, 0 errno 115."""
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, **change), stack)
    assert res.get('failed') is True, res
    assert fragment in res['msg']
    assert 'Traceback' not in res['_stdout'] + res['_stderr']
    assert stack.modalities() == baseline


def test_ftp_api_url_is_refused_at_once(stack, baseline):
    """Item 2: an ftp:// api_url hung for the whole timeout and returned an empty reason."""
    host_port = stack.url.split('://', 1)[1]
    started = time.monotonic()
    args = dict(BASELINE, port=2222, api_url=f'ftp://{host_port}', api_timeout=60)
    res = run_ansible('orthanc_modality', args, stack)
    assert time.monotonic() - started < 30
    assert res.get('failed') is True, res
    assert res['msg'] == (
        f"api_url 'ftp://{host_port}' is invalid: it must start with http:// or https:// followed by a host"
    )
    assert stack.modalities() == baseline


def test_credentials_in_api_url_are_never_printed(stack, baseline):
    """Item 2: the real admin password inside api_url is refused and appears nowhere, even with -vvv."""
    user, password = stack.auth
    url = stack.url.replace('://', f'://{user}:{password}@', 1)
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, api_url=url), stack, verbose=True)
    assert res.get('failed') is True, res
    assert 'contains a user name or password (user:password@)' in res['msg']
    assert password not in res['_stdout'] + res['_stderr']
    assert stack.modalities() == baseline


def test_failure_after_writes_reports_changed_and_what_was_done(stack):
    """Item 3: the second peer is refused by Orthanc (its client certificate does not exist) after the first
    was created; the run says changed and names the first."""
    peers = [
        {'name': 'it-first', 'url': 'https://first.example/'},
        {
            'name': 'it-second',
            'url': 'https://second.example/',
            'certificate_file': '/nonexistent/client.pem',
            'certificate_key_file': '/nonexistent/client.key',
            'certificate_key_password': 'key-pw',
        },
    ]
    try:
        res = run_ansible('orthanc_peers', {'peers': peers}, stack)
        assert res.get('failed') is True, res
        assert res['changed'] is True
        assert [(d['action'], d['name']) for d in res['done']] == [('create', 'it-first')]
        assert res['msg'].startswith(
            'create of it-second failed after 1 earlier change(s) (create it-first, already made): Orthanc PUT '
            '/peers/it-second'
        ), res['msg']
        assert sorted(stack.peers()) == ['it-first']
    finally:
        run_ansible('orthanc_peers', {'peers': [], 'exclusive': True, 'confirm_remove_all': True}, stack)
    assert stack.peers() == {}


@pytest.mark.parametrize('field', ['owner', 'group'])
def test_user_unknown_owner_or_group_writes_nothing(stack, field):
    """Item 4: with owner=nosuchuser the file used to be in place, mode 0644, when chown failed."""
    new_file = stack.config_dir / 'users-it-new.json'
    before = stack.users_file.read_bytes()
    mode = stack.users_file.stat().st_mode
    for path in (new_file, stack.users_file):
        args = {'path': str(path), 'name': 'it-user', 'password': 'it-user-pw', field: 'nosuchname15'}
        res = run_ansible('orthanc_user', args, stack)
        assert res.get('failed') is True, res
        assert f"{field} 'nosuchname15' is not a" in res['msg']
        assert res['changed'] is False
    assert not new_file.exists()
    assert stack.users_file.read_bytes() == before and stack.users_file.stat().st_mode == mode
    assert not [p.name for p in stack.config_dir.iterdir() if p.name.startswith('.orthanc-users-')]


@pytest.mark.parametrize(
    ('module', 'args'),
    [
        ('orthanc_modalities', {'modalities': 'pano'}),
        ('orthanc_modalities', {'modalities': [BASELINE, 'b']}),
        ('orthanc_peers', {'peers': [{'name': 'p', 'url': 'http://p/'}, 'b']}),
    ],
    ids=['modalities-string', 'modalities-dict-then-string', 'peers-dict-then-string'],
)
def test_api_password_never_printed_with_malformed_list(stack, baseline, module, args):
    """Item 5: -vvv showed api_password in clear when a list option was malformed."""
    res = run_ansible(module, dict(args, api_password=stack.auth[1]), stack, verbose=True)
    assert res.get('failed') is True, res
    output = res['_stdout'] + res['_stderr']
    assert stack.auth[1] not in output
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in output  # the invocation is shown, masked
    assert stack.modalities() == baseline


PEER = {'name': 'it-peer', 'url': 'https://archive.example/orthanc/', 'username': 'clinic', 'password': 'peer-pw'}
PEER_CASES = [
    ('space', {'url': 'https://archive.example/orth anc/'}, "contains the character ' '"),
    ('newline', {'url': 'https://archive.example/\northanc/'}, "contains the character '\\n'"),
    ('trailing-space', {'url': 'https://archive.example/orthanc/ '}, "contains the character ' '"),
    ('port-abc', {'url': 'https://archive.example:abc/'}, "has the port 'abc': a TCP port is a number 1-65535"),
    ('url-credentials', {'url': 'https://u:Url-Pw-15@archive.example/'}, 'contains a user name or password'),
    ('username-colon', {'username': 'cli:nic'}, "username 'cli:nic' contains ':'"),
    ('username-newline', {'username': 'cli\nnic'}, "contains the control character '\\n'"),
    ('empty-password', {'password': ''}, "password is empty for username 'clinic'"),
]


@pytest.mark.parametrize(('case', 'change', 'fragment'), PEER_CASES, ids=[c[0] for c in PEER_CASES])
def test_peer_url_and_credentials_are_checked_before_orthanc(stack, baseline, case, change, fragment):
    """Item 6: these were all stored by Orthanc (the password of the last one silently dropped)."""
    res = run_ansible('orthanc_peer', dict(PEER, **change), stack)
    assert res.get('failed') is True, res
    assert fragment in res['msg'], res['msg']
    assert 'Url-Pw-15' not in res['_stdout']
    assert stack.peers() == {}


MODALITY_CASES = [
    ('port-yes', {'port': True}, 'port True is a boolean (YAML yes/no/true/false): Orthanc accepts an integer 1-65534'),
    ('timeout-huge', {'timeout': 10**12}, 'timeout 1000000000000 is out of range: give 0 (Orthanc default) to 3600'),
    ('host-url', {'host': 'http://192.0.2.20:104/'}, "host 'http://192.0.2.20:104/' looks like a URL"),
    ('host-300', {'host': 'a' * 300}, 'is 300 characters long: a DNS name has at most 253 characters'),
    ('host-label', {'host': 'pano_room.clinic'}, "the label 'pano_room' must have 1 to 63 letters"),
]


@pytest.mark.parametrize(('case', 'change', 'fragment'), MODALITY_CASES, ids=[c[0] for c in MODALITY_CASES])
def test_modality_values_are_checked_before_orthanc(stack, baseline, case, change, fragment):
    """Item 7: 'port: yes' was a 400, a 10^12 timeout a 500, a URL or a 300-character host was stored."""
    res = run_ansible('orthanc_modality', dict(BASELINE, **change), stack)
    assert res.get('failed') is True, res
    assert fragment in res['msg'], res['msg']
    assert stack.modalities() == baseline


def test_modality_limits_are_accepted_by_orthanc(stack, baseline):
    """The largest timeout and a 253-character DNS name we accept are stored and read back as given."""
    host = '.'.join(['a' * 63, 'b' * 63, 'c' * 63, 'd' * 61])
    assert len(host) == 253
    args = dict(BASELINE, name='it-limits', port=65534, timeout=3600, host=host)
    try:
        res = run_ansible('orthanc_modality', args, stack)
        assert not res.get('failed'), res['msg']
        stored = stack.modalities()['it-limits']
        assert (stored['Timeout'], stored['Host'], stored['Port']) == (3600, host, 65534)
        assert run_ansible('orthanc_modality', args, stack)['changed'] is False
    finally:
        run_ansible('orthanc_modality', {'name': 'it-limits', 'state': 'absent'}, stack)


def test_duplicates_matching_options_are_checked(stack):
    """Item 9: matching: {weights: abc} was a traceback."""
    res = run_ansible('orthanc_patient_duplicates_info', {'matching': {'weights': 'abc'}}, stack)
    assert res.get('failed') is True, res
    assert res['msg'].startswith("invalid matching options: weights 'abc' is not a dictionary"), res['msg']
    assert 'Traceback' not in res['_stdout'] + res['_stderr']
    assert res['orthanc_requests'] == {}


@pytest.fixture
def refusing_proxy(stack):
    """Forwards every request to the real Orthanc, except the PUT of modality 'it-second' (HTTP 500)."""

    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self):
            length = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(length) if length else None
            if self.command == 'PUT' and self.path == '/modalities/it-second':
                status, payload = 500, json.dumps({'HttpError': 'Internal Server Error', 'Message': 'Database error'})
                payload = payload.encode()
            else:
                headers = {k: v for k, v in self.headers.items() if k.lower() in ('authorization', 'content-type')}
                answer = requests.request(self.command, stack.url + self.path, data=body, headers=headers, timeout=10)
                status, payload = answer.status_code, answer.content
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = _forward

        def log_message(self, *args):
            pass

    server = _serve(Proxy)
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_failure_after_real_writes_reports_changed(stack, baseline, refusing_proxy):
    """Item 3 with modalities: it-first really reaches Orthanc, it-second is refused, it-third is never sent."""
    items = [dict(BASELINE, name=f'it-{n}', port=3000 + i) for i, n in enumerate(('first', 'second', 'third'))]
    try:
        res = run_ansible('orthanc_modalities', {'modalities': items, 'api_url': refusing_proxy}, stack)
        assert res.get('failed') is True, res
        assert res['changed'] is True
        assert [(d['action'], d['name']) for d in res['done']] == [('create', 'it-first')]
        assert 'create of it-second failed after 1 earlier change(s) (create it-first, already made)' in res['msg']
        current = stack.modalities()
        assert 'it-first' in current and 'it-second' not in current and 'it-third' not in current
    finally:
        for name in ('it-first', 'it-second', 'it-third'):
            run_ansible('orthanc_modality', {'name': name, 'state': 'absent'}, stack)
    assert stack.modalities() == baseline
