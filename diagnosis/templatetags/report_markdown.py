"""A small, safe Markdown renderer for the model's evaluation report (report.md).

The report is written by training/report.py: headings, paragraphs, pipe tables, bullet
lists, images of the PNG figures beside it, bold, italics and code. Everything is
HTML-escaped first; images resolve only through ``image_url`` (the whitelisted figures),
links only to http(s) addresses. No third-party Markdown package is needed in the web
process.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _inline(text: str, image_url: Callable[[str], str | None]) -> str:
    """Escape, then turn the inline Markdown this report uses into HTML."""
    placeholders: list[str] = []

    def keep(html: str) -> str:
        placeholders.append(html)
        return f"\x00{len(placeholders) - 1}\x00"

    def image(match: re.Match) -> str:
        alt, target = match.group(1), match.group(2)
        url = image_url(target)
        if url is None:
            return keep(f'<span class="report-missing">[{escape(alt)}]</span>')
        return keep(f'<img src="{escape(url)}" alt="{escape(alt)}" loading="lazy" class="report-figure">')

    def code(match: re.Match) -> str:
        return keep(f"<code>{escape(match.group(1))}</code>")

    def link(match: re.Match) -> str:
        return keep(f'<a href="{escape(match.group(2))}" rel="noopener noreferrer">{escape(match.group(1))}</a>')

    text = _CODE.sub(code, text)
    text = _IMAGE.sub(image, text)
    text = _LINK.sub(link, text)
    text = escape(text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: placeholders[int(m.group(1))], text)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [cell.strip() for cell in line.split("|")]


def _alignments(rule: str) -> list[str]:
    aligns = []
    for cell in _cells(rule):
        if cell.endswith(":"):
            aligns.append("num")
        else:
            aligns.append("")
    return aligns


def _table(lines: list[str], image_url) -> str:
    header, rule, *rows = lines
    aligns = _alignments(rule)

    def row_html(cells: list[str], tag: str) -> str:
        out = []
        for index, cell in enumerate(cells):
            css = aligns[index] if index < len(aligns) else ""
            attr = f' class="{css}"' if css else ""
            scope = ' scope="col"' if tag == "th" else ""
            out.append(f"<{tag}{attr}{scope}>{_inline(cell, image_url)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    body = "".join(row_html(_cells(row), "td") for row in rows)
    return (
        '<div class="table-scroll"><table class="report-table"><thead>'
        + row_html(_cells(header), "th")
        + f"</thead><tbody>{body}</tbody></table></div>"
    )


def render_report_markdown(text: str, *, image_url: Callable[[str], str | None]) -> SafeString:
    lines = text.replace("\r\n", "\n").split("\n")
    html: list[str] = []
    paragraph: list[str] = []
    index = 0

    def flush_paragraph() -> None:
        if paragraph:
            html.append(f"<p>{_inline(' '.join(paragraph), image_url)}</p>")
            paragraph.clear()

    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped:
            flush_paragraph()
            index += 1
            continue
        if heading := _HEADING.match(stripped):
            flush_paragraph()
            # The page has its h1 and the report card its h2; the report nests below them.
            level = min(len(heading.group(1)) + 2, 6)
            html.append(f"<h{level}>{_inline(heading.group(2), image_url)}</h{level}>")
            index += 1
            continue
        if stripped.startswith("|") and index + 1 < len(lines) and _TABLE_RULE.match(lines[index + 1].strip()):
            flush_paragraph()
            block = [stripped, lines[index + 1].strip()]
            index += 2
            while index < len(lines) and lines[index].strip().startswith("|"):
                block.append(lines[index].strip())
                index += 1
            html.append(_table(block, image_url))
            continue
        list_match = _BULLET.match(line) or _NUMBERED.match(line)
        if list_match:
            flush_paragraph()
            tag = "ul" if _BULLET.match(line) else "ol"
            pattern = _BULLET if tag == "ul" else _NUMBERED
            items = []
            while index < len(lines) and (item := pattern.match(lines[index])):
                items.append(f"<li>{_inline(item.group(1), image_url)}</li>")
                index += 1
            html.append(f"<{tag}>{''.join(items)}</{tag}>")
            continue
        paragraph.append(stripped)
        index += 1
    flush_paragraph()
    return mark_safe("\n".join(html))
