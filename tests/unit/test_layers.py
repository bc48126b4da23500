"""The package's import graph: no cycles, and the core loads without pandas or pyspark."""

import subprocess
import sys

import grimp


def _cycles(graph) -> list[tuple[str, str]]:
    """Pairs of modules that import each other, directly or through others."""
    found = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(imported=module, importer=imported):
                found.append((module, imported))
    return found


def test_no_module_of_the_package_imports_itself_back():
    graph = grimp.build_graph("odibi_core", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_core_loads_without_pandas_pyspark_or_duckdb():
    code = (
        "import sys, odibi_core, odibi_core.core.config, odibi_core.core.dag, "
        "odibi_core.execution.plan; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'pyspark', 'duckdb', 'delta')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_no_function_of_the_execution_layer_is_longer_than_40_lines():
    import ast
    from pathlib import Path

    import odibi_core

    root = Path(odibi_core.__file__).parent
    files = [*sorted((root / "execution").glob("*.py")), root / "orchestrator.py"]
    too_long = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 40:
                    too_long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert too_long == []
