#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_info
short_description: Read the state of an Orthanc server
version_added: 0.1.0
description:
  - Returns Orthanc's version, REST API version, database backend, loaded plugins, statistics, DICOM
    modalities and peers. Only reads (C(GET)), so it is safe in check mode.
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  idempotent:
    support: full
    description: Never changes anything.
options:
  gather:
    description:
      - Which parts to read. C(system) (version, API version, database backend) is always read.
    type: list
    elements: str
    choices: [plugins, statistics, modalities, peers]
    default: [plugins, statistics, modalities, peers]
seealso:
  - module: clinicpacs.orthanc.orthanc_modality
  - module: clinicpacs.orthanc.orthanc_peer
'''

EXAMPLES = r'''
- name: What runs on the clinic PACS
  clinicpacs.orthanc.orthanc_info:
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
  register: pacs

- name: The PostgreSQL index is in use
  ansible.builtin.assert:
    that:
      - pacs.database_backend == 'PostgreSQL'
      - pacs.version is version('1.12', '>=')

- name: Only the version, cheaply
  clinicpacs.orthanc.orthanc_info:
    gather: []
'''

RETURN = r'''
version:
  description: Orthanc version.
  returned: always
  type: str
  sample: 1.12.7
api_version:
  description: Version of the REST API.
  returned: always
  type: int
  sample: 27
database_backend:
  description:
    - Database index in use, V(PostgreSQL), V(MySQL), V(ODBC) or V(SQLite) (built-in); else the plugin's path.
  returned: always
  type: str
  sample: PostgreSQL
database_backend_plugin:
  description: Path of the database index plugin (C(DatabaseBackendPlugin)); null for the built-in SQLite.
  returned: always
  type: str
  sample: /usr/lib/orthanc/libOrthancPostgreSQLIndex.so.5.0
system:
  description: The whole answer of C(GET /system).
  returned: always
  type: dict
  sample: {Name: ORTHANC, DicomAet: ORTHANC, Version: 1.12.7, ApiVersion: 27, DatabaseServerIdentifier: clinic1}
plugins:
  description: Loaded plugins (C(GET /plugins)).
  returned: when C(plugins) is gathered
  type: list
  elements: str
  sample: [explorer.js, postgresql-index]
statistics:
  description: Counts and sizes (C(GET /statistics)).
  returned: when C(statistics) is gathered
  type: dict
  sample: {CountPatients: 2, CountStudies: 3, CountSeries: 4, CountInstances: 60, TotalDiskSizeMB: 12}
modalities:
  description: DICOM devices keyed by name (C(GET /modalities?expand)).
  returned: when C(modalities) is gathered
  type: dict
  sample: {pano: {AET: PANO01, Host: 192.0.2.20, Port: 104}}
peers:
  description: Peers keyed by name (C(GET /peers?expand)); passwords are never returned by Orthanc.
  returned: when C(peers) is gathered
  type: dict
  sample: {central: {Url: "https://archive.group.example/", Username: clinic42, Password: null}}
orthanc_requests:
  description: Number of HTTP requests sent to Orthanc, by method.
  returned: always
  type: dict
  sample: {GET: 5}
'''

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OBJECTS  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import OrthancModule  # noqa: E402

PARTS = ['plugins', 'statistics', 'modalities', 'peers']
PATHS = {
    'plugins': ('/plugins', list),
    'statistics': ('/statistics', dict),
    'modalities': ('/modalities?expand', OBJECTS),
    'peers': ('/peers?expand', OBJECTS),
}


def backend_name(plugin):
    """Short name of the database index from the plugin path Orthanc reports."""
    if not plugin:
        return 'SQLite'
    for name in ('PostgreSQL', 'MySQL', 'ODBC'):
        if name.lower() in plugin.lower():
            return name
    return plugin


def main():
    om = OrthancModule({'gather': {'type': 'list', 'elements': 'str', 'default': PARTS, 'choices': PARTS}})
    system = om.call(om.client.get, '/system', expect=dict)
    result = {
        'system': system,
        'version': system.get('Version'),
        'api_version': system.get('ApiVersion'),
        'database_backend': backend_name(system.get('DatabaseBackendPlugin')),
        'database_backend_plugin': system.get('DatabaseBackendPlugin'),
    }
    for part in PARTS:
        if part in om.params['gather']:
            path, expect = PATHS[part]
            result[part] = om.call(om.client.get, path, expect=expect)
    om.exit(False, **result)


if __name__ == '__main__':
    main()
