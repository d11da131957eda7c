"""Data flows one way: video -> tad.features -> store -> tad.datasets -> tad.detectors -> JSON -> tad.eval.

No package imports one upstream of it (checked on the source, every import statement)."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GLUE = ["tad.datasets", "tad.engine", "tad.cli", "tad.demo", "tad.apis"]
FORBIDDEN = {
    "features": ["tad.detectors", "tad.eval", *GLUE],
    "detectors": ["tad.features", "tad.eval", *GLUE],
    "eval": ["tad.features", "tad.detectors", *GLUE],
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_package_imports_upstream():
    violations = []
    for folder, banned in FORBIDDEN.items():
        files = sorted((REPO / folder).rglob("*.py"))
        assert files, folder
        for path in files:
            for name in _imports(path):
                if any(name == b or name.startswith(b + ".") for b in banned):
                    violations.append(f"{path.relative_to(REPO)} imports {name}")
    assert violations == []


def test_library_layers_do_not_import_the_cli():
    """The demo and tad.apis call library code; only tad/cli/*.py may import tad.cli."""
    violations = []
    for folder in ("tad/apis", "tad/demo"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for name in _imports(path):
                if name == "tad.cli" or name.startswith("tad.cli."):
                    violations.append(f"{path.relative_to(REPO)} imports {name}")
    assert violations == []
