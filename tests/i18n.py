"""Checks that a page reads wholly in the requested language.

``untranslated(english_html, other_html, language)`` returns the pieces of visible text (text
nodes and the attributes people read: alt, title, placeholder, aria-label, label, the value
of buttons) that are the same in the English page and in the translated page, less what is
allowed to be the same: the data the page shows (names, numbers, identifiers), words that
are spelled the same in both languages (catalogue entries translated as themselves), and a
few names that are never translated. Whatever is left is a string someone forgot to mark
or to translate.

``catalogue(language)`` parses the language's ``.po`` files so that tests can also check
that every entry is translated, none is fuzzy, and the compiled ``.mo`` matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from django.conf import settings

LANGUAGES = ("fr", "pt")

# Names, codes and units that stay as they are in every language.
NEVER_TRANSLATED = {
    "Skin Portal",
    "HAM10000",
    "MobileNetV2",
    "LiteRT",
    "FHIR",
    "PDF",
    "API",
    "UV",
    "OK",
    "akiec",
    "bcc",
    "bkl",
    "df",
    "mel",
    "nv",
    "vasc",
    # The language menu names each language in that language.
    "British English",
    "English",
    "français",
    "Français",
    "Português",
}

_WORD = re.compile(r"[^\W\d_]{3,}")
_READ_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "label"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style", "template"}:
            self._skip += 1
        attributes = dict(attrs)
        for name in _READ_ATTRIBUTES & attributes.keys():
            self._add(attributes[name])
        if tag == "input" and attributes.get("type") in {"submit", "button"}:
            self._add(attributes.get("value"))

    def handle_endtag(self, tag):
        if tag in {"script", "style", "template"} and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self._add(data)

    def _add(self, text: str | None) -> None:
        text = " ".join((text or "").split())
        if text:
            self.pieces.append(text)


def visible_text(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.pieces


@dataclass
class Entry:
    msgid: str
    msgid_plural: str = ""
    msgstr: list[str] = field(default_factory=list)
    context: str = ""
    fuzzy: bool = False
    references: list[str] = field(default_factory=list)

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr)


def _unquote(text: str) -> str:
    return text[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


def parse_po(path: Path) -> list[Entry]:
    """The entries of a ``.po`` file (the header and obsolete entries left out)."""
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int] | None = None
    flags: set[str] = set()
    references: list[str] = []

    def finish():
        nonlocal current
        if current is not None and current.msgid:
            entries.append(current)
        current = None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#~"):
            continue
        if line.startswith("#,"):
            finish()
            flags = {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#:"):
            finish()
            references += line[2:].split()
            continue
        if line.startswith("#") or not line:
            continue
        if line.startswith("msgctxt "):
            finish()
            current = Entry(msgid="", context=_unquote(line[8:]))
            target = ("context", 0)
        elif line.startswith("msgid_plural "):
            current.msgid_plural = _unquote(line[13:])
            target = ("msgid_plural", 0)
        elif line.startswith("msgid "):
            if current is None or current.msgid or current.msgstr:
                finish()
                current = Entry(msgid="")
            current.msgid = _unquote(line[6:])
            current.fuzzy = "fuzzy" in flags
            current.references = references
            flags, references = set(), []
            target = ("msgid", 0)
        elif line.startswith("msgstr"):
            index = int(line[7]) if line.startswith("msgstr[") else 0
            text = _unquote(line[line.index(" ") + 1 :])
            while len(current.msgstr) <= index:
                current.msgstr.append("")
            current.msgstr[index] = text
            target = ("msgstr", index)
        elif line.startswith('"') and current is not None and target is not None:
            kind, index = target
            if kind == "msgstr":
                current.msgstr[index] += _unquote(line)
            else:
                setattr(current, kind, getattr(current, kind) + _unquote(line))
    finish()
    return entries


def po_files(language: str) -> list[Path]:
    return sorted(
        path
        for locale_dir in settings.LOCALE_PATHS
        for path in (Path(locale_dir) / language / "LC_MESSAGES").glob("*.po")
    )


def catalogue(language: str) -> list[Entry]:
    return [entry for path in po_files(language) for entry in parse_po(path)]


def same_in_both(language: str) -> set[str]:
    """Catalogue entries whose translation is spelled as the English (e.g. "Total" in French)."""
    same = set()
    for entry in catalogue(language):
        if entry.msgstr and entry.msgstr[0] == entry.msgid:
            same.add(" ".join(entry.msgid.split()))
    return same


def untranslated(english_html: str, other_html: str, language: str, data=()) -> list[str]:
    """Visible text left in English on the translated page (see the module's docstring).

    ``data``: strings the page shows as data (names, identifiers, notes typed by a user)."""
    allowed = NEVER_TRANSLATED | same_in_both(language) | {" ".join(str(d).split()) for d in data if d}
    english = set(visible_text(english_html))
    left = []
    for piece in visible_text(other_html):
        if piece not in english or piece in allowed:
            continue
        words = _WORD.findall(piece)
        rest = piece
        for item in sorted(allowed, key=len, reverse=True):
            rest = rest.replace(item, " ")
        if not words or not _WORD.search(rest):
            continue
        left.append(piece)
    return sorted(set(left))
