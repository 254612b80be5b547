"""A fake Orthanc REST API for unit tests, plugged in at the client boundary (``OrthancClient._transport``)."""

import base64
import contextlib
import json
from unittest import mock
from urllib.parse import unquote, urlsplit

from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OrthancClient


def _modality_defaults(body):
    full = {
        'Manufacturer': 'Generic',
        'LocalAet': '',
        'Timeout': 0,
        'UseDicomTls': False,
        'RetrieveMethod': 'SystemDefault',
    }
    for key in (
        'AllowEcho',
        'AllowFind',
        'AllowFindWorklist',
        'AllowGet',
        'AllowMove',
        'AllowStore',
        'AllowNAction',
        'AllowEventReport',
        'AllowTranscoding',
    ):
        full[key] = True
    full.update(body)
    return full


class FakeOrthanc:
    """Answers like Orthanc 1.12 for the routes the modules use; records every call in ``calls``."""

    def __init__(self):
        self.modalities = {}
        self.peers = {}
        self.calls = []
        self.credentials = None  # {user: password} to enforce basic auth
        self.echo_ok = True
        self.fail_next = []  # list of (status, body) answered before the normal handling
        self.fail_on = {}  # (method, path) -> (status, body) answered instead of the normal handling
        # names another client removes right after we read the list (a concurrent run deleting them first)
        self.gone_after_read = set()
        self.system = {
            'Version': '1.12.7',
            'ApiVersion': 27,
            'DatabaseBackendPlugin': '/usr/lib/orthanc/libOrthancPostgreSQLIndex.so.5.0',
            'Name': 'ORTHANC',
        }

    @property
    def writes(self):
        return [c for c in self.calls if c[0] != 'GET' and not c[1].endswith('/echo')]

    def add_modality(self, name, **body):
        self.modalities[name] = _modality_defaults(body)

    def __call__(self, client, method, url, data, headers):
        path = urlsplit(url).path
        query = urlsplit(url).query
        body = json.loads(data.decode()) if data else None
        self.calls.append((method, path + ('?' + query if query else ''), body))
        if self.credentials is not None:
            auth = headers.get('Authorization', '')
            user, _sep, password = base64.b64decode(auth[6:]).decode().partition(':') if auth else ('', '', '')
            if self.credentials.get(user) != password or not user:
                return 401, b''
        if self.fail_next:
            status, payload = self.fail_next.pop(0)
            if isinstance(payload, Exception):
                raise payload
            return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if (method, path) in self.fail_on:
            status, payload = self.fail_on[(method, path)]
            return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        parts = [unquote(p) for p in path.strip('/').split('/')]
        if parts == ['system']:
            return self._ok(self.system)
        if parts == ['plugins']:
            return self._ok(['postgresql-index'])
        if parts == ['statistics']:
            return self._ok({'CountPatients': 0})
        if parts[0] in ('modalities', 'peers'):
            store = self.modalities if parts[0] == 'modalities' else self.peers
            if len(parts) == 1 and method == 'GET':
                answer = self._ok(store)
                for gone in self.gone_after_read:
                    store.pop(gone, None)
                return answer
            name = parts[1]
            if len(parts) == 3 and parts[2] == 'echo':
                if self.echo_ok:
                    return self._ok({})
                return 500, json.dumps(
                    {'HttpStatus': 500, 'Message': 'Error in the network protocol', 'OrthancStatus': 9}
                ).encode()
            if method == 'PUT':
                if parts[0] == 'modalities':
                    store[name] = _modality_defaults(body)
                else:
                    public = {
                        'Url': body['Url'] if body['Url'].endswith('/') else body['Url'] + '/',
                        'Pkcs11': body.get('Pkcs11', False),
                        'HttpHeaders': [],
                    }
                    if body.get('Username'):
                        public['Username'] = body['Username']
                        public['Password'] = None
                    if 'Timeout' in body:
                        public['Timeout'] = body['Timeout']
                    store[name] = public
                return 200, b''
            if method == 'DELETE':
                if name not in store:
                    return 404, json.dumps({'HttpStatus': 404, 'Message': 'Unknown resource'}).encode()
                del store[name]
                return 200, b''
        return 404, json.dumps({'HttpStatus': 404, 'Message': 'Unknown resource'}).encode()

    @staticmethod
    def _ok(value):
        return 200, json.dumps(value).encode()


def install(monkeypatch, fake):
    """Route every OrthancClient request to ``fake`` and make retries instant."""

    def transport(self, method, url, data, headers):
        return fake(self, method, url, data, headers)

    monkeypatch.setattr(OrthancClient, '_transport', transport)
    monkeypatch.setattr('time.sleep', lambda _s: None)


def run_module(module, args, capsys):
    """Run ``module.main()`` with ``args``; return (failed, result dict).

    The module runs as it would on a managed node: once any test has imported controller code
    (a callback plugin, the plugin loader), ansible-core marks the process as the controller and
    module warnings would go to the controller's display instead of the module's result.
    """
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, 'is_controller', False),
        contextlib.suppress(SystemExit),
    ):
        module.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    return bool(result.get('failed')), result
