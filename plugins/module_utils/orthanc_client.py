# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small Orthanc REST client shared by every module of clinicpacs.orthanc.

Only the Python standard library is used (urllib + ssl + json), so the modules run on any managed node.

Public API (kept small and stable, other modules build on it):

* ``orthanc_argument_spec()`` - the connection options every module accepts.
* ``OrthancClient`` - ``get``/``put``/``post``/``delete`` returning decoded JSON, ``requests`` counter.
* ``OrthancError`` - raised with a one-line message for every failure (connection, TLS, HTTP status).
* ``client_from_module(module)`` - builds a client from the connection options of an AnsibleModule.
"""

from __future__ import absolute_import, division, print_function

import base64
import json
import os
import re
import shutil
import ssl
import time

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlsplit
from ansible.module_utils.six.moves.urllib.request import HTTPRedirectHandler, HTTPSHandler, Request, build_opener

DEFAULT_URL = 'http://127.0.0.1:8042'
RETRY_STATUSES = (503,)
MAX_API_TIMEOUT = 3600
MAX_API_RETRIES = 20
HOST_CHARS = re.compile(r'^[A-Za-z0-9._-]+$')


def orthanc_argument_spec():
    """Return a fresh copy of the connection options shared by every module.

    The names carry an ``api_`` prefix because ``url``, ``username``, ``password`` and ``timeout`` are
    properties of the managed objects themselves (peers, users, modalities).
    """
    return {
        'api_url': {'type': 'str', 'default': DEFAULT_URL, 'fallback': (env_fallback, ['ORTHANC_URL'])},
        'api_username': {'type': 'str', 'fallback': (env_fallback, ['ORTHANC_USERNAME'])},
        'api_password': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['ORTHANC_PASSWORD'])},
        'validate_certs': {'type': 'bool', 'default': True, 'fallback': (env_fallback, ['ORTHANC_VALIDATE_CERTS'])},
        'ca_path': {'type': 'path', 'fallback': (env_fallback, ['ORTHANC_CA_PATH'])},
        'api_timeout': {'type': 'int', 'default': 30, 'fallback': (env_fallback, ['ORTHANC_TIMEOUT'])},
        'api_retries': {'type': 'int', 'default': 3},
    }


def redact_url(url):
    """``url`` with any ``user:password@`` part replaced by ``***@``, for messages."""
    text = str(url)
    scheme, sep, rest = text.partition('://')
    if not sep:
        return text
    authority, slash, tail = rest.partition('/')
    if '@' in authority:
        authority = '***@' + authority.rpartition('@')[2]
    return scheme + sep + authority + slash + tail


def url_password(url):
    """The password embedded in ``url`` (``scheme://user:password@host``), else None; also when the rest of the
    URL cannot be parsed."""
    _scheme, sep, rest = str(url).partition('://')
    authority = re.split(r'[/?#]', rest, maxsplit=1)[0]
    if not sep or '@' not in authority:
        return None
    return authority.rpartition('@')[0].partition(':')[2] or None


def url_query_secret(url):
    """The query and fragment of ``url`` (what follows the first ``?`` or ``#``), else None. Such a URL is
    refused, but it may carry a token (``?token=...``), so it is hidden like a password."""
    match = re.search(r'[?#](.+)$', str(url), re.S)
    return match.group(1) if match else None


def check_http_url(url, field, credentials_hint):
    """Return an error message when ``url`` is not a plain http(s) base URL, else None.

    Rules: no white space or control character anywhere; scheme ``http`` or ``https``; a host name or address;
    a port 1-65535 when given; no ``user:password@`` part (``credentials_hint`` names the options to use
    instead); no query or fragment (paths are appended to the URL). The URL is quoted with credentials masked.
    """
    if not isinstance(url, str) or not url:
        return f'{field} is empty: give a URL starting with http:// or https://'
    shown = redact_url(url)
    for index, char in enumerate(url):
        if char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F:
            return (
                f'{field} {shown!r} contains the character {char!r} at position {index}: a URL may not contain white '
                'space or control characters'
            )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ''
    except ValueError as exc:
        return f'{field} {shown!r} is not a valid URL ({exc})'
    if parts.scheme.lower() not in ('http', 'https') or not url.lower().startswith(parts.scheme.lower() + '://'):
        return f'{field} {shown!r} is invalid: it must start with http:// or https:// followed by a host'
    if '@' in parts.netloc:
        return (
            f'{field} {shown!r} contains a user name or password (user:password@): give them in {credentials_hint} '
            'instead'
        )
    if not host:
        return f'{field} {shown!r} is invalid: it must start with http:// or https:// followed by a host'
    if ':' not in host and not HOST_CHARS.match(host):
        return (
            f"{field} {shown!r} has the host {host!r}: a host name has only letters, digits, '.', '-' and '_' "
            '(an IPv6 address goes in brackets)'
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        given = parts.netloc.rpartition(':')[2]
        return f'{field} {shown!r} has the port {given!r}: a TCP port is a number 1-65535'
    if parts.query or parts.fragment or '?' in url or '#' in url:
        return f"{field} {shown!r} has a query or fragment ('?' or '#'): give only the base URL"
    return None


def connection_errors(params):
    """List the errors of the connection options (``orthanc_argument_spec``) of a module's ``params``."""
    errors = []
    msg = check_http_url(params.get('api_url'), 'api_url', 'api_username and api_password')
    if msg:
        errors.append(msg)
    timeout = params.get('api_timeout')
    if timeout is not None and not 1 <= timeout <= MAX_API_TIMEOUT:
        errors.append(f'api_timeout {timeout} is out of range: give 1 to {MAX_API_TIMEOUT} seconds')
    retries = params.get('api_retries')
    if retries is not None and not 0 <= retries <= MAX_API_RETRIES:
        errors.append(f'api_retries {retries} is out of range: give 0 to {MAX_API_RETRIES} repetitions')
    return errors


OBJECTS = 'objects'
_EXPECTED = {
    dict: 'a JSON object',
    list: 'a JSON array',
    (dict, list): 'a JSON object or array',
    OBJECTS: 'a JSON object of objects',
}
_JSON_TYPES = ((dict, 'a JSON object'), (list, 'a JSON array'), (str, 'a JSON string'), (bool, 'a JSON boolean'),
               (int, 'a JSON number'), (float, 'a JSON number'))  # fmt: skip


def _json_kind(value):
    if value is None:
        return 'JSON null'
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _shape_mismatch(data, expect):
    """None when ``data`` has the shape ``expect``, else what it is instead (for a message)."""
    wanted = dict if expect == OBJECTS else expect
    if not isinstance(data, wanted):
        return _json_kind(data)
    if expect == OBJECTS:
        for key, value in data.items():
            if not isinstance(value, dict):
                return f'a JSON object whose entry {_one_line(key, 40)!r} is {_json_kind(value)}'
    return None


class OrthancError(Exception):
    """A failed Orthanc call, with a one-line ``msg`` and the HTTP ``status`` when there was one."""

    def __init__(self, msg, status=None, method=None, path=None, body=None):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.method = method
        self.path = path
        self.body = body


def _one_line(text, limit=300):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + '...'


def format_orthanc_error(method, path, status, body):
    """Turn an Orthanc error answer into one line: ``PUT /x: HTTP 400 Bad Request: <message> (<details>)``."""
    reason = ''
    details = ''
    try:
        data = json.loads(body.decode('utf-8') if isinstance(body, bytes) else body)
    except (ValueError, AttributeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        reason = data.get('HttpError') or ''
        message = data.get('Message') or data.get('OrthancError') or ''
        details = data.get('Details') or ''
        text = message
        if details and details != message:
            text = f'{message} ({details})' if message else details
    else:
        text = body.decode('utf-8', 'replace') if isinstance(body, bytes) else (body or '')
    head = f'Orthanc {method} {path}: HTTP {status}'
    if reason:
        head += ' ' + reason
    text = _one_line(text)
    return head + (': ' + text if text else '')


def _origin(url):
    """``(scheme, host, port)`` of ``url``, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or '').lower(), port or {'http': 80, 'https': 443}.get(scheme)


class _SameOriginRedirects(HTTPRedirectHandler):
    """Follow a redirect only to the same scheme, host and port. urllib would send the Authorization header
    (api_username and api_password) to any host a redirect names, and from https to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if _origin(newurl) != _origin(req.full_url):
            parts = urlsplit(req.full_url)
            raise OrthancError(
                f'{redact_url(parts.scheme + "://" + parts.netloc)} answered {req.get_method()} {parts.path} with '
                f'HTTP {code}, a redirect to another server ({_one_line(redact_url(newurl), 120)}): refused, the '
                'credentials are sent only to api_url (check api_url)',
                status=code,
                method=req.get_method(),
                path=parts.path,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class OrthancClient(object):
    """Talk to one Orthanc server over its REST API.

    Every request sent is counted in ``self.requests`` (``{'GET': 1, 'PUT': 2}``), retries included, so
    callers and benchmarks can prove how many calls a run cost. Connection refused and HTTP 503 are
    retried ``retries`` times with a short growing pause; every other failure raises ``OrthancError``.
    """

    def __init__(
        self,
        url=DEFAULT_URL,
        username=None,
        password=None,
        validate_certs=True,
        ca_path=None,
        timeout=30,
        retries=3,
        retry_delay=1.0,
    ):
        self.url = (url or DEFAULT_URL).rstrip('/')
        self.shown_url = redact_url(self.url)
        self.username = username
        self._password = password
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.retries = max(0, int(retries or 0))
        self.retry_delay = retry_delay
        self.requests = {}
        self._opener = None

    # -- transport --------------------------------------------------------------------------------------------
    def _ssl_context(self):
        if not self.validate_certs:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if self.ca_path:
            return ssl.create_default_context(cafile=self.ca_path)
        return ssl.create_default_context()

    def _get_opener(self):
        """The URL opener with the client's TLS settings, built once."""
        if self._opener is None:
            handlers = [_SameOriginRedirects()]
            if self.url.startswith('https:'):
                try:
                    handlers.append(HTTPSHandler(context=self._ssl_context()))
                except (OSError, ssl.SSLError) as exc:
                    raise OrthancError(f'cannot load ca_path {self.ca_path!r}: {exc}') from None
            self._opener = build_opener(*handlers)
        return self._opener

    def _transport(self, method, url, data, headers):
        """Send one HTTP request; return ``(status, body bytes)``. Raises URLError/socket errors as is.

        This and ``download`` are the only places that touch the network (unit tests replace them).
        """
        req = Request(url, data=data, headers=headers)
        req.get_method = lambda: method
        try:
            resp = self._get_opener().open(req, timeout=self.timeout)
        except HTTPError as exc:
            return exc.code, exc.read()
        try:
            return resp.getcode(), resp.read()
        finally:
            resp.close()

    def _connection_error(self, exc, method, path, attempt):
        """Map a network exception to an ``OrthancError``, or ``None`` when the request should be retried."""
        reason = getattr(exc, 'reason', None) or exc
        if isinstance(reason, ssl.SSLError) or isinstance(exc, ssl.SSLError):
            return OrthancError(
                f'TLS verification of {self.shown_url} failed: {_one_line(reason)} (set ca_path to the CA that '
                'signed the Orthanc certificate, or validate_certs=false for a test box)',
                method=method,
                path=path,
            )
        refused = isinstance(reason, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError)
        if refused and attempt <= self.retries:
            return None
        if refused:
            return OrthancError(
                f'cannot connect to Orthanc at {self.shown_url}: connection refused after {attempt} attempt(s) '
                '(is Orthanc running and is api_url right?)',
                method=method,
                path=path,
            )
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            return OrthancError(
                f'Orthanc at {self.shown_url} did not answer {method} {path} within {self.timeout} seconds '
                '(api_timeout)',
                method=method,
                path=path,
            )
        reason = _one_line(reason)
        secret = url_password(self.url)
        if secret:
            reason = reason.replace(secret, '********')
        return OrthancError(f'cannot connect to Orthanc at {self.shown_url}: {reason}', method=method, path=path)

    def _headers(self, has_body):
        headers = {'Accept': 'application/json'}
        if has_body:
            headers['Content-Type'] = 'application/json'
        if self.username:
            token = '{}:{}'.format(self.username, self._password or '')
            headers['Authorization'] = 'Basic ' + base64.b64encode(token.encode('utf-8')).decode('ascii')
        return headers

    # -- public API -------------------------------------------------------------------------------------------
    def request(self, method, path, body=None, ok=(200,), raw=None, expect=None):
        """Send ``method path`` (``path`` starts with ``/``), return the decoded JSON answer (or ``None``).

        ``body`` is JSON-encoded unless it is ``bytes`` or ``raw`` is a string (then sent as text).
        ``ok`` lists the statuses treated as success; others raise ``OrthancError``. ``expect`` is the shape
        the answer must have, see ``decode``.
        """
        url = self.url + path
        data = None
        if raw is not None:
            data = raw.encode('utf-8') if not isinstance(raw, bytes) else raw
        elif body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode('utf-8')
        headers = self._headers(data is not None)
        attempt = 0
        while True:
            attempt += 1
            self.requests[method] = self.requests.get(method, 0) + 1
            try:
                status, payload = self._transport(method, url, data, headers)
            except OrthancError:
                raise
            except (OSError, URLError) as exc:
                error = self._connection_error(exc, method, path, attempt)
                if error is None:
                    time.sleep(self.retry_delay * attempt)
                    continue
                raise error from None
            if status in RETRY_STATUSES and attempt <= self.retries:
                time.sleep(self.retry_delay * attempt)
                continue
            break
        if status == 401:
            who = (f"user '{self.username}'") if self.username else 'no credentials (api_username is not set)'
            raise OrthancError(
                f'Orthanc at {self.shown_url} answered HTTP 401 Unauthorized to {method} {path} with {who}: check '
                'api_username and api_password',
                status=status,
                method=method,
                path=path,
            )
        if status not in ok:
            raise OrthancError(
                format_orthanc_error(method, path, status, payload),
                status=status,
                method=method,
                path=path,
                body=payload,
            )
        return self.decode(method, path, payload, expect)

    def decode(self, method, path, payload, expect=None):
        """Decode the body of a successful answer: the one place that reads Orthanc's answers.

        ``expect`` says what the caller needs: ``None`` (JSON, or the text itself when it is not JSON, or
        ``None`` for an empty body), ``dict`` (a JSON object), ``list`` (a JSON array) or ``OBJECTS`` (a JSON
        object whose every entry is an object). Anything else raises a one-line ``OrthancError`` saying this is
        not an Orthanc REST API.
        """
        try:
            data = json.loads(payload.decode('utf-8')) if payload else None
            is_json = bool(payload)
        except (ValueError, UnicodeDecodeError):
            data = payload.decode('utf-8', 'replace')
            is_json = False
        if expect is None:
            return data
        if not is_json:
            got = f'text that is not JSON ({_one_line(data, 60)!r})' if payload else 'an empty body'
            raise self._not_orthanc(method, path, got, expect)
        return self.require(method, path, data, expect)

    def require(self, method, path, data, expect):
        """Return the decoded answer ``data`` of ``method path`` when it has the shape ``expect`` (see
        ``decode``); else raise the one-line ``OrthancError`` saying this is not an Orthanc REST API."""
        got = _shape_mismatch(data, expect)
        if got is None:
            return data
        raise self._not_orthanc(method, path, got, expect)

    def _not_orthanc(self, method, path, got, expect):
        return OrthancError(
            f'{self.shown_url} answered {method} {path} with {got} instead of {_EXPECTED[expect]}: this is '
            'not an Orthanc REST API (check api_url)',
            method=method,
            path=path,
        )

    def download(self, path, dest, accept='application/octet-stream', chunk=1024 * 1024):
        """Stream the binary answer of ``GET path`` into the file ``dest`` (mode 0600); return its size in bytes.

        Counted in ``requests`` like every other call. Writes ``dest + '.part'`` first and renames it, so a
        failed download never leaves a file that looks complete. Not retried: a caller downloading large
        archives decides itself whether to start again.
        """
        headers = self._headers(False)
        headers['Accept'] = accept
        self.requests['GET'] = self.requests.get('GET', 0) + 1
        try:
            resp = self._get_opener().open(Request(self.url + path, headers=headers), timeout=self.timeout)
        except HTTPError as exc:
            raise OrthancError(
                format_orthanc_error('GET', path, exc.code, exc.read()), status=exc.code, method='GET', path=path
            ) from None
        except (OSError, URLError) as exc:
            raise self._connection_error(exc, 'GET', path, self.retries + 1) from None
        part = dest + '.part'
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'wb') as handle:
                shutil.copyfileobj(resp, handle, chunk)
        finally:
            resp.close()
        os.replace(part, dest)
        return os.path.getsize(dest)

    def get(self, path, ok=(200,), expect=None):
        """GET ``path`` and return decoded JSON (of the shape ``expect``, see ``decode``)."""
        return self.request('GET', path, ok=ok, expect=expect)

    def put(self, path, body=None, ok=(200,)):
        """PUT a JSON ``body`` to ``path``."""
        return self.request('PUT', path, body=body, ok=ok)

    def post(self, path, body=None, ok=(200,), raw=None, expect=None):
        """POST a JSON ``body`` (or ``raw`` text) to ``path``."""
        return self.request('POST', path, body=body, ok=ok, raw=raw, expect=expect)

    def delete(self, path, ok=(200,), missing_ok=False):
        """DELETE ``path``; return ``True`` when Orthanc removed it.

        With ``missing_ok`` an answer 404 (nothing at ``path``, e.g. another client removed it after we read
        it) is not an error and returns ``False``: nothing was removed by this call.
        """
        try:
            self.request('DELETE', path, ok=ok)
        except OrthancError as exc:
            if missing_ok and exc.status == 404:
                return False
            raise
        return True

    @staticmethod
    def quote(name):
        """Quote one path segment (a modality or peer name)."""
        return quote(name, safe='')


def client_from_module(module):
    """Build an ``OrthancClient`` from the ``orthanc_argument_spec()`` options of an AnsibleModule."""
    p = module.params
    return OrthancClient(
        url=p['api_url'],
        username=p['api_username'],
        password=p['api_password'],
        validate_certs=p['validate_certs'],
        ca_path=p['ca_path'],
        timeout=p['api_timeout'],
        retries=p['api_retries'],
    )
