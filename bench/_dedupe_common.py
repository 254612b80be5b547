# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared helpers of the duplicate-patient benchmarks: import paths and machine facts."""

import os
import platform
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_RESULTS: another folder for the results (make test's smoke run of every benchmark writes under .cache).
RESULTS = os.environ.get('BENCH_RESULTS') or os.path.join(ROOT, 'bench', 'results')


def setup_paths():
    """Make the collection (``ansible_collections.clinicpacs.orthanc``) and the generator importable."""
    for path in (os.path.join(ROOT, '.collections'), os.path.join(ROOT, 'tests', 'tools')):
        if path not in sys.path:
            sys.path.insert(0, path)


def machine():
    return {
        'cpu_count': os.cpu_count(),
        'python': platform.python_version(),
        'platform': platform.platform(),
        'machine': platform.machine(),
    }
