"""The one direction of imports (docs/ARCHITECTURE.md), read from the source of every module."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path):
    """Return the absolute names of the modules a source file imports (relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else node.module or base
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def sources(package, *, leaving_out=()):
    folder = ROOT / package.replace(".", "/")
    skipped = [ROOT / name.replace(".", "/") for name in leaving_out]
    return [path for path in folder.rglob("*.py") if not any(path.is_relative_to(s) for s in skipped)]


@pytest.mark.parametrize(
    ("package", "leaving_out", "forbidden"),
    [
        ("modelstore", (), "recommendations"),
        ("modelstore", (), "sklearn"),
        ("recommendations", ("recommendations.training",), "recommendations.training"),
        ("modelstore.bundles", (), "django"),
        ("recommendations.engines", (), "django"),
        # Experiments know nothing of serving: the cache reads them through their selectors.
        ("recommendations.experiments", (), "recommendations.serving"),
        ("recommendations.experiments", (), "recommendations.api"),
        # Engines take arrays: they know neither serving, the API, the registry nor Django.
        ("recommendations.engines", (), "recommendations.serving"),
        ("recommendations.engines", (), "recommendations.api"),
        ("recommendations.engines", (), "modelstore"),
    ],
)
def test_imports_point_one_way(package, leaving_out, forbidden):
    found = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if name == forbidden or name.startswith(f"{forbidden}.")
        )
        for path in sources(package, leaving_out=leaving_out)
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_the_bundle_format_knows_no_registry():
    """modelstore.bundles is read by the registry, never the other way: it imports only itself."""
    found = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path)
            if name.startswith("modelstore.") and not name.startswith("modelstore.bundles")
        )
        for path in sources("modelstore.bundles")
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_the_rule_sees_relative_imports():
    module = ROOT / "recommendations" / "serving" / "cache.py"
    assert "recommendations.serving.loading" in imported_modules(module)
