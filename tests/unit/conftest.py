"""Make ``ansible_collections.clinicpacs.orthanc`` importable for the unit tests.

``.collections`` (next to the repository root) holds ``ansible_collections/clinicpacs/orthanc`` as a
symlink to the repository, see tools/install-collections.sh.
"""

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[2] / '.collections'
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
