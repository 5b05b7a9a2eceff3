"""The lesion classes the model tells apart (HAM10000), declared once.

No Django here: inference/ and training/ import it. The web side names the classes in the
reader's language from these same English names (diagnosis/vocabulary.py); ``gettext_noop``
marks them for Django's makemessages, which finds the calls by name.
"""

from __future__ import annotations


def gettext_noop(message: str) -> str:
    """Marks a string for the translation catalogues; translated where it is shown."""
    return message


# Code -> the name a clinician uses, in the model's output order.
CLASS_NAMES: dict[str, str] = {
    "akiec": gettext_noop("Actinic keratosis / intraepithelial carcinoma"),
    "bcc": gettext_noop("Basal cell carcinoma"),
    "bkl": gettext_noop("Benign keratosis-like lesion"),
    "df": gettext_noop("Dermatofibroma"),
    "mel": gettext_noop("Melanoma"),
    "nv": gettext_noop("Melanocytic nevus"),
    "vasc": gettext_noop("Vascular lesion"),
}
CLASSES: tuple[str, ...] = tuple(CLASS_NAMES)
MALIGNANT_CLASSES: tuple[str, ...] = ("akiec", "bcc", "mel")
