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
