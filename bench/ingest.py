# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark 3: C-STORE throughput of the provisioned stack against stock Orthanc, in one run.

* Instances: every real sample of tests/data/dicom, copied round after round with fresh Study, Series and
  SOP Instance UIDs (pydicom, ``copy.deepcopy``) until there are ``--instances`` of them, in a temporary
  directory (removed afterwards). They keep their own transfer syntax (JPEG, JPEG-LS, JPEG 2000, RLE and
  uncompressed, as in the samples).
* "ours": PostgreSQL + Orthanc with the Orthanc settings of ``roles/pacs`` (read from its vars: PostgreSQL
  index, storage on a volume, authentication, DicomCheckCalledAet, only registered devices may store...).
  Each sender is registered as a device over REST with its own AE title and its own address, as the role
  does for a clinic's devices (DicomCheckModalityHost is on: Orthanc refuses a known AE title calling from
  another address).
* "stock": the same Orthanc image with Orthanc's defaults (SQLite index and storage on a volume); the only
  settings are the ones needed to count over REST (RemoteAccessAllowed, one user).
* ``--tuned`` adds "ours" with the PostgreSQL plugin's ``IndexConnectionsCount`` at 5.
* Senders: 5 sender containers (the devicesim image, dcmtk ``storescu``) with fixed addresses on a Docker
  network of the benchmark's own, as devices on a clinic's LAN; every Orthanc is attached to that network and
  receives on its DICOM port 4242 there. One ``storescu`` per sender and batch (``docker exec``), one
  association each.
* Fairness on a shared machine: all stacks are up together and the instances are sent in batches (5 by
  default), each batch to every stack in turn with the first one rotating, so a change of load during the
  run hits every stack alike. Every stack receives the same files.
* Figures per stack: instances per second (instances / summed wall time of its batches, first sender start
  to last sender end), the count Orthanc reports at the end, instances/s per batch against the number
  already stored, a ``GET /statistics`` time series every 2 s, the load average before each batch; the
  ratio ours/stock; plot ``bench/results/ingest.png`` when matplotlib is installed.

Writes bench/results/ingest.json (``--quick``: 500 instances in 2 batches, ingest_quick.json).
"""

import argparse
import concurrent.futures
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench_common as common

SAMPLES = os.path.join(common.ROOT, 'tests', 'data', 'dicom')
SENDER_AET = 'BENCHSCU'  # sender n calls as BENCHSCU<n>
SENDER_IMAGE = os.environ.get('BENCH_SENDER_IMAGE', 'clinicpacs/devicesim:trixie')
INSTANCES_IN_SENDER = '/bench'  # the instance directory, read-only in every sender container
ORTHANC_AET = 'ORTHANC'
ANCHOR = {
    'source': 'Orthanc Book, "Benchmark of the database plugins" (PostgreSQL index, 5 REST clients uploading)',
    'postgresql_instances_per_second': 250,
    'notes': 'flat up to 215k instances; SQLite degrades as the database grows. REST uploads on other hardware, '
    'so compare orders of magnitude, not digits.',
}


def load_samples():
    """Every DICOM file of tests/data/dicom that has a SOP Instance UID, read once."""
    import pydicom

    datasets = []
    for folder, _dirs, files in os.walk(SAMPLES):
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                ds = pydicom.dcmread(path)
            except Exception:  # noqa: BLE001, S112 (README and other non-DICOM files)
                continue
            if all(key in ds for key in ('SOPInstanceUID', 'StudyInstanceUID', 'SeriesInstanceUID', 'SOPClassUID')):
                datasets.append((os.path.relpath(path, SAMPLES), ds))
    return datasets


def storescu_config(samples, path):
    """A storescu configuration proposing exactly the (SOP class, transfer syntax) pairs of the samples.

    Without it storescu proposes uncompressed transfer syntaxes only and cannot send the JPEG, JPEG-LS,
    JPEG 2000 and RLE samples as they are (it does not decompress them).
    """
    pairs = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _rel, ds in samples})
    syntaxes = sorted({ts for _sop, ts in pairs})
    lines = ['[[TransferSyntaxes]]']
    for index, uid in enumerate(syntaxes):
        lines += [f'[TS{index}]', f'TransferSyntax1 = {uid}']
    lines += ['[[PresentationContexts]]', '[Bench]']
    for number, (sop, ts) in enumerate(pairs, 1):
        lines.append(f'PresentationContext{number} = {sop}\\TS{syntaxes.index(ts)}')
    lines += ['[[Profiles]]', '[Bench]', 'PresentationContexts = Bench', '']
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(lines))
    return len(pairs)


def _generate_rounds(rounds, count, dirs):
    """Worker: write the instances of the given rounds into ``dirs[batch][sender]``."""
    from pydicom.uid import generate_uid

    samples = load_samples()
    total_bytes = 0
    written = 0
    for round_no in rounds:
        studies, series = {}, {}
        for index, (_rel, original) in enumerate(samples):
            number = round_no * len(samples) + index
            if number >= count:
                break
            ds = copy.deepcopy(original)
            ds.StudyInstanceUID = studies.setdefault(original.StudyInstanceUID, generate_uid())
            ds.SeriesInstanceUID = series.setdefault(original.SeriesInstanceUID, generate_uid())
            ds.SOPInstanceUID = generate_uid()
            if getattr(ds, 'file_meta', None) is not None:
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            batch = dirs[number * len(dirs) // count]
            out = os.path.join(batch[number % len(batch)], f'r{round_no:04d}-{number:06d}.dcm')
            ds.save_as(out)
            total_bytes += os.path.getsize(out)
            written += 1
    return written, total_bytes


def generate(samples, count, target, senders, batches):
    """Write ``count`` instances with fresh UIDs into ``target/batch-<b>/sender-<n>/`` (one process per CPU).

    Instance number k goes to batch k * batches // count and sender k % senders.
    """
    dirs = [[os.path.join(target, f'batch-{b}', f'sender-{n}') for n in range(senders)] for b in range(batches)]
    for batch in dirs:
        for path in batch:
            os.makedirs(path)
    rounds = -(-count // len(samples))
    workers = max(1, min(os.cpu_count() or 1, rounds))
    shares = [list(range(w, rounds, workers)) for w in range(workers)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(_generate_rounds, shares, [count] * workers, [dirs] * workers))
    return {
        'instances': sum(w for w, _b in done),
        'bytes': sum(b for _w, b in done),
        'rounds': rounds,
        'dirs': dirs,
        'workers': workers,
    }


class StatisticsPoller:
    """Samples ``GET /statistics`` (CountInstances) every ``interval`` seconds in a thread."""

    def __init__(self, url, user, password, interval=2.0):
        self.url, self.user, self.password, self.interval = url, user, password, interval
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.monotonic()
        while not self.stop.is_set():
            try:
                status, doc = common.http_json('GET', f'{self.url}/statistics', self.user, self.password, timeout=10)
                if status == 200:
                    self.samples.append((round(time.monotonic() - start, 2), doc['CountInstances']))
            except OSError:
                pass
            self.stop.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=15)
        return False


def start_senders(res, tmp, count):
    """``count`` sender containers with fixed addresses on a network of their own; returns (network, senders).

    ``tmp`` (the instances and the storescu configuration) is mounted read-only at INSTANCES_IN_SENDER.
    """
    subnet = common.free_subnet()
    net = res.network('dicom', subnet)
    prefix = subnet.rsplit('.', 1)[0]
    senders = []
    for number in range(1, count + 1):
        address = f'{prefix}.{10 + number}'
        container = res.run(
            f'sender-{number}',
            SENDER_IMAGE,
            ['--network', net, '--ip', address, '-v', f'{tmp}:{INSTANCES_IN_SENDER}:ro', '--entrypoint', 'sleep'],
            ['infinity'],
        )
        senders.append({'container': container, 'address': address, 'aet': f'{SENDER_AET}{number}'})
    return net, senders


def in_sender(path, tmp):
    return os.path.join(INSTANCES_IN_SENDER, os.path.relpath(path, tmp))


def send(dirs, stack, senders, config, tmp):
    """One storescu per directory, each in its own sender container, in parallel.

    Returns wall seconds, each sender's exit status and the last line of their error output.
    """
    procs = []
    start = time.monotonic()
    for path, sender in zip(dirs, senders, strict=True):
        argv = [common.DOCKER, 'exec', sender['container'], 'storescu', '-q', '-xf', in_sender(config, tmp), 'Bench']
        argv += ['-aet', sender['aet'], '-aec', stack['aet'], '+sd', '+r', stack['dicom_host'], '4242']
        argv.append(in_sender(path, tmp))
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = []
    codes = []
    for proc in procs:
        _out, err = proc.communicate()
        codes.append(proc.returncode)
        if err.strip():
            errors.append(err.strip().splitlines()[-1])
    return time.monotonic() - start, codes, errors


def start_ours(res, tmp, dicom_net, senders, label='ours', postgresql=None):
    """PostgreSQL + Orthanc with the role's settings; every sender registered as a device at its address."""
    user, password = 'bench', os.urandom(12).hex()
    stack = common.start_pacs_stack(
        res,
        label,
        os.path.join(tmp, f'{label}-config'),
        api_user=(user, password),
        postgresql=postgresql,
    )
    common.docker('network', 'connect', dicom_net, stack['orthanc'])
    # DicomAlwaysAllowStore is false and DicomCheckModalityHost on in the role: register the senders like a
    # clinic's devices, each with its AE title and the address it calls from.
    for sender in senders:
        status, _body = common.http_json(
            'PUT',
            f'{stack["url"]}/modalities/{sender["aet"].lower()}',
            user,
            password,
            {'AET': sender['aet'], 'Host': sender['address'], 'Port': 104},
        )
        if status != 200:
            raise RuntimeError(f'registering the sender {sender["aet"]} failed: HTTP {status}')
    _status, plugin = common.http_json('GET', f'{stack["url"]}/plugins/postgresql-index', user, password)
    stack.update(
        label=label,
        aet=stack['config'].get('DicomAet', ORTHANC_AET),
        dicom_host=stack['orthanc'],
        auth=(user, password),
        settings=stack['config'],
        postgresql_overrides=postgresql or {},
        postgresql_plugin_version=(plugin or {}).get('Version'),
    )
    return stack


def start_stock(res, tmp, dicom_net):
    """The same image with Orthanc's defaults (SQLite); only REST access and one user added."""
    user, password = 'bench', os.urandom(12).hex()
    config = {
        'Name': 'stock',
        'StorageDirectory': '/var/lib/orthanc/db',
        'IndexDirectory': '/var/lib/orthanc/db',
        'RemoteAccessAllowed': True,
        'AuthenticationEnabled': True,
        'RegisteredUsers': {user: password},
    }
    config_dir = os.path.join(tmp, 'stock-config')
    common.write_orthanc_config_dir(config_dir, {'orthanc.json': config})
    storage = res.volume('stock-storage')
    orthanc = res.run(
        'stock-orthanc',
        common.ORTHANC_IMAGE,
        [
            '-v', f'{config_dir}:/etc/orthanc:ro', '-v', f'{storage}:/var/lib/orthanc/db',
            '-p', f'127.0.0.1:{common.free_port()}:8042',
        ],
    )  # fmt: skip
    common.docker('network', 'connect', dicom_net, orthanc)
    url = f'http://127.0.0.1:{common.published_port(orthanc, 8042)}'
    system = common.wait_orthanc(url, user, password, container=orthanc)
    return {
        'label': 'stock',
        'aet': ORTHANC_AET,
        'dicom_host': orthanc,
        'url': url,
        'system': system,
        'auth': (user, password),
        'settings': {k: v for k, v in config.items() if k != 'RegisteredUsers'},
    }


def send_batch(stack, dirs, senders, config, tmp, offset):
    """One batch to one stack: wall seconds, count after it, sender statuses, timeline (shifted by offset)."""
    user, password = stack['auth']
    load = os.getloadavg()[0]
    with StatisticsPoller(stack['url'], user, password) as poller:
        wall, codes, errors = send(dirs, stack, senders, config, tmp)
    _status, stats = common.http_json('GET', f'{stack["url"]}/statistics', user, password)
    return {
        'wall_seconds': round(wall, 2),
        'stored_after': stats['CountInstances'],
        'disk_size_mb': int(stats.get('TotalDiskSizeMB', 0)),
        'sender_exit_codes': codes,
        'sender_errors': errors[:3],
        'load_average_1min_before': round(load, 2),
        'timeline': [(round(offset + t, 2), n) for t, n in poller.samples]
        + [(round(offset + wall, 2), stats['CountInstances'])],
    }


def summarise_stack(stack, batches, expected):
    wall = sum(b['wall_seconds'] for b in batches)
    stored = batches[-1]['stored_after']
    per_batch = []
    before = 0
    for b in batches:
        per_batch.append(
            {
                'instances_before': before,
                'instances': b['stored_after'] - before,
                'wall_seconds': b['wall_seconds'],
                'instances_per_second': round((b['stored_after'] - before) / b['wall_seconds'], 1)
                if b['wall_seconds']
                else None,
                'load_average_1min_before': b['load_average_1min_before'],
            }
        )
        before = b['stored_after']
    result = {
        'instances_sent': expected,
        'instances_stored': stored,
        'wall_seconds': round(wall, 2),
        'instances_per_second': round(stored / wall, 1) if wall else None,
        'megabytes_per_second': round(batches[-1]['disk_size_mb'] / wall, 2) if wall else None,
        'disk_size_mb': batches[-1]['disk_size_mb'],
        'batches': per_batch,
        'sender_exit_codes': sorted({c for b in batches for c in b['sender_exit_codes']}),
        'sender_errors': [e for b in batches for e in b['sender_errors']][:5],
        'dicom_path': 'sender containers (dcmtk storescu, fixed addresses, registered) -> Docker bridge network '
        '-> Orthanc container port 4242',
        'database_backend': stack['system'].get('DatabaseBackendPlugin') or 'SQLite (built-in)',
        'orthanc_settings': stack['settings'],
        'timeline': [point for b in batches for point in b['timeline']],
    }
    for key in ('postgresql_overrides', 'postgresql_plugin_version'):
        if key in stack:
            result[key] = stack[key]
    if stored != expected:
        common.log(f'{stack["label"]}: WARNING {expected - stored} instances missing: {result["sender_errors"][:3]}')
    return result


def run_interleaved(stacks, batch_dirs, senders, config, tmp, expected):
    """Send batch after batch, each to every stack, rotating who goes first (A B, B A, ...).

    All stacks are up the whole time (an idle Orthanc costs next to nothing), so a change of the
    machine's load during the run hits every stack alike instead of whichever happened to run then.
    """
    done = {s['label']: [] for s in stacks}
    active = {s['label']: 0.0 for s in stacks}
    for index, dirs in enumerate(batch_dirs):
        shift = index % len(stacks)
        for stack in stacks[shift:] + stacks[:shift]:
            batch = send_batch(stack, dirs, senders, config, tmp, active[stack['label']])
            active[stack['label']] += batch['wall_seconds']
            done[stack['label']].append(batch)
            sent = sum(len(os.listdir(d)) for d in dirs)
            common.log(
                f'batch {index + 1}/{len(batch_dirs)} -> {stack["label"]}: {sent} in {batch["wall_seconds"]} s '
                f'= {sent / batch["wall_seconds"]:.1f}/s (load {batch["load_average_1min_before"]})'
            )
    return {s['label']: summarise_stack(s, done[s['label']], expected) for s in stacks}


def plot(results, path):
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        common.log('matplotlib not installed: no plot')
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, res in results.items():
        points = res['timeline']
        if points:
            left.plot([p[0] for p in points], [p[1] for p in points], marker='.', markersize=3,
                      label=f'{label}: {res["instances_per_second"]}/s')  # fmt: skip
        batches = res.get('batches') or []
        right.plot(
            [b['instances_before'] + b['instances'] / 2 for b in batches],
            [b['instances_per_second'] for b in batches],
            marker='o',
            label=label,
        )
    left.set_xlabel('seconds of sending (batches of this stack, end to end)')
    left.set_ylabel('instances stored (GET /statistics)')
    left.set_title('C-STORE ingest, 5 parallel storescu')
    right.set_xlabel('instances in the database (middle of the batch)')
    right.set_ylabel('instances/s in the batch')
    right.set_title('throughput per batch')
    right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    common.log(f'wrote {os.path.relpath(path, common.ROOT)}')
    return os.path.relpath(path, common.ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='500 instances in 2 batches')
    parser.add_argument('--instances', type=int)
    parser.add_argument('--batches', type=int, help='batches per stack (default 5, quick 2)')
    parser.add_argument('--senders', type=int, default=5)
    parser.add_argument(
        '--tuned',
        action='store_true',
        help='also measure the role settings with IndexConnectionsCount 5 (PostgreSQL plugin default before 7.0: 1)',
    )
    args = parser.parse_args()
    count = args.instances or (500 if args.quick else 5000)
    batches = args.batches or (2 if args.quick else 5)
    if not common.docker('images', '-q', SENDER_IMAGE, check=False):
        sys.exit(f'the sender image {SENDER_IMAGE} is missing: make images')

    tmp = tempfile.mkdtemp(prefix='bench-ingest-')
    os.chmod(tmp, 0o755)  # noqa: S103 (the sender containers' user reads the instances)
    try:
        started = time.monotonic()
        samples = load_samples()
        config = os.path.join(tmp, 'storescu.cfg')
        contexts = storescu_config(samples, config)
        common.log(f'generating {count} instances from {len(samples)} samples')
        gen_start = time.monotonic()
        generated = generate(samples, count, os.path.join(tmp, 'instances'), args.senders, batches)
        gen_seconds = time.monotonic() - gen_start
        common.log(
            f'generated {generated["instances"]} files, {generated["bytes"] / 1e6:.0f} MB in {gen_seconds:.0f} s'
        )
        with common.Resources('bench-ingest') as res:
            dicom_net, senders = start_senders(res, tmp, args.senders)
            stacks = [start_ours(res, tmp, dicom_net, senders), start_stock(res, tmp, dicom_net)]
            if args.tuned:
                stacks.append(start_ours(res, tmp, dicom_net, senders, 'tuned', {'IndexConnectionsCount': 5}))
            version = stacks[0]['system'].get('Version')
            dcmtk = common.docker('exec', senders[0]['container'], 'storescu', '--version', check=False)
            dcmtk = (dcmtk.splitlines() or [''])[0].replace('$dcmtk:', '').strip(' $') or None
            results = run_interleaved(stacks, generated['dirs'], senders, config, tmp, generated['instances'])
        total = time.monotonic() - started
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    short = {label: res for label, res in results.items() if res['instances_stored'] != res['instances_sent']}
    if short:
        for label, res in short.items():
            common.log(
                f'FAILED: {label} stored {res["instances_stored"]} of {res["instances_sent"]} instances sent '
                f'(storescu exit codes {res["sender_exit_codes"]}; errors: {res["sender_errors"][:3]})'
            )
        common.log('the benchmark measured nothing comparable: no result file written')
        return 1
    ours, stock, tuned = results['ours'], results['stock'], results.get('tuned')
    ratio = round(ours['instances_per_second'] / stock['instances_per_second'], 2)
    curves = {'ours (role settings, PostgreSQL)': ours, 'stock (defaults, SQLite)': stock}
    if tuned:
        curves['ours + IndexConnectionsCount 5'] = tuned
    png = plot(curves, common.result_path('ingest', args.quick)[:-5] + '.png')
    data = {
        'machine': common.machine(),
        'versions': common.versions(orthanc=version, extra={'dcmtk': dcmtk, 'pydicom': _pydicom_version()}),
        'parameters': {
            'instances': generated['instances'],
            'megabytes': round(generated['bytes'] / 1e6, 1),
            'samples': len(samples),
            'sample_rounds': generated['rounds'],
            'senders': args.senders,
            'batches': batches,
            'sender': 'dcmtk storescu, one association per sender and batch, files spread round-robin, sent in '
            "their own transfer syntax (a storescu profile with the samples' SOP class/transfer syntax pairs)",
            'presentation_contexts': contexts,
            'uids': 'fresh StudyInstanceUID/SeriesInstanceUID per sample study/series and round, fresh SOPInstanceUID',
            'same_files_for_every_stack': True,
            'order': 'all stacks up together; each batch goes to every stack in turn, first one rotating',
        },
        'figures': {
            'ours': ours,
            'stock': stock,
            'ratio_ours_to_stock': ratio,
            'tuned': tuned,
            'ratio_tuned_to_stock': round(tuned['instances_per_second'] / stock['instances_per_second'], 2)
            if tuned
            else None,
            'ratio_ours_to_anchor': round(ours['instances_per_second'] / ANCHOR['postgresql_instances_per_second'], 2),
            'generation_seconds': round(gen_seconds, 1),
            'generation_workers': generated['workers'],
            'total_seconds': round(total, 1),
            'plot': png,
        },
        'anchor': ANCHOR,
    }
    common.write_result('ingest', args.quick, data)
    print(json.dumps({k: v['instances_per_second'] for k, v in results.items()} | {'ratio': ratio}))
    return 0


def _pydicom_version():
    import pydicom

    return pydicom.__version__


if __name__ == '__main__':
    sys.exit(main())
