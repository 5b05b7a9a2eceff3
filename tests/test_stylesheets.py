"""Every stylesheet under static/ parses cleanly: an unclosed block or a broken rule fails here.

Browsers accept a ``@media`` block that is never closed without a word and apply every rule
after it only at that width; tinycss2 closes such a block silently too, so the check compares
the file with tinycss2's own serialisation of it (which round-trips a well-formed file exactly)
and lists the parser's errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tinycss2

STATIC = Path(__file__).resolve().parent.parent / "static"
STYLESHEETS = sorted(STATIC.rglob("*.css"))
NESTED_RULE_LISTS = {"media", "supports", "layer", "container", "document"}


def unclosed_blocks(source: str) -> list[int]:
    """The lines where blocks open that are never closed (at most as many as braces are missing)."""
    tokens = tinycss2.parse_component_value_list(source)
    missing = len(tinycss2.serialize(tokens)) - len(source)
    if missing <= 0:
        return []
    # An unclosed block runs to the end of the file, so it is the last token of its parent.
    lines = []
    while tokens and len(lines) < missing:
        last = next((token for token in reversed(tokens) if token.type not in ("whitespace", "comment")), None)
        if last is None or last.type not in ("{} block", "[] block", "() block", "function"):
            break
        lines.append(last.source_line)
        tokens = last.arguments if last.type == "function" else last.content
    return lines or [0]


def parse_errors(source: str) -> list[str]:
    """tinycss2's parse errors in rules, nested rule lists and declarations, as 'line N: message'."""
    errors = []
    pending = list(tinycss2.parse_stylesheet(source, skip_comments=True, skip_whitespace=True))
    while pending:
        rule = pending.pop()
        if rule.type == "error":
            errors.append(f"line {rule.source_line}: {rule.message}")
        elif rule.type == "at-rule" and rule.content is not None and rule.lower_at_keyword in NESTED_RULE_LISTS:
            pending.extend(tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True))
        elif rule.type == "qualified-rule":
            contents = tinycss2.parse_blocks_contents(rule.content, skip_comments=True, skip_whitespace=True)
            for item in [*rule.prelude, *contents]:
                if item.type == "error":
                    errors.append(f"line {item.source_line}: {item.message}")
    return sorted(errors)


def test_there_are_stylesheets_to_check():
    assert STATIC / "css" / "portal.css" in STYLESHEETS


@pytest.mark.parametrize("path", STYLESHEETS, ids=lambda path: str(path.relative_to(STATIC)))
def test_stylesheet_blocks_are_all_closed(path):
    lines = unclosed_blocks(path.read_text(encoding="utf-8"))
    assert not lines, f"{path.name}: blocks opened at lines {lines} are never closed"


@pytest.mark.parametrize("path", STYLESHEETS, ids=lambda path: str(path.relative_to(STATIC)))
def test_stylesheet_parses_without_errors(path):
    assert parse_errors(path.read_text(encoding="utf-8")) == []


def test_the_check_finds_a_media_block_left_open():
    source = "a { color: red; }\n@media (max-width: 720px) {\n  b { color: blue; }\nc { color: green; }\n"
    assert unclosed_blocks(source) == [2]


def test_the_check_finds_two_nested_blocks_left_open():
    source = "@media (max-width: 720px) {\n  b { color: blue; }\n@media (min-width: 40rem) {\n  c { color: green; }\n"
    assert unclosed_blocks(source) == [1, 3]


def test_the_check_finds_a_broken_declaration_and_a_stray_brace():
    assert parse_errors("a { color red; }\n") != []
    assert parse_errors("a { color: red; }\n}\nb { color: blue; }\n") != []


def _selectors(path) -> str:
    """Every qualified rule's selector text in a stylesheet, nested rule lists included."""
    text = []
    pending = list(tinycss2.parse_stylesheet(path.read_text(encoding="utf-8"), skip_comments=True))
    while pending:
        rule = pending.pop()
        if rule.type == "qualified-rule":
            text.append(tinycss2.serialize(rule.prelude))
        elif rule.type == "at-rule" and rule.content is not None and rule.lower_at_keyword in NESTED_RULE_LISTS:
            pending.extend(tinycss2.parse_rule_list(rule.content, skip_comments=True))
    return "\n".join(text)


@pytest.mark.parametrize("kind", ["text", "email", "number", "date", "password", "search", "tel", "file"])
def test_every_kind_of_text_and_file_field_the_forms_use_is_styled(kind):
    """The contact phone (type=tel) and the photo inputs (type=file) were left in the browser's default look."""
    assert f'input[type="{kind}"]' in _selectors(STATIC / "css" / "portal.css")


def test_the_retake_form_is_styled():
    template = (STATIC.parent / "templates" / "diagnosis" / "_result_card.html").read_text(encoding="utf-8")
    assert 'class="add-photo"' in template
    assert ".add-photo" in _selectors(STATIC / "css" / "portal.css")
