"""docs/settings.md documents every environment variable the settings read, with its default."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_DIR = ROOT / "skinportal" / "settings"
DOCS = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")


def _env_reads() -> dict[str, object]:
    """Variable name -> its literal default (None where there is none), from every env(...) call."""
    reads: dict[str, object] = {}
    for module in sorted(SETTINGS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            is_env = (isinstance(func, ast.Name) and func.id == "env") or (
                isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
            )
            first = node.args[0]
            if not (is_env and isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
            reads[first.value] = default.value if isinstance(default, ast.Constant) else None
    return reads


def _doc_row(name: str) -> str:
    return next((line for line in DOCS.splitlines() if line.startswith(f"| `{name}` |")), "")


def test_every_environment_variable_is_documented():
    reads = _env_reads()
    undocumented = sorted(name for name in reads if not _doc_row(name))

    # The parser must find the settings' reads, or the check below proves nothing.
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "UPLOAD_MAX_BYTES", "SKINPORTAL_ANALYSIS_MAX_ATTEMPTS"} <= set(reads)
    assert undocumented == []


@pytest.mark.parametrize("name", ["CACHE_URL", "SKINPORTAL_LOGIN_RATE_IP"])
def test_cache_and_sign_in_limits_are_documented_with_their_defaults(name):
    default = _env_reads()[name]

    assert isinstance(default, str) and f"`{default}`" in _doc_row(name)


def test_docs_say_several_web_processes_need_a_shared_cache():
    assert "shared cache" in DOCS and "CACHE_URL=redis://" in DOCS
