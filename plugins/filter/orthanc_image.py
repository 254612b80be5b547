# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the pacs role's image step: what an Orthanc image holds, and whether the role may deploy it.

The role runs roles/pacs/files/orthanc-image-facts.sh in a throw-away container of the image; these filters
read its output and apply the version gate, so the same logic serves the role, drift.yml and qualify_image.yml
and is unit tested with the real output of the images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.compat.version import LooseVersion

# Orthanc inside each orthancteam/orthanc release (orthanc-server/orthanc-builder,
# release-notes-docker-images.md). Used to name the version of a tag before its image is on the box (check
# mode on a new clinic, the documentation); a pulled image is always asked itself.
ORTHANCTEAM_RELEASES = {
    '25.1.1': '1.12.6',
    '26.4.0': '1.12.11',
    '26.8.0': '1.13.0',
    '26.8.1': '1.13.0',
}

# name[:tag][@sha256:<64 hex>], the forms Docker accepts for a pinned image.
IMAGE_REFERENCE = re.compile(
    r'^(?P<name>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?'
    r'(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)'
    r'(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?'
    r'(?:@(?P<digest>sha256:[0-9a-f]{64}))?$'
)
VERSION = re.compile(r'(?:^|/)Orthanc ([0-9]+\.[0-9]+\.[0-9]+)\s*$')


def orthanc_image_reference(image):
    """Split an image reference into name, tag and digest; an AnsibleFilterError names what is wrong."""
    if not isinstance(image, str):
        raise AnsibleFilterError(f'image reference must be a string, got {type(image).__name__}')
    match = IMAGE_REFERENCE.match(image)
    if not match or len(image) > 255:
        raise AnsibleFilterError(
            f"image reference '{image}' is not valid: expected name[:tag][@sha256:<64 hex digits>], "
            'lower-case name, e.g. orthancteam/orthanc:26.8.1 or orthancteam/orthanc@sha256:...'
        )
    return {'name': match.group('name'), 'tag': match.group('tag') or '', 'digest': match.group('digest') or ''}


def orthanc_release_version(image):
    """Orthanc version of a known orthancteam/orthanc tag, or '' when the tag is not in the table."""
    ref = orthanc_image_reference(image)
    if ref['name'] not in ('orthancteam/orthanc', 'docker.io/orthancteam/orthanc'):
        return ''
    return ORTHANCTEAM_RELEASES.get(ref['tag'], '')


def orthanc_image_facts(output):
    """Parse the key=value lines of orthanc-image-facts.sh."""
    if not isinstance(output, str):
        kind = type(output).__name__
        raise AnsibleFilterError(f'orthanc_image_facts expects the text the script printed, got {kind}')
    facts = {'binary': '', 'version': 'unknown', 'version_line': '', 'bash': '', 'plugins': [], 'missing': []}
    for line in output.splitlines():
        key, sep, value = line.partition('=')
        if not sep:
            continue
        value = value.strip()
        if key in ('binary', 'bash'):
            facts[key] = value
        elif key == 'version':
            facts['version_line'] = value
            match = VERSION.search(value)
            facts['version'] = match.group(1) if match else 'unknown'
        elif key == 'plugin':
            facts['plugins'].append(value)
        elif key == 'missing':
            facts['missing'].append(value)
    return facts


def orthanc_image_gate(facts, minimum, allow_below_minimum=False):
    """Decide whether the role may deploy an image: {'passed', 'problems', 'warnings'}.

    Problems are one line each and name the cause. An Orthanc older than ``minimum`` (or of unknown version)
    is a problem unless ``allow_below_minimum``, then a warning. A missing binary, plugin or shell is always a
    problem: the stack could not start.
    """
    if not isinstance(facts, Mapping):
        kind = type(facts).__name__
        raise AnsibleFilterError(f'orthanc_image_gate expects the facts of orthanc_image_facts, got {kind}')
    minimum = str(minimum)
    if not re.fullmatch(r'[0-9]+\.[0-9]+\.[0-9]+', minimum):
        raise AnsibleFilterError(f"minimum version '{minimum}' is not a version like 1.13.0")
    problems, warnings = [], []
    if not facts.get('binary'):
        problems.append(
            'no Orthanc binary in the image '
            '(looked on PATH and in /usr/local/bin, /usr/local/sbin, /usr/sbin, /usr/bin)'
        )
    version = facts.get('version') or 'unknown'
    if version == 'unknown':
        below = f"its Orthanc version could not be read ({facts.get('version_line') or 'no output'})"
    elif LooseVersion(version) < LooseVersion(minimum):
        below = f'it has Orthanc {version}, older than the minimum {minimum}'
    else:
        below = ''
    if below and facts.get('binary'):
        (warnings if allow_below_minimum else problems).append(below)
    for name in facts.get('missing') or []:
        problems.append(f'plugin {name} is not in the image, or not readable by the user that runs Orthanc')
    if not facts.get('bash'):
        problems.append('no bash in the image: the health check of the Orthanc container needs it')
    return {'passed': not problems, 'problems': problems, 'warnings': warnings}


class FilterModule:
    """clinicpacs.orthanc image filters."""

    def filters(self):
        return {
            'orthanc_image_reference': orthanc_image_reference,
            'orthanc_release_version': orthanc_release_version,
            'orthanc_image_facts': orthanc_image_facts,
            'orthanc_image_gate': orthanc_image_gate,
        }
