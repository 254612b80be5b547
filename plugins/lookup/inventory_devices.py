# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: inventory_devices
version_added: 0.1.0
author: clinicpacs.orthanc developers (@clinicpacs)
short_description: Plan the change of a clinic's C(pacs_devices) in its inventory files (reads only)
description:
  - Finds the file of the clinic's inventory that sets C(pacs_devices) (under C(host_vars/<clinic>) next to the
    inventory) and computes its new text with one device added, changed or removed. It writes nothing;
    C(playbooks/add_device.yml) and C(remove_device.yml) write the result with M(ansible.builtin.copy), so check
    mode and C(--diff) behave as for any file, or print it as a patch.
  - "Where: the one plain file under C(host_vars/<clinic>/) (or C(host_vars/<clinic>[.yml|.yaml])) that sets
    C(pacs_devices). When none does (the list comes from group_vars or the inventory file), the clinic's current
    list is copied into a new file C(host_vars/<clinic>/devices.yml), or appended to the plain
    C(host_vars/<clinic>) file, so that this clinic's list no longer depends on its groups."
  - "How: a text edit of that block, not a YAML rewrite (ruamel.yaml is not a dependency of the control
    node): comments, order and every other line of the file stay as they are; the entry of the device is
    rendered anew. The new text is parsed again and must give exactly the expected C(pacs_devices) and the
    same other variables, or the lookup refuses."
  - It refuses, naming the file and the rule, vaulted files (C($ANSIBLE_VAULT) or an inline C(!vault) value),
    a C(pacs_devices) set in more than one file, and a C(pacs_devices) that is not a block list.
options:
  _terms:
    description: The clinic (inventory host name).
    required: true
    type: list
    elements: str
  device:
    description:
      - The device entry to write (a mapping with at least C(name)), as it goes into the inventory. Omit with
        O(state=absent).
    type: dict
  name:
    description: Name of the device to remove (O(state=absent)); defaults to C(device.name).
    type: str
  state:
    description: Whether the device is in the list afterwards.
    type: str
    choices: [present, absent]
    default: present
  current:
    description:
      - The clinic's current C(pacs_devices) (from its variables). Copied into the new file when no host_vars
        file sets C(pacs_devices).
    type: list
    elements: dict
    default: []
  inventory_dir:
    description: The clinic's inventory directory; defaults to the clinic's C(inventory_dir).
    type: path
"""

EXAMPLES = r"""
- name: Plan the inventory change of one device
  ansible.builtin.set_fact:
    plan: >-
      {{ query('clinicpacs.orthanc.inventory_devices', inventory_hostname, device=device,
               current=pacs_devices) | first }}

- name: Write it (check mode and --diff as for any file)
  ansible.builtin.copy:
    content: "{{ plan.after }}"
    dest: "{{ plan.path }}"
    mode: "{{ plan.mode }}"
  delegate_to: localhost
  when: plan.changed
"""

RETURN = r"""
_raw:
  description: One plan.
  type: list
  elements: dict
  contains:
    path:
      description: The file to write (absolute); empty when nothing changes and no file sets the list.
      type: str
    relpath:
      description: The same path relative to the inventory directory (as in the patch).
      type: str
    action:
      description: C(edit) (the file sets pacs_devices), C(append) (added to a host_vars file), C(create) (new
        file), C(none) (nothing to change).
      type: str
    changed:
      description: Whether the text changes.
      type: bool
    before:
      description: The file's text now (empty for a new file).
      type: str
    after:
      description: The file's new text.
      type: str
    mode:
      description: The file's mode (kept), C(0640) for a new file.
      type: str
    patch:
      description: The change as a unified diff, C(a/) and C(b/) relative to the inventory directory.
      type: str
"""

import difflib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402

import yaml  # noqa: E402
from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

VAR = 'pacs_devices'
VAR_EXTENSIONS = ('', '.yml', '.yaml', '.json')
NEW_FILE = 'devices.yml'
NEW_FILE_HEADER = (
    '# Devices of this clinic: the inventory is the only truth. playbooks/add_device.yml and remove_device.yml\n'
    '# edit this list (comments and order are kept); edit it by hand as well. Rights not granted here\n'
    '# (allow_find, allow_move, ...) are off: a device may echo and store only.\n'
)
KEY_LINE = re.compile(r'^pacs_devices:[ \t]*(#.*)?$')
EMPTY_LINE = re.compile(r'^pacs_devices:[ \t]*\[\][ \t]*(#.*)?$')
ITEM_LINE = re.compile(r'^([ \t]*)-([ \t]|$)')


class InventoryEditError(Exception):
    """The inventory cannot be changed safely; the message names the file and the rule."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that reads Ansible's !unsafe tag (and any other local tag) as a tagged value."""


def _tagged(loader, suffix, node):
    value = loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    return ('!' + suffix, value)


_Loader.add_multi_constructor('!', _tagged)


def is_vaulted(text):
    """A whole vaulted file or one with an inline vaulted value."""
    return text.lstrip().startswith('$ANSIBLE_VAULT') or re.search(r'!vault\b', text) is not None


def parse(text, path):
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InventoryEditError(f'{path} is not valid YAML: {str(exc).splitlines()[0]}') from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InventoryEditError(f'{path} does not hold variables (a mapping at the top)')
    return doc


def plain(value):
    """Ansible's variable types (tagged or unsafe strings) as plain Python data."""
    return json.loads(json.dumps(value))


def render_item(device, indent):
    text = yaml.safe_dump([device], sort_keys=False, default_flow_style=False, allow_unicode=True, width=100000)
    return [' ' * indent + line + '\n' for line in text.splitlines()]


def render_block(devices):
    lines = ['pacs_devices:\n']
    if not devices:
        return ['pacs_devices: []\n']
    for device in devices:
        lines += render_item(device, 2)
    return lines


def _neutral(line):
    stripped = line.strip()
    return not stripped or stripped.startswith('#')


def edit_block(text, name, device, path='the file'):
    """Change ``pacs_devices`` of ``text`` (a file that sets it as a block list): replace or append the entry
    ``device`` (state present) or remove the entry called ``name`` (``device`` None). Returns the new text;
    every line outside the device's own entry stays as it is. A removed entry takes the comment lines
    directly above it (no blank line between) along."""
    doc = parse(text, path)
    if VAR not in doc:
        raise InventoryEditError(f'{path} does not set {VAR}')
    current = doc[VAR] if doc[VAR] is not None else []
    if not isinstance(current, list) or not all(isinstance(d, dict) for d in current):
        raise InventoryEditError(f'{VAR} in {path} is not a list of mappings')
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith('\n'):
        lines[-1] += '\n'
    keys = [i for i, line in enumerate(lines) if KEY_LINE.match(line) or EMPTY_LINE.match(line)]
    if len(keys) != 1:
        raise InventoryEditError(
            f"{VAR} in {path} is not written as a block list ('{VAR}:' at the start of a line, then one '- ' "
            f"entry per device, or '{VAR}: []'): write it so once, or move it to host_vars/<clinic>/{NEW_FILE}"
        )
    key = keys[0]
    end = key + 1
    last = key  # the last line with content of the block
    while end < len(lines):
        line = lines[end]
        if not _neutral(line) and not line[0].isspace() and not line.startswith('-'):
            break
        if not _neutral(line):
            last = end
        end += 1
    starts = []
    indent = None
    for i in range(key + 1, last + 1):
        match = ITEM_LINE.match(lines[i])
        if match and (indent is None or len(match.group(1)) == indent):
            indent = len(match.group(1)) if indent is None else indent
            starts.append(i)
    if EMPTY_LINE.match(lines[key]):
        starts = []
    if len(starts) != len(current):
        raise InventoryEditError(
            f'{VAR} in {path}: found {len(starts)} entries in the text but {len(current)} in the YAML (flow style '
            "or nested lists?): write one '- ' entry per device"
        )
    spans = []
    for n, start in enumerate(starts):
        stop = starts[n + 1] if n + 1 < len(starts) else last + 1
        while stop > start + 1 and _neutral(lines[stop - 1]):
            stop -= 1
        spans.append((start, stop))
    names = [str(d.get('name')) for d in current]
    index = names.index(name) if name in names else None
    expected = [dict(d) for d in current]
    new = list(lines)
    if device is not None:
        if index is not None:
            if current[index] == device:
                return text
            start, stop = spans[index]
            new[start:stop] = render_item(device, indent)
            expected[index] = device
        elif starts:
            stop = spans[-1][1]
            new[stop:stop] = render_item(device, indent)
            expected.append(device)
        else:
            comment = EMPTY_LINE.match(lines[key]).group(1) or KEY_LINE.match(lines[key]).group(1)
            head = f'{VAR}:' + (f'  {comment}' if comment else '') + '\n'
            new[key : key + 1] = [head, *render_item(device, 2)]
            expected.append(device)
    else:
        if index is None:
            return text
        start, stop = spans[index]
        while (
            start > key + 1
            and lines[start - 1].strip().startswith('#')
            and (len(lines[start - 1]) - len(lines[start - 1].lstrip()) == indent)
        ):
            start -= 1
        del new[start:stop]
        del expected[index]
        if not expected:
            comment = KEY_LINE.match(lines[key]).group(1)
            new[key] = f'{VAR}: []' + (f'  {comment}' if comment else '') + '\n'
    result = ''.join(new)
    check(text, result, expected, path)
    return result


def check(before, after, expected, path):
    """The new text must set exactly ``expected`` and leave every other variable as it was."""
    old, new = parse(before, path) if before else {}, parse(after, path)
    others_old = {k: v for k, v in old.items() if k != VAR}
    others_new = {k: v for k, v in new.items() if k != VAR}
    if others_old != others_new or (new.get(VAR) or []) != expected:
        raise InventoryEditError(f'editing {VAR} in {path} would not give the expected result: change it by hand')


def change_list(devices, name, device):
    devices = [dict(d) for d in devices]
    names = [str(d.get('name')) for d in devices]
    if device is None:
        return [d for d in devices if str(d.get('name')) != name]
    if name in names:
        devices[names.index(name)] = device
    else:
        devices.append(device)
    return devices


def _var_files(hv_dir, host):
    files = []
    host_dir = os.path.join(hv_dir, host)
    if os.path.isdir(host_dir):
        for entry in sorted(os.listdir(host_dir)):
            full = os.path.join(host_dir, entry)
            if entry.startswith('.') or entry.endswith('~') or not os.path.isfile(full):
                continue
            if os.path.splitext(entry)[1] in VAR_EXTENSIONS:
                files.append(full)
    for ext in VAR_EXTENSIONS:
        full = os.path.join(hv_dir, host + ext)
        if os.path.isfile(full):
            files.append(full)
    return files


def _read(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def plan(inventory_dir, host, name, device, current, load_vaulted=None):
    """The plan for one clinic: where and what to write. ``load_vaulted(path)`` decrypts a vaulted file (only
    to learn whether it sets pacs_devices; it is never written)."""
    if not inventory_dir or not os.path.isdir(inventory_dir):
        raise InventoryEditError(
            f"the inventory directory of {host} ('{inventory_dir}') is not a directory on the control node: "
            'add_device.yml and remove_device.yml need a file inventory (or use inventory_patch=true)'
        )
    hv_dir = os.path.join(inventory_dir, 'host_vars')
    definers, vaulted, plain_files = [], [], []
    for path in _var_files(hv_dir, host):
        text = _read(path)
        if text.lstrip().startswith('$ANSIBLE_VAULT'):
            vaulted.append(path)
            doc = load_vaulted(path) if load_vaulted else None
            if isinstance(doc, dict) and VAR in doc:
                raise InventoryEditError(
                    f'{VAR} of {host} is set in the vaulted file {path}: vaulted files are never written. Move '
                    f'{VAR} to a plain file such as {os.path.join(hv_dir, host, NEW_FILE)}'
                )
            continue
        if VAR in parse(text, path):
            definers.append((path, text))
        else:
            plain_files.append((path, text))
    if len(definers) > 1:
        raise InventoryEditError(
            f'{VAR} of {host} is set in more than one file ({", ".join(p for p, _t in definers)}): keep it in one'
        )
    device = plain(device) if device is not None else None
    if definers:
        path, text = definers[0]
        if is_vaulted(text):
            raise InventoryEditError(
                f'{path} sets {VAR} and holds an inline vaulted value (!vault): vaulted files are never written. '
                f'Move {VAR} to a plain file such as {os.path.join(hv_dir, host, NEW_FILE)}'
            )
        after = edit_block(text, name, device, path)
        return _result(inventory_dir, path, 'edit', text, after)
    devices = plain(current or [])
    wanted = change_list(devices, name, device)
    if wanted == devices:
        return _result(inventory_dir, '', 'none', '', '')
    host_dir = os.path.join(hv_dir, host)
    host_files = [(p, t) for p, t in plain_files if os.path.dirname(p) == hv_dir]
    if os.path.isdir(host_dir) or not (host_files or any(os.path.dirname(p) == hv_dir for p in vaulted)):
        path = os.path.join(host_dir, NEW_FILE)
        if os.path.exists(path):  # a plain devices.yml without pacs_devices: add the list at its end
            text = _read(path)
            return _result(inventory_dir, path, 'append', text, _append(text, wanted, path))
        after = NEW_FILE_HEADER + ''.join(render_block(wanted))
        check('', after, wanted, path)
        return _result(inventory_dir, path, 'create', '', after)
    if not host_files:
        raise InventoryEditError(
            f'the host_vars file of {host} is vaulted ({", ".join(vaulted)}) and there is no directory '
            f'{host_dir}: create {os.path.join(host_dir, NEW_FILE)} with {VAR} by hand'
        )
    path, text = host_files[0]
    return _result(inventory_dir, path, 'append', text, _append(text, wanted, path))


def _append(text, devices, path):
    if is_vaulted(text):
        raise InventoryEditError(f'{path} holds an inline vaulted value (!vault): vaulted files are never written')
    base = text if not text or text.endswith('\n') else text + '\n'
    comment = '# Devices of this clinic: kept by playbooks/add_device.yml and remove_device.yml (comments stay).\n'
    after = base + ('\n' if base.strip() else '') + comment + ''.join(render_block(devices))
    check(text, after, devices, path)
    return after


def _result(inventory_dir, path, action, before, after):
    relpath = os.path.relpath(path, inventory_dir) if path else ''
    mode = '0640'
    if path and os.path.exists(path):
        mode = f'0{stat.S_IMODE(os.stat(path).st_mode):o}'
    patch = ''
    if before != after:
        patch = ''.join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile='/dev/null' if action == 'create' else f'a/{relpath}',
                tofile=f'b/{relpath}',
            )
        )
    return {
        'path': path,
        'relpath': relpath,
        'action': action if before != after else 'none',
        'changed': before != after,
        'before': before,
        'after': after,
        'mode': mode,
        'patch': patch,
    }


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        state = self.get_option('state')
        device = self.get_option('device')
        if state == 'present' and (not isinstance(device, dict) or not device.get('name')):
            raise AnsibleError('inventory_devices: state=present needs device, a mapping with a name')
        name = self.get_option('name') or (device or {}).get('name')
        if not name:
            raise AnsibleError('inventory_devices: give name (or device with a name)')
        inventory_dir = self.get_option('inventory_dir') or variables.get('inventory_dir')
        results = []
        for host in terms:
            try:
                results.append(
                    plan(
                        inventory_dir,
                        str(host),
                        str(name),
                        device if state == 'present' else None,
                        self.get_option('current'),
                        load_vaulted=self._loader.load_from_file,
                    )
                )
            except InventoryEditError as exc:
                raise AnsibleError(f'inventory of {host}: {exc}') from None
        return results
