"""No package imports a package above its own layer (the order is in docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "tradecast"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def layer_of() -> dict[str, int]:
    """Package (or top-level module) name -> its row, 0 at the bottom."""
    match = re.search(r"```layers\n(.*?)```", ARCHITECTURE.read_text("utf-8"), re.S)
    assert match, "docs/ARCHITECTURE.md has no ```layers block"
    rows = [line.split() for line in match.group(1).strip().splitlines()]
    return {name: rank for rank, row in enumerate(reversed(rows)) for name in row}


def unit_of(path: Path) -> str:
    """The layer unit a source file belongs to: its sub-package, or its module's name."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_units(path: Path) -> set[str]:
    """Every tradecast sub-package or module ``path`` imports (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tradecast" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_package_has_a_layer() -> None:
    layers = layer_of()
    units = {unit_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units - layers.keys() == set(), "add these to the layers block of ARCHITECTURE.md"


def test_no_import_runs_up_or_sideways() -> None:
    layers = layer_of()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = unit_of(path)
        if unit == "__init__":
            continue
        for target in imported_units(path) - {unit}:
            if target in layers and layers[target] >= layers[unit]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports tradecast.{target}")
    assert wrong == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [("from tradecast.api.app import x\n", {"api"}), ("import tradecast.desk.store\n", {"desk"})],
)
def test_the_import_walk_sees_both_import_forms(
    tmp_path: Path, source: str, expected: set[str]
) -> None:
    module = tmp_path / "m.py"
    module.write_text(source)
    assert imported_units(module) == expected
