"""Draw kernelflow's layers from the import-linter contract in pyproject.toml.

The contract (``[tool.importlinter]``, checked by ``lint-imports`` in
``make lint``) is the one statement of the layers; this script turns it into
the picture in docs/decisions/layers.md, so the picture cannot drift from
what is enforced:

    python scripts/layers_picture.py                 # print the picture
    python scripts/layers_picture.py --write FILE    # replace it in FILE
    python scripts/layers_picture.py --check FILE    # exit 1 if FILE's is stale

With ``--figures`` it also counts, from the code as it is, the lines of each
layer and the imports from each layer into each lower one (not part of the
checked picture: those numbers move with every change). Needs Python 3.11 or later
(tomllib), which `make setup`'s .venv has.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- layers:begin (made by scripts/layers_picture.py; do not edit by hand) -->"
END = "<!-- layers:end -->"

#: What each layer is for, top to bottom, in the contract's order.
NAMES = [
    "L7 front ends",
    "L6 applications",
    "L5 user API",
    "L4 engine",
    "L3 execution",
    "L2 model",
    "L1 store",
    "L0 foundations",
]

WIDTH = 78


def contract() -> dict:
    """The ``layers`` contract of pyproject.toml's import-linter section."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for entry in config["contracts"]:
        if entry.get("id") == "layers":
            return entry
    raise SystemExit("pyproject.toml has no import-linter contract with id = 'layers'")


def layer_modules(entry: dict) -> list[list[str]]:
    """Each layer's modules, top to bottom (siblings split on ``:`` or ``|``)."""
    layers = []
    for line in entry["layers"]:
        parts = line.replace("|", ":").split(":")
        layers.append([p.strip() for p in parts if p.strip()])
    if len(layers) != len(NAMES):
        raise SystemExit(f"the contract has {len(layers)} layers, NAMES {len(NAMES)}: update both")
    return layers


def _wrap(modules: list[str], width: int) -> list[str]:
    """Module names joined by `` · ``, broken between names to fit ``width``."""
    rows = [""]
    for module in modules:
        joined = f"{rows[-1]} · {module}" if rows[-1] else module
        if len(joined) > width and rows[-1]:
            rows.append(module)
        else:
            rows[-1] = joined
    return rows


def picture(entry: dict) -> str:
    """The layers as a text picture: a box per layer, arrows down, the exceptions."""
    lines = ["```text"]
    inner = WIDTH - 4
    layers = layer_modules(entry)
    for index, (name, modules) in enumerate(zip(NAMES, layers, strict=True)):
        body = _wrap(modules, inner - 2)
        lines.append("┌" + "─" * (WIDTH - 2) + "┐")
        lines.append("│ " + name.ljust(WIDTH - 4) + " │")
        for text in body:
            lines.append("│   " + text.ljust(WIDTH - 6) + " │")
        lines.append("└" + "─" * (WIDTH - 2) + "┘")
        if index < len(layers) - 1:
            lines.append(" " * (WIDTH // 2 - 1) + "│ imports only go down")
            lines.append(" " * (WIDTH // 2 - 1) + "▼")
    exceptions = entry.get("ignore_imports", [])
    if exceptions:
        lines.append("")
        lines.append("The only imports that go up (each a lazy call, documented where it is made):")
        lines.extend(f"  {item}" for item in exceptions)
    lines.append("```")
    return "\n".join(lines)


def figures(entry: dict) -> str:
    """Lines per layer and imports from each layer into each lower one, as they are today."""
    import grimp

    graph = grimp.build_graph("kernelflow")
    layers = layer_modules(entry)

    def layer_of(module: str) -> int | None:
        rest = module.split(".", 1)[1] if "." in module else ""
        top = rest.split(".", 1)[0]
        for index, modules in enumerate(layers):
            if top in modules:
                return index
        return None

    counts: dict[tuple[int, int], int] = {}
    for importer in graph.modules:
        source = layer_of(importer)
        for imported in graph.find_modules_directly_imported_by(importer):
            target = layer_of(imported)
            if source is not None and target is not None and target != source:
                counts[source, target] = counts.get((source, target), 0) + 1
    sizes = [0] * len(layers)
    package = ROOT / "kernelflow"
    for path in package.rglob("*.py"):
        index = layer_of("kernelflow." + ".".join(path.relative_to(package).with_suffix("").parts))
        if index is not None:
            sizes[index] += len(path.read_text().splitlines())
    out = []
    for index, name in enumerate(NAMES):
        uses = ", ".join(
            f"{NAMES[target].split()[0]} {count}"
            for (source, target), count in sorted(counts.items())
            if source == index
        )
        out.append(f"{name:16} {sizes[index]:6,} lines   imports into: {uses or '-'}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the picture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="FILE")
    group.add_argument("--check", type=Path, metavar="FILE")
    parser.add_argument("--figures", action="store_true")
    args = parser.parse_args(argv)
    entry = contract()
    drawn = f"{BEGIN}\n{picture(entry)}\n{END}"
    if args.figures:
        print(figures(entry))
        return 0
    if args.write is None and args.check is None:
        print(drawn)
        return 0
    path = args.write or args.check
    text = path.read_text()
    if BEGIN not in text or END not in text:
        print(f"{path} has no layers picture markers; add {BEGIN!r} ... {END!r}", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    updated = head + drawn + tail
    if args.check:
        if updated != text:
            print(
                f"{path}: the layers picture is stale; run python scripts/layers_picture.py "
                f"--write {path}",
                file=sys.stderr,
            )
            return 1
        return 0
    path.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
