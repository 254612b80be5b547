"""Render the step times that tools/test.sh records (a TSV: step, seconds, exit status) as a Markdown table.

    python3 tools/test_times.py bench/results/make_test_times.tsv

docs/test-bed.md carries the table of the committed results file between two marker comments; a unit test
checks that it is exactly what this script renders, so the figures in the docs always come from the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

BEGIN = "<!-- make-test-times:begin -->"
END = "<!-- make-test-times:end -->"


def parse(text: str) -> tuple[dict[str, str], list[tuple[str, int, int]]]:
    """Comment lines `# key: value` (when and where it was measured), then step<TAB>seconds<TAB>status."""
    meta, rows = {}, []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _sep, value = line[1:].partition(":")
            meta[key.strip()] = value.strip()
        elif line.strip():
            name, seconds, status = line.split("\t")
            rows.append((name, int(seconds), int(status)))
    return meta, rows


def minutes(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def render(text: str) -> str:
    meta, rows = parse(text)
    out = [BEGIN, ""]
    if meta:
        out.append("; ".join(f"{key}: {value}" for key, value in meta.items()) + ".")
        out.append("")
    out += ["| Step | Time (min:s) | Result |", "| --- | ---: | --- |"]
    for name, seconds, status in rows:
        out.append(f"| {name} | {minutes(seconds)} | {'passed' if status == 0 else f'failed ({status})'} |")
    out += ["", END]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print(render(Path(argv[1]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
