# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTTPS front (roles/pacs/templates/orthanc.conf.j2) served by a real nginx 1.26, probed from the host.

The client allows every protocol version and suite (OpenSSL security level 0), so only the server can refuse.
"""

from __future__ import annotations

import re
import socket
import ssl
import warnings

import pytest
import requests

from .conftest import NGINX_IMAGE, docker

# The certificate is a throw-away one: nothing to verify.
pytestmark = pytest.mark.filterwarnings('ignore:Unverified HTTPS request')


def handshake(ip: str, version: ssl.TLSVersion, ciphers: str = 'DEFAULT:@SECLEVEL=0') -> tuple[str, str]:
    """A TLS handshake at exactly ``version``; returns (protocol, suite) or raises ssl.SSLError/OSError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():  # TLSv1 and TLSv1_1 are deprecated names: offering them is the point
        warnings.simplefilter('ignore', DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    with socket.create_connection((ip, 8443), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        return tls.version(), tls.cipher()[0]


def refused(ip: str, version: ssl.TLSVersion, ciphers: str = 'DEFAULT:@SECLEVEL=0') -> str | None:
    """None when the server refuses the handshake, else what it agreed to."""
    try:
        return ' '.join(handshake(ip, version, ciphers))
    except (ssl.SSLError, ConnectionResetError):
        return None


def test_tls_1_2_or_newer_only(nginx):
    agreed = {v.name: refused(nginx.ip, v) for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)}
    assert agreed == {'TLSv1': None, 'TLSv1_1': None}, f'nginx accepted an old TLS version: {agreed}'
    assert handshake(nginx.ip, ssl.TLSVersion.TLSv1_2)[0] == 'TLSv1.2'
    assert handshake(nginx.ip, ssl.TLSVersion.TLSv1_3)[0] == 'TLSv1.3'


# TLS 1.2 suites a clinic front must not agree to: CBC mode with SHA-1 or SHA-2 MACs (the server key is ECDSA, as
# the role's, so these are the weak suites it could negotiate; suites without forward secrecy need an RSA key).
WEAK_SUITES = [
    'ECDHE-ECDSA-AES128-SHA',
    'ECDHE-ECDSA-AES256-SHA',
    'ECDHE-ECDSA-AES128-SHA256',
    'ECDHE-ECDSA-AES256-SHA384',
]


@pytest.mark.parametrize('suite', ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305'])
def test_strong_suites_are_offered(nginx, suite):
    assert handshake(nginx.ip, ssl.TLSVersion.TLSv1_2, suite) == ('TLSv1.2', suite)


def test_only_forward_secret_aead_suites(nginx):
    agreed = {suite: refused(nginx.ip, ssl.TLSVersion.TLSv1_2, f'{suite}:@SECLEVEL=0') for suite in WEAK_SUITES}
    accepted = {suite: got for suite, got in agreed.items() if got}
    assert not accepted, f'nginx agreed to weak TLS 1.2 suites: {accepted}'


def test_hsts_header(nginx):
    response = requests.get(nginx.https + '/', verify=False, timeout=10)  # noqa: S501 (throw-away certificate)
    hsts = response.headers.get('Strict-Transport-Security', '')
    age = re.search(r'max-age=(\d+)', hsts)
    assert age, f'no HSTS header (Strict-Transport-Security: {hsts!r}) on {response.status_code}'
    assert int(age.group(1)) >= 180 * 24 * 3600, f'HSTS max-age below 180 days: {hsts!r}'


def test_content_type_and_framing_headers(nginx):
    response = requests.get(nginx.https + '/', verify=False, timeout=10)  # noqa: S501 (throw-away certificate)
    nosniff, frames = response.headers.get('X-Content-Type-Options'), response.headers.get('X-Frame-Options')
    assert nosniff == 'nosniff', f'X-Content-Type-Options is {nosniff!r}, not nosniff'
    assert frames in ('SAMEORIGIN', 'DENY'), f'X-Frame-Options is {frames!r}: other sites may frame the interface'


def test_no_server_version_leak(nginx):
    # An error nginx makes itself (the upstream is absent: 502) and a plain-HTTP answer.
    for url in (nginx.https + '/', nginx.http + '/'):
        response = requests.get(url, verify=False, timeout=10, allow_redirects=False)  # noqa: S501 (same)
        server = response.headers.get('Server', '')
        assert not re.search(r'\d', server), f'{url}: Server header shows the version: {server!r}'
        assert not re.search(r'nginx/\d', response.text), f'{url}: the page shows the version'


def test_plain_http_only_redirects_to_https(nginx):
    response = requests.get(nginx.http + '/system?x=1', timeout=10, allow_redirects=False)
    assert response.status_code == 301, f'plain HTTP answered {response.status_code}, not a redirect'
    assert response.headers['Location'] == f'https://{nginx.ip}/system?x=1'


def test_site_loads_with_the_images_own_nginx_conf(nginx):
    """The tests above run nginx with an official-like nginx.conf; the image's own (Debian's, with server_tokens
    and ssl_protocols in its http block, where the site is included) must load the site as well: a directive
    the site repeated at that level would be a duplicate that stops nginx in every clinic on Debian's nginx."""
    res = docker(
        'run', '--rm', '--network', 'none', '--add-host', 'orthanc:127.0.0.1',
        '-v', f'{nginx.site}:/etc/nginx/conf.d:ro', '-v', f'{nginx.tls}:/etc/nginx/tls:ro',
        '--entrypoint', 'nginx', NGINX_IMAGE, '-t', check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
