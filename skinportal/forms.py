"""Form fields every page shares: dates typed as the reader's language writes them."""

from __future__ import annotations

from django import forms
from django.utils import formats
from django.utils.translation import gettext


def date_input_formats() -> list[str]:
    """The active language's date formats with a four-digit year (a two-digit year of birth is
    ambiguous); ISO (yyyy-mm-dd) is always among them."""
    return [f for f in formats.get_format("DATE_INPUT_FORMATS") if "%y" not in f]


def date_display_format() -> str:
    """How a date is written in the active language's date fields: day first for en-gb, fr and pt."""
    written = [f for f in date_input_formats() if not f.startswith("%Y")]
    return (written or date_input_formats())[0]


def date_placeholder() -> str:
    """The expected format in the reader's words: dd/mm/yyyy, jj/mm/aaaa, dd/mm/aaaa."""
    return (
        date_display_format().replace("%d", gettext("dd")).replace("%m", gettext("mm")).replace("%Y", gettext("yyyy"))
    )


class LocalDateInput(forms.DateInput):
    """A date typed as the reader's language writes it (02/03/1970), not the browser's date
    picker, whose format follows the phone's settings rather than the portal's language."""

    input_type = "text"

    def format_value(self, value):
        if hasattr(value, "strftime"):
            return value.strftime(date_display_format())
        return value

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"].setdefault("placeholder", date_placeholder())
        context["widget"]["attrs"].setdefault("inputmode", "numeric")
        return context


class LocalDateField(forms.DateField):
    """A date in the active language's formats (or ISO)."""

    widget = LocalDateInput

    @property
    def input_formats(self):
        return date_input_formats()
