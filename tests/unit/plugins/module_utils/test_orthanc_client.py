import json
import ssl
from urllib.error import URLError

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import (
    OBJECTS,
    OrthancClient,
    OrthancError,
    connection_errors,
    format_orthanc_error,
    orthanc_argument_spec,
    redact_url,
)


class Script:
    """Transport answering from a list of (status, body) or exceptions."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen = []

    def __call__(self, client, method, url, data, headers):
        self.seen.append((method, url, data, headers))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, body = answer
        return status, body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.fixture
def script(monkeypatch):
    holder = {}

    def install(*answers):
        s = Script(*answers)

        def transport(self, method, url, data, headers):
            return s(self, method, url, data, headers)

        monkeypatch.setattr(OrthancClient, '_transport', transport)
        holder['s'] = s
        return s

    monkeypatch.setattr('time.sleep', lambda _s: None)
    return install


def test_argument_spec_marks_password_no_log_and_has_env_fallbacks():
    spec = orthanc_argument_spec()
    assert spec['api_password']['no_log'] is True
    assert spec['api_url']['fallback'][1] == ['ORTHANC_URL']
    assert set(spec) == {
        'api_url',
        'api_username',
        'api_password',
        'validate_certs',
        'ca_path',
        'api_timeout',
        'api_retries',
    }


def test_get_decodes_json_counts_and_sends_basic_auth(script):
    s = script((200, {'Version': '1.12.7'}))
    client = OrthancClient('http://127.0.0.1:8042/', username='ansible', password='secret')
    assert client.get('/system') == {'Version': '1.12.7'}
    assert client.requests == {'GET': 1}
    _method, url, data, headers = s.seen[0]
    assert url == 'http://127.0.0.1:8042/system'
    assert headers['Authorization'] == 'Basic YW5zaWJsZTpzZWNyZXQ='
    assert data is None


def test_put_sends_json_and_empty_answer_is_none(script):
    s = script((200, b''))
    client = OrthancClient()
    assert client.put('/modalities/x', {'AET': 'X'}) is None
    assert json.loads(s.seen[0][2]) == {'AET': 'X'}
    assert s.seen[0][3]['Content-Type'] == 'application/json'
    assert 'Authorization' not in s.seen[0][3]


def test_503_is_retried_then_succeeds(script):
    script((503, b''), (503, b''), (200, {}))
    client = OrthancClient(retries=3)
    assert client.get('/system') == {}
    assert client.requests == {'GET': 3}


def test_503_retries_are_bounded(script):
    script((503, b''), (503, b''), (503, b''))
    client = OrthancClient(retries=2)
    with pytest.raises(OrthancError) as err:
        client.get('/system')
    assert err.value.status == 503
    assert client.requests == {'GET': 3}


def test_connection_refused_is_retried_then_reported(script):
    refused = URLError(ConnectionRefusedError(111, 'Connection refused'))
    script(refused, refused, refused)
    client = OrthancClient('http://127.0.0.1:1', retries=2)
    with pytest.raises(OrthancError) as err:
        client.get('/system')
    assert 'connection refused after 3 attempt(s)' in err.value.msg
    assert 'is Orthanc running' in err.value.msg
    assert '\n' not in err.value.msg


def test_connection_refused_then_up(script):
    script(URLError(ConnectionRefusedError(111, 'refused')), (200, {'ok': 1}))
    client = OrthancClient()
    assert client.get('/system') == {'ok': 1}
    assert client.requests == {'GET': 2}


def test_401_names_the_user_and_options(script):
    script((401, b''))
    client = OrthancClient(username='ansible', password='wrong')
    with pytest.raises(OrthancError) as err:
        client.get('/system')
    assert err.value.status == 401
    assert "user 'ansible'" in err.value.msg
    assert 'api_password' in err.value.msg
    assert 'wrong' not in err.value.msg


def test_401_without_user(script):
    script((401, b''))
    with pytest.raises(OrthancError) as err:
        OrthancClient().get('/system')
    assert 'api_username is not set' in err.value.msg


def test_orthanc_json_error_becomes_one_line(script):
    body = {
        'Details': 'Missing "Host"\nin body',
        'HttpError': 'Bad Request',
        'HttpStatus': 400,
        'Message': 'Bad file format',
        'Method': 'PUT',
        'OrthancError': 'Bad file format',
        'OrthancStatus': 15,
    }
    script((400, body))
    with pytest.raises(OrthancError) as err:
        OrthancClient().put('/modalities/x', {})
    assert err.value.msg == 'Orthanc PUT /modalities/x: HTTP 400 Bad Request: Bad file format (Missing "Host" in body)'


def test_non_json_error_body(script):
    script((500, b'<html>Internal\n error</html>'))
    with pytest.raises(OrthancError) as err:
        OrthancClient().get('/system')
    assert err.value.msg == 'Orthanc GET /system: HTTP 500: <html>Internal error</html>'


def test_tls_failure_is_explained(script):
    script(URLError(ssl.SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate')))
    with pytest.raises(OrthancError) as err:
        OrthancClient('https://127.0.0.1:8443').get('/system')
    assert err.value.msg.startswith('TLS verification of https://127.0.0.1:8443 failed')
    assert 'ca_path' in err.value.msg


def test_timeout_is_explained(script):
    script(URLError(TimeoutError('timed out')))
    with pytest.raises(OrthancError) as err:
        OrthancClient(timeout=5).get('/system')
    assert 'within 5 seconds' in err.value.msg


def test_other_network_error(script):
    script(URLError(OSError(-2, 'Name or service not known')))
    with pytest.raises(OrthancError) as err:
        OrthancClient('http://nowhere.invalid').get('/system')
    assert err.value.msg.startswith('cannot connect to Orthanc at http://nowhere.invalid')


def test_ok_statuses_and_raw_body(script):
    s = script((404, {'Message': 'Unknown resource'}))
    client = OrthancClient()
    client.request('POST', '/tools/execute-script', raw='print(1)', ok=(200, 404))
    assert s.seen[0][2] == b'print(1)'


def test_quote_escapes_path_segment():
    assert OrthancClient.quote('a b/c') == 'a%20b%2Fc'


def test_format_orthanc_error_without_details():
    assert format_orthanc_error('GET', '/x', 404, b'{"Message": "Unknown resource"}') == (
        'Orthanc GET /x: HTTP 404: Unknown resource'
    )


def test_real_connection_refused_on_loopback():
    """A real socket: nothing listens on the port we just closed."""
    import socket

    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    client = OrthancClient(f'http://127.0.0.1:{port}', retries=1, retry_delay=0)
    with pytest.raises(OrthancError) as err:
        client.get('/system')
    assert 'connection refused after 2 attempt(s)' in err.value.msg
    assert client.requests == {'GET': 2}


def test_bad_ca_path_is_reported(tmp_path):
    client = OrthancClient('https://127.0.0.1:1', ca_path=str(tmp_path / 'missing.pem'))
    with pytest.raises(OrthancError) as err:
        client.get('/system')
    assert 'cannot load ca_path' in err.value.msg


@pytest.fixture
def http_server():
    """A real HTTP server on loopback: /archive answers 3 MB of bytes, everything else 404 in Orthanc's style."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, dict(self.headers)))
            if self.path == '/archive':
                body = bytes(range(256)) * (3 * 4096)
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            body = json.dumps({'HttpStatus': 404, 'Message': 'Unknown resource', 'Details': 'no such study'})
            self.send_response(404)
            self.send_header('Content-Type', 'application/json')
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}', seen
    server.shutdown()
    server.server_close()


def test_download_streams_into_a_private_file(http_server, tmp_path):
    url, seen = http_server
    client = OrthancClient(url, username='ansible', password='secret')
    dest = tmp_path / 'study.zip'
    size = client.download('/archive', str(dest), accept='application/zip', chunk=4096)
    assert size == 3 * 1024 * 1024 == dest.stat().st_size
    assert dest.read_bytes()[:3] == bytes([0, 1, 2])
    assert dest.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / 'study.zip.part').exists()
    assert client.requests == {'GET': 1}
    path, headers = seen[0]
    assert path == '/archive' and headers['Accept'] == 'application/zip'
    assert headers['Authorization'].startswith('Basic ')


def test_download_error_is_one_line_and_leaves_no_file(http_server, tmp_path):
    url, _seen = http_server
    client = OrthancClient(url)
    dest = tmp_path / 'study.zip'
    with pytest.raises(OrthancError) as err:
        client.download('/studies/x/archive', str(dest))
    assert err.value.status == 404
    assert '404' in err.value.msg and 'no such study' in err.value.msg and '\n' not in err.value.msg
    assert list(tmp_path.iterdir()) == []


def test_download_from_nothing_listening_is_explained(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    client = OrthancClient(f'http://127.0.0.1:{port}', retries=0)
    with pytest.raises(OrthancError) as err:
        client.download('/archive', str(tmp_path / 'a.zip'))
    assert 'connection refused' in err.value.msg


# -- answers that are not Orthanc's (issue 15, item 1) -----------------------------------------------------------
NOT_ORTHANC = [
    (
        'html',
        (200, b'<!DOCTYPE html>\n<html><body>Welcome to nginx!</body></html>'),
        "text that is not JSON ('<!DOCTYPE html> <html><body>Welcome to nginx!</body></html>')",
    ),
    ('json-string', (200, b'"hello"'), 'a JSON string'),
    ('json-list', (200, [1, 2]), 'a JSON array'),
    ('entry-not-object', (200, {'pano': 'x'}), "a JSON object whose entry 'pano' is a JSON string"),
    ('empty', (200, b''), 'an empty body'),
]


@pytest.mark.parametrize(('case', 'answer', 'got'), NOT_ORTHANC, ids=[c[0] for c in NOT_ORTHANC])
def test_answer_of_the_wrong_shape_is_not_orthanc(script, case, answer, got):
    script(answer)
    client = OrthancClient('http://127.0.0.1:8042')
    with pytest.raises(OrthancError) as err:
        client.get('/modalities?expand', expect=OBJECTS)
    assert err.value.msg == (
        f'http://127.0.0.1:8042 answered GET /modalities?expand with {got} instead of a JSON object of objects: '
        'this is not an Orthanc REST API (check api_url)'
    )


def test_expect_accepts_the_right_shapes(script):
    script((200, {'pano': {'AET': 'P'}}), (200, ['a']), (200, {'Version': '1'}))
    client = OrthancClient()
    assert client.get('/modalities?expand', expect=OBJECTS) == {'pano': {'AET': 'P'}}
    assert client.get('/plugins', expect=list) == ['a']
    assert client.get('/system', expect=dict) == {'Version': '1'}


def test_without_expect_text_answers_are_returned(script):
    script((200, b'plain text'))
    assert OrthancClient().post('/tools/execute-script', raw='x') == 'plain text'


# -- connection options (issue 15, item 2) -----------------------------------------------------------------------
GOOD_PARAMS = {'api_url': 'http://127.0.0.1:8042', 'api_timeout': 30, 'api_retries': 3}


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'api_timeout': -1}, 'api_timeout -1 is out of range: give 1 to 3600 seconds'),
        ({'api_timeout': 0}, 'api_timeout 0 is out of range: give 1 to 3600 seconds'),
        ({'api_timeout': 3601}, 'api_timeout 3601 is out of range: give 1 to 3600 seconds'),
        ({'api_retries': -1}, 'api_retries -1 is out of range: give 0 to 20 repetitions'),
        ({'api_retries': 21}, 'api_retries 21 is out of range: give 0 to 20 repetitions'),
        (
            {'api_url': 'ftp://x'},
            "api_url 'ftp://x' is invalid: it must start with http:// or https:// followed by a host",
        ),
        (
            {'api_url': 'http://admin:s3cret@127.0.0.1:8042'},
            "api_url 'http://***@127.0.0.1:8042' contains a user name or password (user:password@): give them in "
            'api_username and api_password instead',
        ),
        ({'api_url': 'http://'}, "api_url 'http://' is invalid"),
        ({'api_url': 'http://h:abc'}, "api_url 'http://h:abc' has the port 'abc': a TCP port is a number 1-65535"),
        ({'api_url': 'http://h :8042'}, "api_url 'http://h :8042' contains the character ' ' at position 8"),
        ({'api_url': 'http://[zzz]:8042'}, "api_url 'http://[zzz]:8042' is not a valid URL ("),
        ({'api_url': 'http://[::1:8042'}, "api_url 'http://[::1:8042' is not a valid URL (Invalid IPv6 URL)"),
    ],
)
def test_connection_errors(change, message):
    errors = connection_errors(dict(GOOD_PARAMS, **change))
    assert len(errors) == 1
    assert errors[0].startswith(message)


def test_connection_defaults_are_valid():
    spec = orthanc_argument_spec()
    params = {k: v.get('default') for k, v in spec.items()}
    assert connection_errors(params) == []
    assert connection_errors(dict(GOOD_PARAMS, api_url='https://[::1]:8443/orthanc/')) == []


def test_redact_url_hides_credentials():
    assert redact_url('https://u:p@h:1/x@y') == 'https://***@h:1/x@y'
    assert redact_url('http://h/') == 'http://h/'


def test_connection_error_never_prints_url_credentials(script):
    script(URLError(OSError(-2, "nonnumeric port: 's3cret@h'")))
    with pytest.raises(OrthancError) as err:
        OrthancClient('http://admin:s3cret@h').get('/system')
    assert 's3cret' not in err.value.msg
    assert 'http://***@h' in err.value.msg


# -- redirects: credentials go only to api_url's server -------------------------------------------------------------
@pytest.mark.parametrize(
    'target',
    [
        'http://other.example:8042/modalities',
        'http://127.0.0.1:8043/modalities',
        'https://127.0.0.1:8042/modalities',
        'http://u:pw-in-location@127.0.0.2:8042/x',
    ],
    ids=['other-host', 'other-port', 'other-scheme', 'credentials-in-location'],
)
def test_redirect_to_another_server_is_refused_in_one_line(target):
    from urllib.request import Request

    from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import _SameOriginRedirects

    req = Request('http://127.0.0.1:8042/modalities?expand', headers={'Authorization': 'Basic c2VjcmV0'})
    with pytest.raises(OrthancError) as err:
        _SameOriginRedirects().redirect_request(req, None, 302, 'Found', {}, target)
    msg = err.value.msg
    assert msg.startswith('http://127.0.0.1:8042 answered GET /modalities with HTTP 302, a redirect to another server')
    assert msg.endswith('refused, the credentials are sent only to api_url (check api_url)')
    assert '\n' not in msg and 'pw-in-location' not in msg


@pytest.mark.parametrize('target', ['http://127.0.0.1:8042/app/explorer.html', 'http://127.0.0.1/x'])
def test_redirect_on_the_same_server_is_followed(target):
    from urllib.request import Request

    from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import _SameOriginRedirects

    base = 'http://127.0.0.1:8042/' if '8042' in target else 'http://127.0.0.1:80/'
    req = Request(base + 'system', headers={'Authorization': 'Basic c2VjcmV0'})  # noqa: S310 - never opened
    new = _SameOriginRedirects().redirect_request(req, None, 302, 'Found', {}, target)
    assert new.full_url == target


def test_the_client_opener_refuses_cross_host_redirects():
    from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import _SameOriginRedirects

    opener = OrthancClient(url='http://127.0.0.1:8042')._get_opener()
    assert any(isinstance(h, _SameOriginRedirects) for h in opener.handlers)


@pytest.mark.parametrize(
    ('url', 'secret'),
    [
        ('http://127.0.0.1:8042/?token=abc123', 'token=abc123'),
        ('http://127.0.0.1:8042/#key=k', 'key=k'),
        ('http://127.0.0.1:8042/orthanc/', None),
    ],
)
def test_url_query_secret(url, secret):
    from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import url_query_secret

    assert url_query_secret(url) == secret
