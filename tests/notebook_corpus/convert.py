"""Turn the corpus's third-party sources into the notebooks under ``notebooks/``.

Every notebook of the corpus is made from one upstream file, named in
``MANIFEST.json`` (repository, ref, path, licence). This script reads those
files from a local copy, applies the edits the manifest records for each (each
with its reason; every ``old`` text must occur exactly once, so an edit never
silently stops applying), converts the result to a notebook and writes it, with
cell ids derived from the cell position so that converting twice gives the same
bytes.

One source format is understood, ``sphinx-gallery``: a ``.py`` example of
scikit-learn's gallery. The module docstring becomes the first markdown cell; a
line ``# %%`` or a line of 20 or more ``#`` starts a text block made of the
comment lines that follow it, and the code after it, up to the next such line,
is one code cell.

Usage::

    python tests/notebook_corpus/convert.py SOURCES           # (re)write the notebooks
    python tests/notebook_corpus/convert.py SOURCES --check   # fail if one is out of date

``SOURCES/<owner>/<repo>/<path>`` holds the upstream files; README.md says
where each came from. Only the standard library and nbformat are needed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "MANIFEST.json"
NOTEBOOKS = HERE / "notebooks"

# sphinx-gallery's block separators (sphinx_gallery.py_source_parser): "# %%" with
# an optional title, or a line of at least 20 hashes.
_SEPARATOR = re.compile(r"^(# ?%%.*|#{20,}\s*)$")


def load_manifest() -> dict[str, Any]:
    """The parsed ``MANIFEST.json``."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def apply_edits(text: str, edits: list[dict[str, str]], where: str) -> str:
    """Apply ``edits`` (``old`` -> ``new``) in order; each ``old`` must occur exactly once."""
    for edit in edits:
        count = text.count(edit["old"])
        if count != 1:
            raise ValueError(
                f"{where}: edit {edit['old']!r} matches {count} times (expected once); "
                "the upstream file changed: update the edit in MANIFEST.json"
            )
        text = text.replace(edit["old"], edit["new"])
    return text


def split_sphinx_gallery(text: str) -> list[tuple[str, str]]:
    """Split a sphinx-gallery example into ``(kind, source)`` cells."""
    lines = text.splitlines()
    cells: list[tuple[str, str]] = []
    start = 0
    module = ast.parse(text)
    first = module.body[0] if module.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        cells.append(("markdown", first.value.value.strip()))
        start = first.end_lineno or 0
    code: list[str] = []

    def flush_code() -> None:
        source = "\n".join(code).strip("\n")
        if source.strip():
            cells.append(("code", source))
        code.clear()

    index = start
    while index < len(lines):
        line = lines[index]
        if _SEPARATOR.match(line):
            flush_code()
            index += 1
            prose = []
            while index < len(lines) and lines[index].startswith("#"):
                prose.append(re.sub(r"^# ?", "", lines[index]))
                index += 1
            if "".join(prose).strip():
                cells.append(("markdown", "\n".join(prose).strip("\n")))
            continue
        code.append(line)
        index += 1
    flush_code()
    return cells


def build_notebook(entry: dict[str, Any], text: str) -> Any:
    """The notebook for one manifest entry, from its (edited) source text."""
    import nbformat

    fmt = entry["source"]["format"]
    if fmt != "sphinx-gallery":
        raise ValueError(f"{entry['name']}: unknown source format {fmt!r}")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for position, (kind, source) in enumerate(split_sphinx_gallery(text)):
        cell_id = f"cell-{position:02d}"  # stable: converting twice gives the same file
        if kind == "code":
            cell = nbformat.v4.new_code_cell(source, id=cell_id)
        else:
            cell = nbformat.v4.new_markdown_cell(source, id=cell_id)
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def convert(entry: dict[str, Any], sources: Path) -> str:
    """The notebook text for one entry."""
    import nbformat

    src = entry["source"]
    upstream = sources / src["repository"] / src["path"]
    raw = upstream.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != src["sha256"]:
        raise ValueError(
            f"{entry['name']}: {upstream} has sha256 {digest}, the manifest records "
            f"{src['sha256']}: not the upstream version the corpus was made from"
        )
    text = apply_edits(raw.decode("utf-8"), entry.get("edits", []), entry["name"])
    return nbformat.writes(build_notebook(entry, text)) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: convert (or ``--check``) every notebook of the manifest."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", type=Path, help="directory holding <owner>/<repo>/<path>")
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--only", action="append", help="convert only this notebook name")
    args = parser.parse_args(argv)
    stale = []
    entries = load_manifest()["notebooks"]
    # A file in notebooks/ that no manifest entry makes: left over from a removed entry.
    expected = {f"{entry['name']}.ipynb" for entry in entries}
    extra = sorted(p.name for p in NOTEBOOKS.iterdir() if p.name not in expected)
    for entry in entries:
        if args.only and entry["name"] not in args.only:
            continue
        path = NOTEBOOKS / f"{entry['name']}.ipynb"
        data = convert(entry, args.sources).encode("utf-8")
        if path.exists() and path.read_bytes() == data:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            print(f"wrote {path.relative_to(HERE)}")
    if extra:
        print("not made from the manifest (remove them): " + ", ".join(extra))
    if args.check and stale:
        print("out of date: " + ", ".join(str(p.relative_to(HERE)) for p in stale))
    return 1 if args.check and (stale or extra) else 0


if __name__ == "__main__":
    sys.exit(main())
