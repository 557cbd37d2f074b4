"""The package's shape: data flows one way, so imports only point back down the flow.

The layers below are the picture at the top of docs/architecture.md. A module may import its own
layer and the layers before it, never a later one; only the entry points (plugin, CLI) import the
renderers. Read from the source with ``ast`` (lazy imports inside functions count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_memleak"

#: The flow, first to last. A module is named by its dotted path under the package; a package
#: name stands for every module in it.
LAYERS: list[tuple[str, ...]] = [
    ("vocabulary", "errors", "units", "hookspec", "version"),
    ("model",),
    ("settings", "baseline.rules", "atomic", "encoding"),
    ("trend_py", "trend_np"),
    ("probes", "caches", "hygiene", "iteration", "stats"),
    ("series",),
    ("runner",),
    ("detectors",),
    ("diagnose", "origin"),
    ("groups",),
    ("analysis", "soak"),
    ("baseline",),
    ("outcome",),
    ("render",),
    ("fixture",),
    ("monitor",),
    ("plugin", "cli", "__main__", "__init__"),
]

#: Only these may import the renderers.
RENDER_IMPORTERS = ("plugin", "cli", "monitor", "render")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = (
            ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)
        )
        out[name] = path
    return out


def _layer(module: str) -> int:
    """The layer of a module: its most specific entry in LAYERS."""
    best, best_len = -1, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = i, len(name)
    return best


def _imports(module: str, path: Path) -> set[str]:
    """The package modules ``module`` imports (relative and absolute forms)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("pytest_memleak"):
                target = node.module.removeprefix("pytest_memleak").lstrip(".")
            else:
                continue
            names = {f"{target}.{a.name}".lstrip(".") for a in node.names}
            found.update(names)
            if target:
                found.add(target)
            elif names - set(_modules()):  # a name of the package's own __init__.py
                found.add("__init__")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("pytest_memleak."):
                    found.add(a.name.removeprefix("pytest_memleak."))
    modules = _modules()
    return {t for t in found if t in modules and t != module}


MODULES = _modules()


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m and _layer(m) < 0] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m))
def test_imports_point_back_down_the_flow(module):
    mine = _layer(module)
    later = {t: LAYERS[_layer(t)][0] for t in _imports(module, MODULES[module]) if _layer(t) > mine}
    assert later == {}, f"{module} (layer {LAYERS[mine]}) imports later modules: {later}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m))
def test_only_the_entry_points_import_the_renderers(module):
    if module.split(".")[0] in RENDER_IMPORTERS:
        return
    render = sorted(t for t in _imports(module, MODULES[module]) if t.split(".")[0] == "render")
    assert render == [], f"{module} imports {render}"


def test_the_layers_are_the_documented_picture():
    """docs/architecture.md names every module the package has."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [m for m in MODULES if m and m.rsplit(".", 1)[-1] + ".py" not in doc and m not in doc]
    assert missing == []
