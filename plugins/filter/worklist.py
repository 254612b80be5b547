# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter that reads a practice's appointments export (CSV or JSON) into worklist entries."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_worklist import (
    WorklistError,
    parse_appointments,
)


def worklist_appointments(text, format='csv', columns=None, defaults=None, delimiter=None):
    """Return {'entries': [...], 'errors': [{'row': n, 'reason': '...'}]} for an export's text."""
    if not isinstance(text, str):
        raise AnsibleFilterError(f'worklist_appointments expects the text of the export, got {type(text).__name__}')
    try:
        return parse_appointments(text, fmt=format, columns=columns, defaults=defaults, delimiter=delimiter)
    except WorklistError as exc:
        raise AnsibleFilterError(f'worklist_appointments: {exc}') from None


class FilterModule:
    """clinicpacs.orthanc filters."""

    def filters(self):
        return {'worklist_appointments': worklist_appointments}
