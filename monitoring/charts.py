"""Small charts drawn on the server as inline SVG: no script, nothing fetched (the portal's
Content-Security-Policy allows neither inline scripts nor inline styles; SVG presentation
attributes are neither). Each chart has a title and a text equivalent for screen readers."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from .figures import Estimate

REASON_COLOURS = {
    "not_skin": "#6b7280",
    "not_a_lesion": "#b45309",
    "blurred": "#2563eb",
    "too_dark": "#1f2937",
    "overexposed": "#d97706",
}
INK, MUTED, GRID, POINT, ALERT = "#1f2933", "#6b7280", "#d8dee4", "#1d3f7a", "#b42318"


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def interval_chart(rows: list[tuple[str, Estimate]], *, title: str, alert_at: float | None = None) -> SafeString:
    """Each row's estimate as a point with its 95% interval on a 0-100% scale, its label above it."""
    # 344 px wide: drawn at full size on a 360 px phone, so its text stays readable.
    left, plot_width, right, row_height, top = 10, 282, 52, 36, 22
    width = left + plot_width + right
    height = top + row_height * max(1, len(rows)) + 4

    def x(value: float) -> float:
        return left + value * plot_width

    parts = [_svg_open(width, height, title)]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{top - 6}" x2="{x(tick):.1f}" y2="{height - 4}" stroke="{GRID}"/>'
            f'<text x="{x(tick):.1f}" y="{top - 10}" font-size="10" text-anchor="middle" fill="{MUTED}">'
            f"{_percent(tick)}</text>"
        )
    if alert_at is not None:
        parts.append(
            f'<line x1="{x(alert_at):.1f}" y1="{top - 6}" x2="{x(alert_at):.1f}" y2="{height - 4}" '
            f'stroke="{ALERT}" stroke-dasharray="4 3"/>'
        )
    for index, (label, estimate) in enumerate(rows):
        y = top + index * row_height + 24
        parts.append(f'<text x="{left}" y="{y - 10:.1f}" font-size="12" fill="{INK}">{escape(label)}</text>')
        if not estimate.enough:
            parts.append(
                f'<text x="{left + plot_width}" y="{y - 10:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">'
                f"{escape(_('not enough answers yet'))}</text>"
            )
            continue
        parts.append(
            f'<line x1="{x(estimate.low):.1f}" y1="{y:.1f}" x2="{x(estimate.high):.1f}" y2="{y:.1f}" '
            f'stroke="{POINT}" stroke-width="2"/>'
            f'<circle cx="{x(estimate.value):.1f}" cy="{y:.1f}" r="4" fill="{POINT}">'
            f"<title>{escape(_interval_text(estimate))}</title></circle>"
            f'<text x="{left + plot_width + 8}" y="{y + 4:.1f}" font-size="11" fill="{INK}">'
            f"{_percent(estimate.value)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text in it is escaped above


def _interval_text(estimate: Estimate) -> str:
    return _("%(value)s (95%% interval %(low)s to %(high)s), %(count)s answers") % {
        "value": _percent(estimate.value),
        "low": _percent(estimate.low),
        "high": _percent(estimate.high),
        "count": estimate.answers,
    }


def turned_back_chart(weeks: list[dict], *, title: str, reason_labels: dict[str, str], alert_at: float) -> SafeString:
    """The weekly share of photos turned back, as bars stacked by the gate's reason, with the alert level."""
    left, plot_height, bottom, top, bar, gap = 36, 120, 22, 10, 18, 8
    width = left + max(1, len(weeks)) * (bar + gap) + 8
    height = top + plot_height + bottom
    ceiling = max([alert_at * 2] + [week["share"] or 0 for week in weeks])

    def y(share: float) -> float:
        return top + plot_height * (1 - share / ceiling)

    parts = [_svg_open(width, height, title)]
    for tick in (0, ceiling / 2, ceiling):
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - 4}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end" fill="{MUTED}">'
            f"{_percent(tick)}</text>"
        )
    for index, week in enumerate(weeks):
        x = left + gap / 2 + index * (bar + gap)
        base = 0.0
        photos = week["photos"] or 1
        for reason, count in week["by_reason"].items():
            if not count:
                continue
            share = count / photos
            parts.append(
                f'<rect x="{x:.1f}" y="{y(base + share):.1f}" width="{bar}" height="{y(base) - y(base + share):.1f}" '
                f'fill="{REASON_COLOURS.get(reason, MUTED)}"><title>{escape(reason_labels.get(reason, reason))}: '
                f"{count} / {week['photos']}</title></rect>"
            )
            base += share
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - 6}" font-size="9" text-anchor="middle" fill="{MUTED}">'
            f"{escape(week['week'].strftime('%d/%m'))}</text>"
        )
    parts.append(
        f'<line x1="{left}" y1="{y(alert_at):.1f}" x2="{width - 4}" y2="{y(alert_at):.1f}" '
        f'stroke="{ALERT}" stroke-dasharray="4 3"/>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text in it is escaped above
