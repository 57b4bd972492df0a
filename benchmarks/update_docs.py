"""Copy the saved benchmark tables (benchmarks/results/*.md) into docs/results.md.

Each table sits between a pair of markers in docs/results.md, ``<!-- results:NAME -->`` …
``<!-- /results:NAME -->``; everything outside the markers (the headings and the readings of the
figures) is written by hand and kept.  The figures in the documentation are then exactly what the
scripts measured.  A results file without markers yet is appended under its own heading, so no
measurement is left out.  Run after the benchmarks:

    python -m benchmarks.update_docs           # rewrite docs/results.md
    python -m benchmarks.update_docs --check   # exit 1 if docs/results.md is not up to date
"""

from __future__ import annotations

import argparse
import json
import re

from benchmarks.common.results import REPO, RESULTS, demo_model_hash

DOC = REPO / "docs" / "results.md"
MODEL_FREE = {"scoring", "projection"}  # tables that do not depend on the demo model's weights
HEADER = re.compile(r"^<!-- (?P<command>.*?) · (?P<date>[^·]*?) · (?P<machine>[^·]*?) -->\n?")


def marked(name: str, body: str) -> str:
    return f"<!-- results:{name} -->\n{body}\n<!-- /results:{name} -->"


def staleness(name: str, current: str | None) -> str | None:
    """A warning when a model-dependent table was measured on other demo-model weights than the committed ones."""
    path = RESULTS / f"{name}.json"
    if name in MODEL_FREE or not path.is_file():
        return None
    measured = json.loads(path.read_text())["meta"].get("demo_model")
    if measured == current:
        return None
    return (f"> **Measured on an earlier demo model** (weights `{measured or 'not recorded'}`; the committed model "
            f"is `{current}`). Not re-run since the model changed: read it as that model's result.")


def table_block(name: str, current: str | None) -> str:
    """One results file as it appears in the documentation: how it was measured, a staleness warning, the tables."""
    text = (RESULTS / f"{name}.md").read_text().strip()
    header = HEADER.match(text)
    body = text[header.end():].strip() if header else text
    source = f"[`benchmarks/results/{name}.md`](../benchmarks/results/{name}.md)"
    line = (f"`{header['command']}` on {header['date']} ({header['machine']}) → {source}" if header
            else f"→ {source}")
    warning = staleness(name, current)
    return "\n\n".join([line, *([warning] if warning else []), body])


def render(doc: str) -> str:
    """docs/results.md with every marked region replaced by its current table and unmarked results appended."""
    current = demo_model_hash()
    names = sorted(path.stem for path in RESULTS.glob("*.md"))
    for name in names:
        pattern = re.compile(rf"<!-- results:{re.escape(name)} -->\n.*?<!-- /results:{re.escape(name)} -->", re.S)
        block = marked(name, table_block(name, current))
        if pattern.search(doc):
            doc = pattern.sub(lambda _: block, doc, count=1)
        else:
            doc = doc.rstrip("\n") + f"\n\n## {name}\n\n_No reading written yet._\n\n{block}\n"
    for orphan in sorted(set(re.findall(r"<!-- results:([\w.-]+) -->", doc)) - set(names)):
        raise SystemExit(f"docs/results.md has a region for '{orphan}' but benchmarks/results/{orphan}.md does not exist")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether docs/results.md is up to date")
    args = parser.parse_args(argv)
    if not DOC.is_file():
        raise SystemExit(f"{DOC.relative_to(REPO)} is missing: it holds the readings the tables are copied beside")
    old = DOC.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("docs/results.md differs from benchmarks/results/*.md: run python -m benchmarks.update_docs")
            return 1
        print("docs/results.md is up to date")
        return 0
    DOC.write_text(new)
    print(f"updated {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
