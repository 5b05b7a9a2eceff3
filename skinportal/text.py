"""Free text from clinic staff, made safe to store, compare and show.

Names, identifiers and notes are stored in Unicode NFC, so the same name typed on two
keyboards is one string. Bidirectional-override and -isolate characters (which make
``ABC-123`` display as something else) and zero-width characters (which make two identifiers
look equal while they differ) are refused with a clear message rather than silently
dropped; so are control characters other than line breaks and tabs in notes.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext as _

# U+202A-U+202E embeddings and overrides, U+2066-U+2069 isolates, U+200E/U+200F/U+061C marks.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Zero-width space, non-joiner, joiner, word joiner, byte-order mark, soft hyphen.
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
# The documented maximum length of a case's notes (API schema and docs/settings.md).
NOTES_MAX_LENGTH = 4000


def clean_text(value: str, *, field: str, multiline: bool = False) -> str:
    """NFC, stripped; ValidationError({field: ...}) for invisible or direction-changing characters."""
    text = unicodedata.normalize("NFC", value or "").strip()
    if any(character in BIDI_CONTROLS for character in text):
        raise ValidationError({field: _("Text-direction control characters are not allowed.")}, code="bidi")
    if any(character in ZERO_WIDTH for character in text):
        raise ValidationError({field: _("Invisible (zero-width) characters are not allowed.")}, code="zero_width")
    allowed_controls = "\n\r\t" if multiline else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed_controls for c in text):
        raise ValidationError({field: _("Control characters are not allowed.")}, code="control")
    return text


# The same rule as a regular expression, for the API schema: no control characters (line breaks
# and tabs allowed in multi-line text), no direction-changing and no zero-width characters. At
# least one character: a field that may be blank is shown as "this pattern, or empty".
_INVISIBLE = r"\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
SINGLE_LINE_PATTERN = rf"^[^\u0000-\u001f\u007f-\u009f{_INVISIBLE}]+$"
MULTILINE_PATTERN = rf"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f{_INVISIBLE}]+$"


class CleanTextValidator(RegexValidator):
    """``clean_text``'s rule on an API field. drf-spectacular shows a ``RegexValidator`` as the
    field's ``pattern``, so the schema states what the service refuses; the message is the
    service's own."""

    def __init__(self, *, multiline: bool = False) -> None:
        super().__init__(regex=MULTILINE_PATTERN if multiline else SINGLE_LINE_PATTERN)
        self.multiline = multiline

    def __call__(self, value) -> None:
        try:
            clean_text(str(value), field="text", multiline=self.multiline)
        except ValidationError as error:
            raise ValidationError(error.message_dict["text"]) from error

    def __eq__(self, other) -> bool:
        return isinstance(other, CleanTextValidator) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash((CleanTextValidator, self.multiline))
