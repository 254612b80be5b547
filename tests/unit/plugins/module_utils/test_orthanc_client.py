import json
import ssl
from urllib.error import URLError

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import (
    OrthancClient,
    OrthancError,
    format_orthanc_error,
    orthanc_argument_spec,
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
