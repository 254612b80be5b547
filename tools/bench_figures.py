# ruff: noqa: RUF001 (the docs use the multiplication sign and the en dash)
"""Render the benchmark figures of the docs from bench/results/*.json, between marker comments.

    python3 tools/bench_figures.py            # print every block
    python3 tools/bench_figures.py --write    # rewrite the blocks in docs/performance.md and bench/README.md
    python3 tools/bench_figures.py --check    # exit 1 when a doc differs from what the JSON gives

Each block sits between `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->` in its Markdown file; a
unit test (tests/unit/tools/test_bench_figures.py) checks that every block is exactly what this script
renders from the committed result files, so no figure in the docs is typed by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def begin(name: str) -> str:
    return f"<!-- bench:{name}:begin -->"


def end(name: str) -> str:
    return f"<!-- bench:{name}:end -->"


def load(name: str, results: Path = RESULTS) -> dict | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def num(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _load_range(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{min(values):.1f}–{max(values):.1f}" if values else "?"


def _when(doc: dict) -> str:
    machine = doc.get("machine") or {}
    return f"{doc.get('date', '?')[:10]}, {machine.get('cpu_count', '?')} CPU"


def ingest_loads(doc: dict) -> list:
    targets = (doc.get("figures") or {}).get("targets") or {}
    return [s.get("load_average_1min_before") for t in targets.values() for s in t.get("slices") or []]


def row_modules_vs_uri(doc: dict) -> str:
    fig = doc["figures"]
    par = doc.get("parameters") or {}
    mod, uri = fig["modules"], fig["uri"]
    users = par.get("users", "?")
    return (
        f"| Converged clinic ({par.get('devices', '?')} devices, {users} users, {par.get('peers', '?')} peers): "
        f"our modules vs a hand-written `ansible.builtin.uri` playbook "
        f"| {mod['requests']} vs {uri['requests']} REST requests ({fig['request_ratio_uri_to_modules']}× fewer), "
        f"{mod['writes']} writes each, {num(mod['wall_seconds_median'])} s vs {num(uri['wall_seconds_median'])} s "
        f"| {_when(doc)} |"
    )


def row_fleet_drift(doc: dict) -> str:
    runs = doc["figures"]["runs"]
    new = {r["clinics"]: r for r in runs if r.get("playbook") == "drift.yml"}
    old = {r["clinics"]: r for r in runs if r.get("playbook") == "drift_before.yml"}
    sizes = []
    for clinics, run in sorted(new.items()):
        text = f"{'stand-ins ' if run.get('stand_in') else ''}{clinics}: {num(run['wall_seconds_median'])} s"
        if clinics in old:
            text += f" (former {num(old[clinics]['wall_seconds_median'])} s)"
        sizes.append(text)
    real = [c for c, r in new.items() if not r.get("stand_in")]
    per_clinic = new[max(real)]["seconds_per_clinic"] if real else None
    loads = [x for r in runs for x in r.get("load_average_1min_before_runs", [])]
    load = f", load {_load_range(loads)}" if loads else ""
    tasks_new = next(iter(new.values()))["tasks_per_host"] if new else "?"
    tasks_old = next(iter(old.values()))["tasks_per_host"] if old else "?"
    return (
        f"| No-op fleet drift check (`playbooks/drift.yml`, {tasks_new} tasks per clinic, against the former "
        f"{tasks_old}-task check; forks {(doc.get('parameters') or {}).get('forks', '?')}) | {', '.join(sizes)}"
        f" ({num(per_clinic, 2)} s per clinic at {max(real) if real else '?'} real clinics) | {_when(doc)}{load} |"
    )


def row_ingest(doc: dict) -> str:
    fig = doc["figures"]
    par = doc["parameters"]
    targets = fig["targets"]
    ours = targets[fig["main"]]
    rates = ", ".join(f"{label} {num(t['instances_per_second'])}/s" for label, t in targets.items())
    run = "tuning run (`--steps`)" if doc.get("benchmark") == "ingest_tuning" else "`make bench`"
    return (
        f"| C-STORE ingest, {run}: {num(par['instances'])} instances per target, {par['senders']} parallel `storescu` "
        f"from registered addresses | {rates}: ours/bare **{fig['ratio_ours_to_bare']}**, "
        f"ours/stock **{fig['ratio_ours_to_stock']}**; ours p50/p99 latency {num(ours['latency_ms_p50'])}/"
        f"{num(ours['latency_ms_p99'])} ms, {num(ours['cpu_ms_per_instance'])} ms CPU per instance "
        f"| {_when(doc)}, load {_load_range(ingest_loads(doc))} |"
    )


def row_dedupe_quality(doc: dict) -> str:
    by_generator: dict[str, list] = {}
    for run in doc["runs"]:
        by_generator.setdefault(run.get("generator", "synth_patients"), []).append(run)
    parts = "; ".join(
        f"{generator}: " + ", ".join(f"{r['precision']:.3f} / {r['recall']:.3f} at {num(r['records'])}" for r in runs)
        for generator, runs in by_generator.items()
    )
    return (
        "| Duplicate-patient matching quality (synthetic clinics with ground truth; precision / recall of definite "
        f"groups) | {parts} | {_when(doc)} |"
    )


def row_dedupe_scale(doc: dict) -> str:
    runs = doc["runs"]
    sizes = ", ".join(f"{num(r['records'])} records {num(r['match_seconds'])} s" for r in runs)
    return (
        f"| Duplicate-patient matching scale | {sizes} (peak {num(runs[-1]['peak_rss_mib'], 0)} MiB) | {_when(doc)} |"
    )


ROWS = [
    ("modules_vs_uri", row_modules_vs_uri),
    ("fleet_drift", row_fleet_drift),
    ("ingest", row_ingest),
    ("dedupe_quality", row_dedupe_quality),
    ("dedupe_scale", row_dedupe_scale),
]


def block_performance(results: Path) -> list[str]:
    lines = ["| Benchmark | Result | Measured |", "| --- | --- | --- |"]
    for name, row in ROWS:
        doc = load(name, results)
        if name == "ingest" and doc is None:
            doc = load("ingest_tuning", results)  # no full run stored yet: the tuning run has the same targets
        if doc is not None:
            lines.append(row(doc))
    return lines


def block_ingest_tuning(results: Path) -> list[str]:
    doc = load("ingest_tuning", results)
    if doc is None:
        return ["(no `bench/results/ingest_tuning.json` yet: `bench/ingest.py --steps`)"]
    fig, par = doc["figures"], doc["parameters"]
    targets = fig["targets"]
    steps = {s["label"]: s["description"] for s in par.get("steps") or []}
    lines = [
        f"`bench/results/ingest_tuning.json`, {doc['date']}: {num(par['instances'])} instances per target in slices "
        f"of {num(par['slice_instances'])}, {par['senders']} senders, every target in the same interleaved run; "
        f"{(doc.get('machine') or {}).get('cpu_count', '?')} CPU, load average {_load_range(ingest_loads(doc))} "
        f"(other jobs on the machine: compare the ratios, not the rates).",
        "",
        "| target | change | instances/s | × bare | × stock | p50 / p99 latency (ms) | CPU ms per instance |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, res in targets.items():
        ratios = (fig.get("ratios") or {}).get(label) or {}
        change = steps.get(label) or {"bare": "storescp --fork (wire limit)", "stock": "Orthanc defaults, SQLite"}.get(
            label, "variant"
        )
        lines.append(
            f"| {label} | {change} | {num(res['instances_per_second'])} | {num(ratios.get('to_bare'), 2)} "
            f"| {num(ratios.get('to_stock'), 2)} | {num(res['latency_ms_p50'])} / {num(res['latency_ms_p99'])} "
            f"| {num(res['cpu_ms_per_instance'], 2)} |"
        )
    return lines


# Markdown file -> the blocks it carries.
BLOCKS = {
    "docs/performance.md": {"table": block_performance},
    "bench/README.md": {"ingest-tuning": block_ingest_tuning},
}


def render(name: str, lines: list[str]) -> str:
    return "\n".join([begin(name), "", *lines, "", end(name)])


def rendered_docs(root: Path = ROOT, results: Path = RESULTS) -> dict[str, tuple[str, str]]:
    """{file: (current text, text with every block re-rendered)}."""
    out = {}
    for rel, blocks in BLOCKS.items():
        text = (root / rel).read_text()
        new = text
        for name, make in blocks.items():
            start, stop = new.find(begin(name)), new.find(end(name))
            if start < 0 or stop < start:
                raise SystemExit(f"{rel}: markers {begin(name)} ... {end(name)} missing")
            new = new[:start] + render(name, make(results)) + new[stop + len(end(name)) :]
        out[rel] = (text, new)
    return out


def main(argv: list[str]) -> int:
    docs = rendered_docs()
    if "--write" in argv:
        for rel, (old, new) in docs.items():
            if old != new:
                (ROOT / rel).write_text(new)
                print(f"rewrote {rel}")
        return 0
    if "--check" in argv:
        stale = [rel for rel, (old, new) in docs.items() if old != new]
        for rel in stale:
            print(f"{rel}: figures differ from bench/results/*.json (python3 tools/bench_figures.py --write)")
        return 1 if stale else 0
    for rel, blocks in BLOCKS.items():
        for name, make in blocks.items():
            print(f"# {rel}\n{render(name, make(RESULTS))}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
