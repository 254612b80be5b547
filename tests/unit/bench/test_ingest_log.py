"""bench/ingest.py reads each C-STORE's latency and acknowledgement from storescu's time-stamped log."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _ingest():
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOG = """1796180335.219 determining input files ...
1796180335.220 Requesting Association
1796180335.234 Association Accepted (Max Send PDV: 16372)
1796180335.234 Sending file: /bench/instances/batch-0/sender-0/r0000-000000.dcm
1796180335.235 Sending Store Request (MsgID 1, MR)
XMIT: 1796180335.236 ..............
1796180335.281 Received Store Response (Success)
1796180335.282 Sending file: /bench/instances/batch-0/sender-0/r0000-000005.dcm
1796180335.282 Sending Store Request (MsgID 2, CT)
1796180335.400 Received Store Response (Warning: Coercion of Data Elements)
1796180335.401 Sending Store Request (MsgID 3, CT)
1796180335.500 Store Failed, file: /bench/instances/batch-0/sender-0/r0000-000010.dcm:
1796180335.501 Releasing Association
"""


def test_latency_and_acknowledgements_from_the_log():
    acknowledged, latencies, error = _ingest().parse_storescu_log(LOG)
    assert acknowledged == 2  # success and warning statuses are stored; a failed C-STORE is not acknowledged
    assert latencies == [46.0, 118.0]  # request to response, ms; the failed C-STORE has no response
    assert error == "Store Failed, file: /bench/instances/batch-0/sender-0/r0000-000010.dcm:"


def test_percentile():
    ingest = _ingest()
    assert ingest.percentile([], 0.5) is None
    assert ingest.percentile([5, 1, 3], 0.5) == 3
    assert ingest.percentile(list(range(1, 101)), 0.99) == 99
