"""The single-object and list modules document the same per-object options.

Doc fragments cannot supply the suboptions of a list, so orthanc_modalities/orthanc_peers repeat the options
of orthanc_modality/orthanc_peer in their DOCUMENTATION. This test keeps the two from drifting apart: the
same option names with the same type, choices, default, required flag, no_log and elements (descriptions
may be worded for their context).
"""

import pytest
import yaml
from ansible_collections.clinicpacs.orthanc.plugins.modules import (
    orthanc_modalities,
    orthanc_modality,
    orthanc_peer,
    orthanc_peers,
)

COMPARED = ('type', 'choices', 'default', 'required', 'no_log', 'elements', 'aliases')
# Options of the single module that act on the call, not on the object (the list module has them at its top).
CALL_OPTIONS = {'echo', 'echo_failure'}


def options(module):
    return yaml.safe_load(module.DOCUMENTATION)['options']


@pytest.mark.parametrize(
    'single, listed, key',
    [(orthanc_modality, orthanc_modalities, 'modalities'), (orthanc_peer, orthanc_peers, 'peers')],
    ids=['modalities', 'peers'],
)
def test_list_suboptions_match_the_single_module(single, listed, key):
    one = {name: spec for name, spec in options(single).items() if name not in CALL_OPTIONS}
    many = options(listed)[key]['suboptions']
    assert sorted(one) == sorted(many)
    for name, spec in one.items():
        assert {k: spec.get(k) for k in COMPARED} == {k: many[name].get(k) for k in COMPARED}, name
