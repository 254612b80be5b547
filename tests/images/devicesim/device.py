"""A simulated DICOM device for tests and demos.

    device echo                      C-ECHO the PACS
    device store FILE_OR_DIR...      C-STORE every DICOM file found (directories are walked)
    device find [--level STUDY] [--patient-id ID] [--patient-name NAME]
                                     C-FIND at the PACS, one JSON object per match on stdout
    device serve [--dir DIR]         act as a device the PACS can reach: C-ECHO and C-STORE SCP

Connection settings come from options or the environment: PACS_HOST (default orthanc),
PACS_PORT (4242), PACS_AET (ORTHANC), DEVICE_AET (DEVICE), DEVICE_PORT (11112).
Exit status: 0 success, 1 the PACS refused or failed, 2 usage error or nothing to send.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

LOG = logging.getLogger("device")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _ae(args: argparse.Namespace) -> AE:
    if len(args.aet) > 16:
        raise SystemExit(f"device: --aet '{args.aet}' is longer than 16 characters")
    ae = AE(ae_title=args.aet)
    ae.acse_timeout = args.timeout
    ae.dimse_timeout = args.timeout
    ae.network_timeout = args.timeout
    return ae


def _associate(ae: AE, args: argparse.Namespace):
    assoc = ae.associate(args.host, args.port, ae_title=args.called)
    if not assoc.is_established:
        print(
            f"device: no association with {args.called}@{args.host}:{args.port} (calling AET {args.aet})",
            file=sys.stderr,
        )
        raise SystemExit(1)
    return assoc


def cmd_echo(args: argparse.Namespace) -> int:
    ae = _ae(args)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, args)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    print(json.dumps({"echo": "ok" if code == 0 else "failed", "status": code}))
    return 0 if code == 0 else 1


def _dicom_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"device: '{raw}' is neither a file nor a directory")
    return files


def cmd_store(args: argparse.Namespace) -> int:
    datasets = []
    for path in _dicom_files(args.paths):
        try:
            datasets.append((path, dcmread(path)))
        except (InvalidDicomError, OSError) as exc:
            LOG.info("skipping %s: %s", path, exc)
    if not datasets:
        print("device: no DICOM file found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    ae = _ae(args)
    wanted = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _path, ds in datasets}
    for sop_class, syntax in sorted(wanted):
        ae.add_requested_context(sop_class, [syntax])
    assoc = _associate(ae, args)
    sent = failed = 0
    try:
        for path, ds in datasets:
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code in (0x0000, 0xB000, 0xB006, 0xB007):
                sent += 1
            else:
                failed += 1
                print(f"device: {path} refused, status {code}", file=sys.stderr)
    finally:
        assoc.release()
    print(json.dumps({"sent": sent, "failed": failed}))
    return 0 if failed == 0 else 1


def cmd_find(args: argparse.Namespace) -> int:
    ae = _ae(args)
    model = (
        PatientRootQueryRetrieveInformationModelFind
        if args.level == "PATIENT"
        else StudyRootQueryRetrieveInformationModelFind
    )
    ae.add_requested_context(model)
    query = Dataset()
    query.QueryRetrieveLevel = args.level
    query.PatientID = args.patient_id
    query.PatientName = args.patient_name
    if args.level in ("STUDY", "SERIES"):
        query.StudyInstanceUID = ""
        query.StudyDate = ""
        query.StudyDescription = ""
    if args.level == "SERIES":
        query.SeriesInstanceUID = ""
        query.Modality = ""
    assoc = _associate(ae, args)
    matches = 0
    ok = True
    try:
        for status, identifier in assoc.send_c_find(query, model):
            code = getattr(status, "Status", None)
            if code in (0xFF00, 0xFF01) and identifier is not None:
                matches += 1
                print(json.dumps({elem.keyword: str(elem.value) for elem in identifier if elem.keyword}))
            elif code not in (0x0000, None):
                ok = False
                print(f"device: C-FIND failed with status {code}", file=sys.stderr)
    finally:
        assoc.release()
    LOG.info("%d match(es)", matches)
    return 0 if ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.save_as(target / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        LOG.info("stored %s from %s", ds.SOPInstanceUID, event.assoc.requestor.ae_title)
        return 0x0000

    def on_echo(event):
        LOG.info("echo from %s", event.assoc.requestor.ae_title)
        return 0x0000

    ae = _ae(args)
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    LOG.info("listening as %s on port %d, files go to %s", args.aet, args.listen_port, target)
    ae.start_server(
        ("0.0.0.0", args.listen_port),  # noqa: S104 - a device inside its own container
        block=True,
        evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_C_ECHO, on_echo)],
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="device", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default=_env("PACS_HOST", "orthanc"), help="PACS host (PACS_HOST)")
    p.add_argument("--port", type=int, default=int(_env("PACS_PORT", "4242")), help="PACS DICOM port (PACS_PORT)")
    p.add_argument("--called", default=_env("PACS_AET", "ORTHANC"), help="PACS AE title (PACS_AET)")
    p.add_argument("--aet", default=_env("DEVICE_AET", "DEVICE"), help="our AE title (DEVICE_AET)")
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("echo", help="C-ECHO the PACS").set_defaults(func=cmd_echo)
    store = sub.add_parser("store", help="C-STORE files or directories")
    store.add_argument("paths", nargs="+")
    store.set_defaults(func=cmd_store)
    find = sub.add_parser("find", help="C-FIND at the PACS")
    find.add_argument("--level", choices=["PATIENT", "STUDY", "SERIES"], default="STUDY")
    find.add_argument("--patient-id", default="")
    find.add_argument("--patient-name", default="")
    find.set_defaults(func=cmd_find)
    serve = sub.add_parser("serve", help="C-ECHO/C-STORE SCP")
    serve.add_argument("--listen-port", type=int, default=int(_env("DEVICE_PORT", "11112")))
    serve.add_argument("--dir", default="/tmp/received")
    serve.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
