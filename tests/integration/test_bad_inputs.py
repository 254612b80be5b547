"""Bad inputs: each run fails with a message naming the field and the rule, and Orthanc stays unchanged.

The "Orthanc answering 500" and "TLS verification failure" cases use small servers on 127.0.0.1 started
here (a 500 responder and an HTTPS server with a self-signed certificate made by openssl at test time).
"""

import http.server
import json
import socket
import ssl
import subprocess
import threading
from typing import ClassVar

import pytest

from .conftest import run_ansible

pytestmark = pytest.mark.integration

BASELINE = {'name': 'pano', 'aet': 'PANO01', 'host': '192.0.2.20', 'port': 104}


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    body: ClassVar[dict] = {}

    def _answer(self):
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

    server = _serve(Handler)
    yield f'http://127.0.0.1:{server.server_address[1]}'
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
        body: ClassVar[dict] = {'Version': '1.12.7', 'ApiVersion': 27, 'DatabaseBackendPlugin': None}

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server = _serve(Handler, context)
    yield f'https://127.0.0.1:{server.server_address[1]}', str(cert)
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
    ('port-0', 'orthanc_modality', dict(BASELINE, port=0), ['port 0 is out of range: a TCP port is 1-65535']),
    (
        'port-70000',
        'orthanc_modality',
        dict(BASELINE, port=70000),
        ['port 70000 is out of range: a TCP port is 1-65535'],
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
    assert res['orthanc_requests'] == {'GET': 2}
    assert 'Traceback' not in res['_stdout']
    assert stack.modalities() == baseline


def test_orthanc_answering_500(stack, baseline, failing_server):
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, api_url=failing_server), stack)
    assert res.get('failed') is True
    assert res['msg'] == (
        'Orthanc GET /modalities?expand: HTTP 500 Internal Server Error: Database plugin error '
        '(connection to PostgreSQL lost)'
    )
    assert stack.modalities() == baseline


def test_tls_verification_failure_and_ca_path(stack, baseline, tls_server):
    url, cert = tls_server
    res = run_ansible('orthanc_modality', dict(BASELINE, port=2222, api_url=url), stack)
    assert res.get('failed') is True
    assert res['msg'].startswith(f'TLS verification of {url} failed')
    assert 'CERTIFICATE_VERIFY_FAILED' in res['msg'] and 'set ca_path' in res['msg']
    assert stack.modalities() == baseline
    # the same server is trusted with ca_path, or with validate_certs=false
    assert run_ansible('orthanc_info', {'api_url': url, 'ca_path': cert, 'gather': []}, stack)['version'] == '1.12.7'
    res = run_ansible('orthanc_info', {'api_url': url, 'validate_certs': False, 'gather': []}, stack)
    assert res['version'] == '1.12.7'


def test_user_invalid_name_leaves_file(stack):
    before = stack.users_file.read_bytes()
    res = run_ansible('orthanc_user', {'path': str(stack.users_file), 'name': 'bad user', 'password': 'x-pw'}, stack)
    assert res.get('failed') is True
    assert "name 'bad user' is invalid" in res['msg']
    assert stack.users_file.read_bytes() == before
