# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function


class ModuleDocFragment(object):
    # Connection options of every module talking to the Orthanc REST API.
    DOCUMENTATION = r'''
options:
  api_url:
    description:
      - Base URL of the Orthanc REST API, for example V(http://127.0.0.1:8042) or V(https://pacs.example.org).
      - Only V(http://) and V(https://) URLs with a host, an optional port (1-65535) and path are accepted; no white
        space, query or fragment. Credentials do not belong in the URL (C(user:password@) is refused, and never
        printed); use O(api_username) and O(api_password).
      - An answer that is not Orthanc's JSON (an HTML page, a redirect to one, a JSON value of the wrong shape)
        fails with a one-line message saying that this is not an Orthanc REST API.
      - If not set, the environment variable E(ORTHANC_URL) is used.
    type: str
    default: http://127.0.0.1:8042
  api_username:
    description:
      - User name for HTTP basic authentication against Orthanc (a user of C(RegisteredUsers)).
      - If not set, the environment variable E(ORTHANC_USERNAME) is used.
    type: str
  api_password:
    description:
      - Password of O(api_username). Never logged.
      - If not set, the environment variable E(ORTHANC_PASSWORD) is used.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of O(api_url) when it starts with C(https://).
      - Only set to V(false) on test boxes with self-signed certificates.
      - If not set, the environment variable E(ORTHANC_VALIDATE_CERTS) is used.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) that signed the Orthanc (or nginx) certificate.
      - If not set, the environment variable E(ORTHANC_CA_PATH) is used, else the system trust store.
    type: path
  api_timeout:
    description:
      - Seconds to wait for one answer of the REST API, from V(1) to V(3600).
      - If not set, the environment variable E(ORTHANC_TIMEOUT) is used.
    type: int
    default: 30
  api_retries:
    description:
      - How many times a request is repeated when the connection is refused or Orthanc answers HTTP 503
        (for example while it starts or just after a PostgreSQL restart). The pause grows by one second
        per attempt. From V(0) (no repetition) to V(20).
    type: int
    default: 3
notes:
  - The modules talk to Orthanc with the Python standard library only; nothing needs to be installed on the
    host that runs them.
  - Every result carries C(orthanc_requests), the number of HTTP requests sent per method.
  - A run that fails after it has already written to Orthanc reports C(changed=true) and lists the writes made
    in C(done).
  - The connection options can be set once for all modules with
    C(module_defaults) and the action group C(group/clinicpacs.orthanc.orthanc).
'''
