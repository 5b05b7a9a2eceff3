"""What each role sees of a patient: the rule in one place.

A specialist answers a referral from the patient's age, sex and skin type, the body site, the
history and checklist, the photos and the model's result. That is all they are shown: no name,
date of birth, phone or village, on any page, in the letter, the FHIR export or an email. The
patient number stays, so the specialist and the clinic can name the patient to each other
without naming them to anyone else. Specialists have no patient pages at all
(``patient_list_for`` gives them none, so every patient URL is a 404); they reach a patient's
cases only through the referrals of the clinics they serve.

Clinic staff and administrators see the whole record.
"""

from __future__ import annotations


def sees_patient_identity(user) -> bool:
    """Name, date of birth, phone and village: clinic staff and administrators, never specialists."""
    return bool(user is not None and user.is_authenticated and not user.is_specialist)


def patient_disclosure(request) -> dict:
    """Context processor: ``shows_patient_identity`` for every template."""
    return {"shows_patient_identity": sees_patient_identity(getattr(request, "user", None))}
