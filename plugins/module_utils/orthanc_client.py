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
import shutil
import ssl
import time

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote
from ansible.module_utils.six.moves.urllib.request import HTTPSHandler, Request, build_opener

DEFAULT_URL = 'http://127.0.0.1:8042'
RETRY_STATUSES = (503,)


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
            handlers = []
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
                f'TLS verification of {self.url} failed: {_one_line(reason)} (set ca_path to the CA that '
                'signed the Orthanc certificate, or validate_certs=false for a test box)',
                method=method,
                path=path,
            )
        refused = isinstance(reason, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError)
        if refused and attempt <= self.retries:
            return None
        if refused:
            return OrthancError(
                f'cannot connect to Orthanc at {self.url}: connection refused after {attempt} attempt(s) '
                '(is Orthanc running and is api_url right?)',
                method=method,
                path=path,
            )
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            return OrthancError(
                f'Orthanc at {self.url} did not answer {method} {path} within {self.timeout} seconds (api_timeout)',
                method=method,
                path=path,
            )
        return OrthancError(f'cannot connect to Orthanc at {self.url}: {_one_line(reason)}', method=method, path=path)

    def _headers(self, has_body):
        headers = {'Accept': 'application/json'}
        if has_body:
            headers['Content-Type'] = 'application/json'
        if self.username:
            token = '{}:{}'.format(self.username, self._password or '')
            headers['Authorization'] = 'Basic ' + base64.b64encode(token.encode('utf-8')).decode('ascii')
        return headers

    # -- public API -------------------------------------------------------------------------------------------
    def request(self, method, path, body=None, ok=(200,), raw=None):
        """Send ``method path`` (``path`` starts with ``/``), return the decoded JSON answer (or ``None``).

        ``body`` is JSON-encoded unless it is ``bytes`` or ``raw`` is a string (then sent as text).
        ``ok`` lists the statuses treated as success; others raise ``OrthancError``.
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
                f'Orthanc at {self.url} answered HTTP 401 Unauthorized to {method} {path} with {who}: check '
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
        if not payload:
            return None
        try:
            return json.loads(payload.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            return payload.decode('utf-8', 'replace')

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

    def get(self, path, ok=(200,)):
        """GET ``path`` and return decoded JSON."""
        return self.request('GET', path, ok=ok)

    def put(self, path, body=None, ok=(200,)):
        """PUT a JSON ``body`` to ``path``."""
        return self.request('PUT', path, body=body, ok=ok)

    def post(self, path, body=None, ok=(200,), raw=None):
        """POST a JSON ``body`` (or ``raw`` text) to ``path``."""
        return self.request('POST', path, body=body, ok=ok, raw=raw)

    def delete(self, path, ok=(200,)):
        """DELETE ``path``."""
        return self.request('DELETE', path, ok=ok)

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
