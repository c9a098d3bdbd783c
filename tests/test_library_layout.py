"""The library's layout (issue 17): one concept per module, so every public name is defined in
exactly one module of `bertedu` (importing it elsewhere is fine), and the library never
imports the book's notebooks, tests, benchmarks or exercises."""
import ast
import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

import bertedu

PACKAGE = Path(bertedu.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
OUTSIDE = ("tests", "notebooks", "benchmarks", "exercises", "conftest")


def defined_names(path: Path) -> list[str]:
    """The public names a module defines at its top level: functions, classes, constants."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
            names += [e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts
                      if isinstance(e, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_")]


def test_the_layout_test_reads_definitions_not_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from x import y\nimport z\nA = 1\nB, _c = 2, 3\nd: int = 4\n"
                      "def f(): pass\nclass K: pass\ndef _private(): pass\n")
    assert defined_names(module) == ["A", "B", "d", "f", "K"]


def test_every_public_name_is_defined_in_exactly_one_module():
    where = defaultdict(list)
    for path in MODULES:
        for name in defined_names(path):
            where[name].append(path.stem)
    twice = {name: modules for name, modules in where.items() if len(modules) > 1}
    assert not twice, f"defined in more than one bertedu module (keep one, import it elsewhere): {twice}"


def test_the_library_never_imports_the_book_or_its_tests():
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported = [node.module or ""]
            else:
                continue
            for name in imported:
                assert name.split(".")[0] not in OUTSIDE, f"bertedu/{path.name} imports {name}"


def test_the_package_and_every_module_import():
    importlib.reload(bertedu)
    for module in pkgutil.iter_modules([str(PACKAGE)]):
        importlib.import_module(f"bertedu.{module.name}")
    assert {path.stem for path in MODULES} - {"__init__"} == {m.name for m in pkgutil.iter_modules([str(PACKAGE)])}


def code_lines(source: str, function: ast.FunctionDef) -> int:
    """Lines of a function that hold code: not blank, not only a comment, not its docstring
    (a nested function's lines count for the function around it too)."""
    first = function.body[0]
    docstring = set()
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        docstring = set(range(first.lineno, first.end_lineno + 1))
    lines = source.splitlines()[function.lineno - 1:function.end_lineno]
    return sum(1 for number, line in enumerate(lines, start=function.lineno)
               if line.strip() and not line.strip().startswith("#") and number not in docstring)


def test_code_lines_skip_the_docstring_comments_and_blank_lines():
    source = 'def f(x):\n    """Doc.\n\n    More."""\n    # a comment\n\n    y = x\n    return y\n'
    assert code_lines(source, ast.parse(source).body[0]) == 3  # def, y = x, return


def test_no_function_is_over_80_code_lines():
    long = {}
    for path in MODULES:
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(source, node) > 80:
                long[f"{path.stem}.{node.name}"] = code_lines(source, node)
    assert not long, f"split these into helpers (at most 80 code lines each): {long}"
