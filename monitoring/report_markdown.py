"""The model's evaluation report (report.md) as safe HTML: markdown-it-py parses, nh3 sanitises.

The report is written by training/report.py: headings, paragraphs, pipe tables, lists,
images of the PNG figures beside it, emphasis and code. Raw HTML in the Markdown is shown
as text, never interpreted. Images load only through ``image_url`` (the report's own
figures, by name); anything else becomes its alt text. Links go only to http(s) addresses.
Whatever the renderer produces then passes nh3 with a short list of tags and attributes,
so a change in the parser cannot let a script or an event handler through.
"""

from __future__ import annotations

from collections.abc import Callable

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

LINK_SCHEMES = ("http://", "https://")

# What a report needs, and nothing else.
ALLOWED_TAGS = {
    "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote",
    "ul", "ol", "li", "strong", "em", "code", "pre",
    "div", "span", "table", "thead", "tbody", "tr", "th", "td",
    "a", "img",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "loading", "class"},
    "div": {"class"},
    "span": {"class"},
    "table": {"class"},
    "th": {"class", "scope"},
    "td": {"class"},
    "ol": {"start"},
}


def _heading_shift(state) -> None:
    """The page has its h1 and the report card its h2; the report nests below them."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 2, 6)}"


def _table_cells(state) -> None:
    """Right-aligned columns (numbers) get the stylesheet's ``num`` class instead of a style."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open"):
            style = token.attrs.pop("style", "") or ""
            if "text-align:right" in str(style):
                token.attrSet("class", "num")
            if token.type == "th_open":
                token.attrSet("scope", "col")


def _parser(image_url: Callable[[str], str | None]) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    md.core.ruler.push("report_heading_shift", _heading_shift)
    md.core.ruler.push("report_table_cells", _table_cells)

    def render_image(self, tokens, idx, options, env) -> str:
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env)
        url = image_url(str(token.attrGet("src") or ""))
        if url is None:
            return f'<span class="report-missing">[{escape(alt)}]</span>'
        return f'<img src="{escape(url)}" alt="{escape(alt)}" loading="lazy" class="report-figure">'

    def render_table_open(self, tokens, idx, options, env) -> str:
        return '<div class="table-scroll"><table class="report-table">\n'

    def render_table_close(self, tokens, idx, options, env) -> str:
        return "</table></div>\n"

    md.add_render_rule("image", render_image)
    md.add_render_rule("table_open", render_table_open)
    md.add_render_rule("table_close", render_table_close)
    return md


def _attribute_filter(image_urls: set[str]):
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "a" and attribute == "href":
            return value if value.lower().startswith(LINK_SCHEMES) else None
        if tag == "img" and attribute == "src":
            return value if value in image_urls else None
        return value

    return keep


def render_report_markdown(text: str, *, image_url: Callable[[str], str | None]) -> SafeString:
    served: set[str] = set()

    def figure_url(name: str) -> str | None:
        url = image_url(name)
        if url is not None:
            served.add(url)
        return url

    html = _parser(figure_url).render(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
        attribute_filter=_attribute_filter(served),
    )
    return mark_safe(clean)  # noqa: S308 — sanitised by nh3 just above
