"""The shape of the code: a core that knows nothing of its faces."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "monthlydocs"
FACES = (
    "typer",
    "rich",
    "flask",
    "flask_babel",
    "flask_wtf",
    "flask_limiter",
    "werkzeug",
    "waitress",
)


def core_modules():
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("cli", "web") or relative.name == "__main__.py":
            continue  # the faces, and the entry point that starts one
        yield relative, ast.parse(path.read_text(encoding="utf-8"))


def test_the_core_never_imports_a_face():
    for relative, tree in core_modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.level and (node.module or "").split(".")[0] in ("cli", "web"):
                    raise AssertionError(f"{relative} imports the face {node.module}")
            for name in names:
                assert name.split(".")[0] not in FACES, f"{relative} imports {name}"


def test_writes_that_read_first_take_the_write_lock():
    """A deferred BEGIN that reads, then writes, fails at once with "database is
    locked" when another process wrote meanwhile; the core uses BEGIN IMMEDIATE."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "db.py":
            continue
        assert "db.atomic()" not in path.read_text(encoding="utf-8"), (
            f"{path.relative_to(PACKAGE)} uses db.atomic(): use write_transaction(db)"
        )


def test_faces_write_no_sql():
    import re

    statement = re.compile(r"[\"'](SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER) ")
    for face in ("cli", "web"):
        for path in (PACKAGE / face).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert not statement.search(text), (
                f"{path.relative_to(PACKAGE)} writes SQL: move it into the core"
            )
