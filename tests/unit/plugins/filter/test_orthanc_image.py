# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pacs role's image step: parsing what an image reports, and the version gate, with the real output of
the images (roles/pacs/files/orthanc-image-facts.sh run in clinicpacs/orthanc:1.13.0, 1.12.7 and 1.10.1 and
in the two layout stand-ins of tests/images), and the role's own defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.clinicpacs.orthanc.plugins.filter.orthanc_image import (
    ORTHANCTEAM_RELEASES,
    FilterModule,
    orthanc_image_facts,
    orthanc_image_gate,
    orthanc_image_reference,
    orthanc_release_version,
)

ROLE = Path(__file__).resolve().parents[4] / 'roles' / 'pacs'
DIGEST = 'sha256:' + 'ab' * 32

# What the script printed, verbatim, for each layout (Orthanc asked through its absolute path prints it).
DEBIAN_1_13_0 = """binary=/usr/sbin/Orthanc
version=/usr/sbin/Orthanc 1.13.0
bash=/usr/bin/bash
plugin=/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so
plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
"""
DEBIAN_1_10_1 = DEBIAN_1_13_0.replace('1.13.0', '1.10.1')
TEAM_LAYOUT = """binary=/usr/local/bin/Orthanc
version=/usr/local/bin/Orthanc 1.13.0
bash=/usr/bin/bash
plugin=/usr/share/orthanc/plugins-available/libOrthancPostgreSQLIndex.so
plugin=/usr/share/orthanc/plugins-available/libOrthancDicomWeb.so
"""
PLUGINS_LAYOUT = """binary=/usr/local/sbin/Orthanc
version=/usr/local/sbin/Orthanc 1.13.0
bash=/usr/bin/bash
plugin=/usr/local/share/orthanc/plugins/libOrthancPostgreSQLIndex.so
plugin=/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so
"""


def defaults() -> dict:
    return yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())


@pytest.mark.parametrize(
    ('output', 'binary', 'folder'),
    [
        (DEBIAN_1_13_0, '/usr/sbin/Orthanc', '/usr/share/orthanc/plugins'),
        (TEAM_LAYOUT, '/usr/local/bin/Orthanc', '/usr/share/orthanc/plugins-available'),
        (PLUGINS_LAYOUT, '/usr/local/sbin/Orthanc', '/usr/local/share/orthanc/plugins'),
    ],
    ids=['debian', 'orthancteam', 'orthanc-plugins'],
)
def test_facts_of_each_layout_pass_the_default_gate(output, binary, folder):
    facts = orthanc_image_facts(output)
    assert facts['binary'] == binary
    assert facts['version'] == '1.13.0'
    assert facts['plugins'] == [f'{folder}/libOrthancPostgreSQLIndex.so', f'{folder}/libOrthancDicomWeb.so']
    assert facts['missing'] == []
    assert orthanc_image_gate(facts, defaults()['pacs_orthanc_minimum_version']) == {
        'passed': True,
        'problems': [],
        'warnings': [],
    }


def test_the_default_image_passes_the_default_gate_without_override():
    """Acceptance of issue 13: the role's defaults, no override, the default tag's Orthanc (release notes)."""
    d = defaults()
    assert d['pacs_orthanc_allow_below_minimum'] is False
    version = orthanc_release_version(d['pacs_orthanc_image'])
    assert version == '1.13.0', d['pacs_orthanc_image']
    facts = orthanc_image_facts(TEAM_LAYOUT.replace('1.13.0', version))
    gate = orthanc_image_gate(facts, d['pacs_orthanc_minimum_version'], d['pacs_orthanc_allow_below_minimum'])
    assert gate['passed'], gate
    # The argument spec documents the same defaults.
    spec = yaml.safe_load((ROLE / 'meta' / 'argument_specs.yml').read_text())['argument_specs']['main']['options']
    for key in ('pacs_orthanc_image', 'pacs_orthanc_minimum_version', 'pacs_orthanc_plugins'):
        assert spec[key]['default'] == d[key], key


def test_the_old_default_and_older_releases_are_refused():
    minimum = defaults()['pacs_orthanc_minimum_version']
    for tag in ('25.1.1', '26.4.0'):
        version = orthanc_release_version(f'orthancteam/orthanc:{tag}')
        gate = orthanc_image_gate(orthanc_image_facts(TEAM_LAYOUT.replace('1.13.0', version)), minimum)
        assert not gate['passed']
        assert gate['problems'] == [f'it has Orthanc {version}, older than the minimum {minimum}']


def test_below_minimum_is_a_warning_only_with_the_override():
    facts = orthanc_image_facts(DEBIAN_1_10_1)
    refused = orthanc_image_gate(facts, '1.13.0')
    assert refused['problems'] == ['it has Orthanc 1.10.1, older than the minimum 1.13.0']
    allowed = orthanc_image_gate(facts, '1.13.0', True)
    assert allowed == {
        'passed': True,
        'problems': [],
        'warnings': ['it has Orthanc 1.10.1, older than the minimum 1.13.0'],
    }


@pytest.mark.parametrize(
    ('version', 'minimum', 'passed'),
    [
        ('1.13.0', '1.13.0', True),
        ('1.12.11', '1.13.0', False),
        ('1.12.11', '1.12.9', True),  # numeric, not text: 11 > 9
        ('1.9.7', '1.10.1', False),
        ('2.0.0', '1.13.0', True),
    ],
)
def test_versions_compare_as_numbers(version, minimum, passed):
    facts = orthanc_image_facts(f'binary=/usr/sbin/Orthanc\nversion=Orthanc {version}\nbash=/bin/bash\n')
    assert orthanc_image_gate(facts, minimum)['passed'] is passed


def test_an_unreadable_version_is_refused_and_named():
    facts = orthanc_image_facts('binary=/usr/sbin/Orthanc\nversion=Orthanc mainline\nbash=/bin/bash\n')
    assert facts['version'] == 'unknown'
    assert orthanc_image_gate(facts, '1.13.0')['problems'] == [
        'its Orthanc version could not be read (Orthanc mainline)'
    ]


def test_a_broken_image_names_each_cause():
    output = 'binary=\nmissing=libOrthancPostgreSQLIndex.so\n'
    gate = orthanc_image_gate(orthanc_image_facts(output), '1.13.0', True)
    assert not gate['passed']
    assert gate['problems'] == [
        'no Orthanc binary in the image (looked on PATH and in /usr/local/bin, /usr/local/sbin, /usr/sbin, /usr/bin)',
        'plugin libOrthancPostgreSQLIndex.so is not in the image, or not readable by the user that runs Orthanc',
        'no bash in the image: the health check of the Orthanc container needs it',
    ]


def test_facts_ignore_noise_lines():
    facts = orthanc_image_facts('WARNING: something\n' + DEBIAN_1_13_0)
    assert facts['version'] == '1.13.0'


@pytest.mark.parametrize(
    ('image', 'expected'),
    [
        ('orthancteam/orthanc:26.8.1', ('orthancteam/orthanc', '26.8.1', '')),
        (f'orthancteam/orthanc@{DIGEST}', ('orthancteam/orthanc', '', DIGEST)),
        (f'orthancteam/orthanc:26.8.1@{DIGEST}', ('orthancteam/orthanc', '26.8.1', DIGEST)),
        ('registry.example.net:5000/msp/orthanc:1.13.0', ('registry.example.net:5000/msp/orthanc', '1.13.0', '')),
        ('postgres', ('postgres', '', '')),
    ],
)
def test_image_references_with_tags_and_digests(image, expected):
    ref = orthanc_image_reference(image)
    assert (ref['name'], ref['tag'], ref['digest']) == expected


@pytest.mark.parametrize(
    'image',
    ['', 'Orthancteam/orthanc:1', 'orthanc:', 'orthanc@sha256:abc', 'orthanc@md5:' + 'a' * 32, 'a b', 'orthanc:1 '],
)
def test_bad_image_references_are_named(image):
    with pytest.raises(AnsibleFilterError, match=f"image reference '{image}' is not valid"):
        orthanc_image_reference(image)


def test_release_table_by_tag_with_or_without_digest():
    assert orthanc_release_version(f'orthancteam/orthanc:26.8.1@{DIGEST}') == '1.13.0'
    assert orthanc_release_version('docker.io/orthancteam/orthanc:25.1.1') == '1.12.6'
    assert orthanc_release_version('orthancteam/orthanc:99.1.1') == ''
    assert orthanc_release_version('clinicpacs/orthanc:1.13.0') == ''
    assert set(ORTHANCTEAM_RELEASES) >= {'25.1.1', '26.8.1'}


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {
        'orthanc_image_reference',
        'orthanc_release_version',
        'orthanc_image_facts',
        'orthanc_image_gate',
    }


def test_bad_arguments():
    with pytest.raises(AnsibleFilterError, match='expects the text'):
        orthanc_image_facts(None)
    with pytest.raises(AnsibleFilterError, match=r"minimum version '1\.13' is not a version"):
        orthanc_image_gate(orthanc_image_facts(DEBIAN_1_13_0), '1.13')
