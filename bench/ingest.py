"""Benchmark 3: C-STORE ingest on the production path: the wire limit, stock Orthanc and our stack, in one run.

* Instances: every real sample of tests/data/dicom, copied round after round with fresh Study, Series and
  SOP Instance UIDs (pydicom, ``copy.deepcopy``) until there are ``--instances`` of them, in a temporary
  directory (removed afterwards). They keep their own transfer syntax (JPEG, JPEG-LS, JPEG 2000, RLE and
  uncompressed, as in the samples).
* Targets, all on the same Docker network as the senders, each receiving on its port 4242 there:
  - "bare": dcmtk ``storescp --fork`` writing the files to a volume: the wire limit of this path;
  - "stock": the same Orthanc image with Orthanc's defaults (SQLite index, storage on a volume); the only
    settings are the ones needed to count over REST (RemoteAccessAllowed, one user);
  - "ours": PostgreSQL + Orthanc as ``roles/pacs`` renders them for this machine (its Orthanc settings, the
    PostgreSQL index plugin settings and the PostgreSQL server settings sized from the memory and cores,
    its memory limits). Each sender is registered as a device over REST with its own AE title and address,
    as the role registers a clinic's devices (DicomCheckModalityHost is on);
  - ``--variant LABEL=JSON``: ours with changed settings (tuning experiments), ``--steps``: the tuning
    ladder of bench/README.md ("Tuning"), written to ingest_tuning.json.
* Senders: 5 sender containers (the devicesim image, dcmtk ``storescu``) with fixed addresses on that network,
  as devices on a clinic's LAN. One ``storescu`` per sender and slice (``docker exec``), one association each,
  logging each C-STORE request and response with a millisecond time stamp: the C-STORE latency.
* Fairness on a shared machine: every target is up for the whole run and the instances are sent in slices
  (5,000 instances; 500 in the quick run); each slice goes to every target in turn with the first one rotating,
  so a change of machine load hits every target alike. Every target receives the same files.
* Figures per target: instances/s (instances stored / summed wall time of its slices, first sender start to
  last sender end), the ratios ours/bare and ours/stock, p50/p99 C-STORE latency, CPU per instance of the
  target's containers (their cgroup) and of the senders, instances/s per slice as the archive grows, the
  load average before each slice and the CPU the rest of the machine used meanwhile; plot ingest.png.

Writes bench/results/ingest.json (50,000 instances; ``--quick``: 2,000, ingest_quick.json).
"""

import argparse
import concurrent.futures
import contextlib
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


# storescu logs through log4cplus: with this configuration every message carries epoch seconds with
# milliseconds, so the time between "Sending Store Request" and "Received Store Response" is each C-STORE's
# latency as the device sees it.
STORESCU_LOG_CONFIG = """log4cplus.rootLogger = INFO, console
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{%s.%q} %m%n
"""
BARE_AET = 'BARESCP'

# The tuning ladder (--steps): from the role as it was before tuning (Orthanc's and the plugin's defaults,
# PostgreSQL's own settings) one change at a time up to the role's defaults. Each step is a variant of "ours":
# "orthanc" / "index_plugin" / "postgres" override the role's settings (None removes one; "postgres":
# "defaults" starts PostgreSQL with no -c setting at all); "socket": false reaches PostgreSQL over TCP, true over
# its Unix socket (absent: the role's default, pacs_postgres_unix_socket).
UNTUNED = {
    'orthanc': {'DicomThreadsCount': None, 'ConcurrentJobs': None},
    'index_plugin': {'IndexConnectionsCount': None},
    'postgres': 'defaults',
    'socket': False,
}
STEPS = [
    ('untuned', 'the role before tuning: Orthanc, index plugin and PostgreSQL defaults', UNTUNED),
    (
        'index-connections-5',
        'untuned + IndexConnectionsCount 5 (the plugin 5.0 default is 1): not taken',
        {**UNTUNED, 'index_plugin': {'IndexConnectionsCount': 5}},
    ),
    (
        'dicom-threads',
        "untuned + the role's DicomThreadsCount (the cores, 2 to 4) and ConcurrentJobs",
        {**UNTUNED, 'orthanc': {}},
    ),
    ('postgres-sized', '+ PostgreSQL sized from memory and cores (index over TCP)', {'socket': False}),
    ('ours', "+ the index over PostgreSQL's Unix socket: the role's defaults", {}),
]


def storescu_log_config(path):
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(STORESCU_LOG_CONFIG)


class StatisticsPoller:
    """Samples ``GET /statistics`` (CountInstances) every ``interval`` seconds in a thread (Orthanc targets)."""

    def __init__(self, target, interval=2.0):
        self.target, self.interval = target, interval
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.monotonic()
        while not self.stop.is_set() and self.target.get('url'):
            with contextlib.suppress(OSError, RuntimeError, KeyError, TypeError):
                self.samples.append((round(time.monotonic() - start, 2), self.target['count']()))
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


def parse_storescu_log(text):
    """(acknowledged C-STOREs, their latencies in ms, last error line) from one storescu's timed log."""
    latencies, acknowledged, sent_at, error = [], 0, None, None
    for line in text.splitlines():
        stamp, _sep, message = line.partition(' ')
        try:
            when = float(stamp)
        except ValueError:
            continue
        if message.startswith('Sending Store Request'):
            sent_at = when
        elif message.startswith('Received Store Response'):
            if sent_at is not None:
                latencies.append(round((when - sent_at) * 1000, 1))
            sent_at = None
            if '(Success)' in message or '(Warning' in message:  # a warning status is stored too
                acknowledged += 1
        elif 'Failed' in message or 'Refused' in message or 'Rejected' in message:
            error = message.strip()
    return acknowledged, latencies, error


def send(dirs, target, senders, tmp):
    """One storescu per directory, each in its own sender container, in parallel.

    Returns wall seconds, the exit statuses, C-STOREs acknowledged, latencies (ms) and error lines.
    """
    procs = []
    start = time.monotonic()
    for path, sender in zip(dirs, senders, strict=True):
        argv = [
            common.DOCKER,
            'exec',
            sender['container'],
            'storescu',
            '-lc',
            in_sender(tmp + '/storescu-log.cfg', tmp),
        ]
        argv += ['-xf', in_sender(tmp + '/storescu.cfg', tmp), 'Bench']
        argv += ['-aet', sender['aet'], '-aec', target['aet'], '+sd', '+r', target['dicom_host'], '4242']
        argv.append(in_sender(path, tmp))
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [proc.communicate()[0] for proc in procs]
    wall = time.monotonic() - start
    codes, latencies, errors, acknowledged = [], [], [], 0
    for proc, text in zip(procs, outputs, strict=True):
        codes.append(proc.returncode)
        acked, lat, error = parse_storescu_log(text)
        acknowledged += acked
        latencies += lat
        if error or proc.returncode:
            errors.append(error or (text.strip().splitlines() or [''])[-1])
    return wall, codes, acknowledged, latencies, errors


def register_senders(url, auth, senders):
    """Register every sender like a clinic's device: its AE title and the address it calls from."""
    for sender in senders:
        status, _body = common.http_json(
            'PUT',
            f'{url}/modalities/{sender["aet"].lower()}',
            *auth,
            {'AET': sender['aet'], 'Host': sender['address'], 'Port': 104},
        )
        if status != 200:
            raise RuntimeError(f'registering the sender {sender["aet"]} failed: HTTP {status}')


def _orthanc_count(url, auth):
    def count():
        status, stats = common.http_json('GET', f'{url}/statistics', *auth, timeout=30)
        if status != 200:
            raise RuntimeError(f'GET /statistics: HTTP {status}')
        return stats['CountInstances']

    return count


def start_ours(res, tmp, dicom_net, senders, label='ours', variant=None):
    """PostgreSQL + Orthanc with the role's settings (``variant`` changes some); senders registered as devices."""
    variant = variant or {}
    user, password = 'bench', os.urandom(12).hex()
    postgres = variant.get('postgres')
    stack = common.start_pacs_stack(
        res,
        label,
        os.path.join(tmp, f'{label}-config'),
        api_user=(user, password),
        postgresql=variant.get('index_plugin'),
        orthanc=variant.get('orthanc'),
        postgres_server=dict.fromkeys(common.role_orthanc_config('x', 'x')[2]['settings'])
        if postgres == 'defaults'
        else postgres,
        socket=variant.get('socket'),
    )
    common.docker('network', 'connect', dicom_net, stack['orthanc'])
    register_senders(stack['url'], (user, password), senders)
    _status, plugin = common.http_json('GET', f'{stack["url"]}/plugins/postgresql-index', user, password)
    settings = {
        'orthanc': stack['config'],
        'index_plugin': stack['index_plugin_config'],
        'postgres_server': stack['postgres_server_settings'],
        'index_connection': 'unix socket' if stack['socket'] else 'tcp',
    }
    return {
        'label': label,
        'kind': 'ours',
        'aet': stack['config'].get('DicomAet', ORTHANC_AET),
        'dicom_host': stack['orthanc'],
        'containers': [stack['orthanc'], stack['postgres']],
        'url': stack['url'],
        'count': _orthanc_count(stack['url'], (user, password)),
        'version': stack['system'].get('Version'),
        'database_backend': stack['system'].get('DatabaseBackendPlugin') or 'SQLite (built-in)',
        'settings': settings,
        'variant': variant,
        'postgresql_plugin_version': (plugin or {}).get('Version'),
    }


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
    process, command = common.orthanc_process()
    orthanc = res.run(
        'stock-orthanc',
        common.ORTHANC_IMAGE,
        [
            '-v', f'{config_dir}:/etc/orthanc:ro', '-v', f'{storage}:/var/lib/orthanc/db',
            '-p', f'127.0.0.1:{common.free_port()}:8042', *process,
        ],
        command,
    )  # fmt: skip
    common.docker('network', 'connect', dicom_net, orthanc)
    url = f'http://127.0.0.1:{common.published_port(orthanc, 8042)}'
    system = common.wait_orthanc(url, user, password, container=orthanc)
    return {
        'label': 'stock',
        'kind': 'stock',
        'aet': ORTHANC_AET,
        'dicom_host': orthanc,
        'containers': [orthanc],
        'url': url,
        'count': _orthanc_count(url, (user, password)),
        'version': system.get('Version'),
        'database_backend': system.get('DatabaseBackendPlugin') or 'SQLite (built-in)',
        'settings': {'orthanc': {k: v for k, v in config.items() if k != 'RegisteredUsers'}},
    }


def start_bare(res, dicom_net):
    """dcmtk storescp --fork (a process per association) writing every file to a volume: the wire limit."""
    storage = res.volume('bare-storage')
    container = res.run(
        'bare-storescp',
        SENDER_IMAGE,
        ['--network', dicom_net, '-v', f'{storage}:/data', '--user', '0', '--entrypoint', 'storescp'],
        ['--fork', '+xa', '-aet', BARE_AET, '-od', '/data', '4242'],
    )

    def count():
        out = common.docker('exec', container, 'sh', '-c', 'find /data -type f -name "*.*" | wc -l')
        return int(out or 0)

    return {
        'label': 'bare',
        'kind': 'bare',
        'aet': BARE_AET,
        'dicom_host': container,
        'containers': [container],
        'count': count,
        'database_backend': 'none (files only)',
        'settings': {'command': 'storescp --fork +xa -od /data 4242'},
    }


def _cpu(containers):
    values = [common.container_cpu_seconds(c) for c in containers]
    return None if None in values else sum(values)


def send_slice(target, dirs, senders, tmp, offset):
    """One slice to one target: wall seconds, acknowledged and stored counts, latencies, CPU, load."""
    load = os.getloadavg()[0]
    cpu_before, senders_before = _cpu(target['containers']), _cpu([s['container'] for s in senders])
    host_before = common.host_cpu_seconds()
    with StatisticsPoller(target) as poller:
        wall, codes, acknowledged, latencies, errors = send(dirs, target, senders, tmp)
    host_after = common.host_cpu_seconds()
    cpu_after, senders_after = _cpu(target['containers']), _cpu([s['container'] for s in senders])
    stored = target['count']()
    target_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    sender_cpu = None if senders_before is None or senders_after is None else senders_after - senders_before
    busy = host_after[0] - host_before[0]
    return {
        'wall_seconds': round(wall, 2),
        'acknowledged': acknowledged,
        'stored_after': stored,
        'latencies_ms': latencies,
        'target_cpu_seconds': None if target_cpu is None else round(target_cpu, 2),
        'sender_cpu_seconds': None if sender_cpu is None else round(sender_cpu, 2),
        'machine_busy_cpu_seconds': round(busy, 2),
        'other_cpu_seconds': None
        if target_cpu is None or sender_cpu is None
        else round(max(0.0, busy - target_cpu - sender_cpu), 2),
        'sender_exit_codes': codes,
        'sender_errors': errors[:3],
        'load_average_1min_before': round(load, 2),
        'timeline': [(round(offset + t, 2), n) for t, n in poller.samples] + [(round(offset + wall, 2), stored)],
    }


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarise_target(target, slices, expected):
    wall = sum(s['wall_seconds'] for s in slices)
    stored = slices[-1]['stored_after']
    latencies = [v for s in slices for v in s['latencies_ms']]
    per_slice, before = [], 0
    for s in slices:
        per_slice.append(
            {
                'instances_before': before,
                'instances': s['stored_after'] - before,
                'wall_seconds': s['wall_seconds'],
                'instances_per_second': round((s['stored_after'] - before) / s['wall_seconds'], 1)
                if s['wall_seconds']
                else None,
                'latency_ms_p50': percentile(s['latencies_ms'], 0.5),
                'latency_ms_p99': percentile(s['latencies_ms'], 0.99),
                'load_average_1min_before': s['load_average_1min_before'],
                'other_cpu_seconds': s['other_cpu_seconds'],
            }
        )
        before = s['stored_after']
    target_cpu = [s['target_cpu_seconds'] for s in slices]
    sender_cpu = [s['sender_cpu_seconds'] for s in slices]
    other_cpu = [s['other_cpu_seconds'] for s in slices]
    result = {
        'instances_sent': expected,
        'instances_acknowledged': sum(s['acknowledged'] for s in slices),
        'instances_stored': stored,
        'wall_seconds': round(wall, 2),
        'instances_per_second': round(stored / wall, 1) if wall else None,
        'latency_ms_p50': percentile(latencies, 0.5),
        'latency_ms_p99': percentile(latencies, 0.99),
        'cpu_ms_per_instance': round(sum(target_cpu) * 1000 / stored, 2) if stored and None not in target_cpu else None,
        'sender_cpu_ms_per_instance': round(sum(sender_cpu) * 1000 / stored, 2)
        if stored and None not in sender_cpu
        else None,
        'other_cpu_share': round(sum(other_cpu) / (wall * (os.cpu_count() or 1)), 3)
        if wall and None not in other_cpu
        else None,
        'slices': per_slice,
        'sender_exit_codes': sorted({c for s in slices for c in s['sender_exit_codes']}),
        'sender_errors': [e for s in slices for e in s['sender_errors']][:5],
        'database_backend': target['database_backend'],
        'settings': target['settings'],
        'timeline': [point for s in slices for point in s['timeline']],
    }
    for key in ('variant', 'postgresql_plugin_version', 'description'):
        if target.get(key) is not None:
            result[key] = target[key]
    # A C-STORE the target refused or that timed out is the device's to resend; an acknowledged instance that
    # is not stored would be a loss.
    result['acknowledged_but_not_stored'] = max(0, result['instances_acknowledged'] - stored)
    if stored != expected:
        common.log(f'{target["label"]}: WARNING {expected - stored} instances missing: {result["sender_errors"][:3]}')
    return result


def run_interleaved(targets, slice_dirs, senders, tmp, expected):
    """Send slice after slice, each to every target, rotating who goes first (A B C, B C A, ...).

    All targets are up the whole time (an idle one costs next to nothing), so a change of the machine's
    load during the run hits every target alike instead of whichever happened to run then.
    """
    done = {t['label']: [] for t in targets}
    active = {t['label']: 0.0 for t in targets}
    for index, dirs in enumerate(slice_dirs):
        shift = index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            piece = send_slice(target, dirs, senders, tmp, active[target['label']])
            active[target['label']] += piece['wall_seconds']
            done[target['label']].append(piece)
            sent = sum(len(os.listdir(d)) for d in dirs)
            common.log(
                f'slice {index + 1}/{len(slice_dirs)} -> {target["label"]}: {sent} in {piece["wall_seconds"]} s '
                f'= {sent / piece["wall_seconds"]:.1f}/s, p50 {percentile(piece["latencies_ms"], 0.5)} ms '
                f'(load {piece["load_average_1min_before"]})'
            )
    return {t['label']: summarise_target(t, done[t['label']], expected) for t in targets}


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
        slices = res.get('slices') or []
        right.plot(
            [s['instances_before'] + s['instances'] / 2 for s in slices],
            [s['instances_per_second'] for s in slices],
            marker='o',
            label=label,
        )
    left.set_xlabel('seconds of sending (slices of this target, end to end)')
    left.set_ylabel('instances stored')
    left.set_title('C-STORE ingest, 5 parallel storescu')
    right.set_xlabel('instances already stored (middle of the slice)')
    right.set_ylabel('instances/s in the slice')
    right.set_title('throughput per slice as the archive grows')
    right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    common.log(f'wrote {os.path.relpath(path, common.ROOT)}')
    return os.path.relpath(path, common.ROOT)


def _variant(text):
    label, sep, spec = text.partition('=')
    if not sep or not label.replace('-', '').isalnum():
        raise argparse.ArgumentTypeError(f'--variant {text!r}: expected LABEL=JSON')
    try:
        doc = json.loads(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f'--variant {label}: not JSON ({exc})') from exc
    if not isinstance(doc, dict) or set(doc) - {'orthanc', 'index_plugin', 'postgres', 'socket'}:
        raise argparse.ArgumentTypeError(f'--variant {label}: keys are orthanc, index_plugin, postgres, socket')
    return label, doc


def ratio(a, b):
    return round(a['instances_per_second'] / b['instances_per_second'], 2) if a and b else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='2,000 instances in slices of 500')
    parser.add_argument('--instances', type=int, help='instances per target (default 50,000; quick 2,000)')
    parser.add_argument('--slice', type=int, help='instances per slice (default 5,000; quick 500)')
    parser.add_argument('--senders', type=int, default=5)
    example = 'threads8={"orthanc": {"DicomThreadsCount": 8}}'
    parser.add_argument(
        '--variant', type=_variant, action='append', default=[], metavar='LABEL=JSON',
        help=f"also ours with other settings, e.g. '{example}'",
    )  # fmt: skip
    parser.add_argument('--steps', action='store_true', help='the tuning ladder; writes ingest_tuning.json')
    parser.add_argument('--no-stock', action='store_true', help='leave stock Orthanc out (tuning runs)')
    args = parser.parse_args()
    count = args.instances or (2000 if args.quick or args.steps else 50000)
    per_slice = args.slice or (500 if args.quick or args.steps else 5000)
    slices = max(1, -(-count // per_slice))
    if not common.docker('images', '-q', SENDER_IMAGE, check=False):
        sys.exit(f'the sender image {SENDER_IMAGE} is missing: make images')

    tmp = tempfile.mkdtemp(prefix='bench-ingest-')
    os.chmod(tmp, 0o755)  # noqa: S103 (the sender containers' user reads the instances)
    try:
        started = time.monotonic()
        samples = load_samples()
        contexts = storescu_config(samples, os.path.join(tmp, 'storescu.cfg'))
        storescu_log_config(os.path.join(tmp, 'storescu-log.cfg'))
        common.log(f'generating {count} instances from {len(samples)} samples')
        gen_start = time.monotonic()
        generated = generate(samples, count, os.path.join(tmp, 'instances'), args.senders, slices)
        gen_seconds = time.monotonic() - gen_start
        common.log(
            f'generated {generated["instances"]} files, {generated["bytes"] / 1e6:.0f} MB in {gen_seconds:.0f} s'
        )
        with common.Resources('bench-ingest') as res:
            dicom_net, senders = start_senders(res, tmp, args.senders)
            targets = [start_bare(res, dicom_net)]
            if not args.no_stock:
                targets.append(start_stock(res, tmp, dicom_net))
            if args.steps:
                for label, description, variant in STEPS:
                    targets.append(
                        start_ours(res, tmp, dicom_net, senders, label, variant) | {'description': description}
                    )
            else:
                targets.append(start_ours(res, tmp, dicom_net, senders))
            for label, variant in args.variant:
                targets.append(start_ours(res, tmp, dicom_net, senders, label, variant))
            version = next(t['version'] for t in targets if t.get('version'))
            dcmtk = common.docker('exec', senders[0]['container'], 'storescu', '--version', check=False)
            dcmtk = (dcmtk.splitlines() or [''])[0].replace('$dcmtk:', '').strip(' $') or None
            load_before = os.getloadavg()
            results = run_interleaved(targets, generated['dirs'], senders, tmp, generated['instances'])
            load_after = os.getloadavg()
        total = time.monotonic() - started
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    bare, stock = results['bare'], results.get('stock')
    name = 'ingest_tuning' if args.steps else 'ingest'
    main_label = STEPS[-1][0] if args.steps else 'ours'
    # bare, stock and ours must store everything; an experiment (a step or --variant) that does not is recorded.
    short = {
        label: res
        for label, res in results.items()
        if (res['instances_stored'] != res['instances_sent'] and (label in ('bare', 'stock', main_label)))
        or res['acknowledged_but_not_stored']
    }
    if short:
        for label, res in short.items():
            common.log(
                f'FAILED: {label} stored {res["instances_stored"]} of {res["instances_sent"]} instances sent '
                f'(storescu exit codes {res["sender_exit_codes"]}; errors: {res["sender_errors"][:3]})'
            )
        common.log('the benchmark measured nothing comparable: no result file written')
        return 1
    ours = results[main_label]
    ratios = {
        label: {'to_bare': ratio(res, bare), 'to_stock': ratio(res, stock)}
        for label, res in results.items()
        if label != 'bare'
    }
    png = plot(results, common.result_path(name, args.quick)[:-5] + '.png')
    data = {
        'machine': common.machine() | {'facts_for_the_role': common.box_facts()},
        'load': {
            'load_average_before_run': [round(v, 2) for v in load_before],
            'load_average_after_run': [round(v, 2) for v in load_after],
            'note': 'other jobs share the machine: the load before each slice and the CPU the rest of the machine '
            'used during it (other_cpu_seconds) are recorded per target and slice',
        },
        'versions': common.versions(orthanc=version, extra={'dcmtk': dcmtk, 'pydicom': _pydicom_version()}),
        'parameters': {
            'instances': generated['instances'],
            'megabytes': round(generated['bytes'] / 1e6, 1),
            'samples': len(samples),
            'sample_rounds': generated['rounds'],
            'senders': args.senders,
            'slice_instances': per_slice,
            'slices': slices,
            'targets': list(results),
            'sender': 'dcmtk storescu in sender containers with fixed, registered addresses, one association per '
            "sender and slice, files spread round-robin, sent in their own transfer syntax (a storescu profile with "
            "the samples' SOP class/transfer syntax pairs)",
            'dicom_path': 'sender containers -> Docker bridge network -> target container port 4242 (no published '
            'port, no userland proxy)',
            'presentation_contexts': contexts,
            'uids': 'fresh StudyInstanceUID/SeriesInstanceUID per sample study/series and round, fresh SOPInstanceUID',
            'same_files_for_every_target': True,
            'order': 'all targets up together; each slice goes to every target in turn, first one rotating',
            'steps': [{'label': label, 'description': text, 'variant': v} for label, text, v in STEPS]
            if args.steps
            else None,
        },
        'figures': {
            'targets': results,
            'main': main_label,
            'ratio_ours_to_bare': ratio(ours, bare),
            'ratio_ours_to_stock': ratio(ours, stock),
            'ratios': ratios,
            'last_slice_to_first_slice': round(
                ours['slices'][-1]['instances_per_second'] / ours['slices'][0]['instances_per_second'], 2
            ),
            'ratio_ours_to_anchor': round(ours['instances_per_second'] / ANCHOR['postgresql_instances_per_second'], 2),
            'generation_seconds': round(gen_seconds, 1),
            'generation_workers': generated['workers'],
            'total_seconds': round(total, 1),
            'plot': png,
        },
        'anchor': ANCHOR,
    }
    common.write_result(name, args.quick, data)
    print(json.dumps({k: v['instances_per_second'] for k, v in results.items()} | {'ratios': ratios}))
    return 0


def _pydicom_version():
    import pydicom

    return pydicom.__version__


if __name__ == '__main__':
    sys.exit(main())
