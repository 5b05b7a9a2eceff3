"""A case as a FHIR R4 Bundle (type ``collection``) a hospital system can take in.

Codes: SNOMED CT only where verified; everything else is ``CodeableConcept.text``. Photos are
``Media`` whose content is a URL to the access-checked file, never inline data. The bundle
is validated with ``fhir.resources`` (its R4B models: Media, Observation, Task and the
others used here are defined the same in R4 and R4B).
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Case, LesionImage
from inference.preprocessing import CLASS_NAMES, CLASSES
from triage.models import Referral
from triage.selectors import effective_status

SYSTEM_BASE = "urn:skinportal"
VIEW_TEXT = {
    LesionImage.Kind.OVERVIEW: "Overview",
    LesionImage.Kind.CLOSE_UP: "Close-up",
    LesionImage.Kind.DERMOSCOPIC: "Dermoscopic",
}
GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}
TASK_STATUS = {
    Referral.Status.OPEN: "requested",
    Referral.Status.CLAIMED: "in-progress",
    Referral.Status.INFORMATION_REQUESTED: "on-hold",
    Referral.Status.REVIEWED: "completed",
}


def _uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _instant(value) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds")


def _text(value: str) -> dict:
    return {"text": value}


def _user_ref(user) -> dict:
    if user is None:
        return {"display": "Skin Portal"}
    return {"display": user.get_full_name() or user.username}


def case_bundle(*, case: Case, absolute, shows_patient_identity: bool = True) -> dict:
    """The bundle as a JSON-ready dict; ``absolute(path)`` makes a path an absolute URL."""
    patient = case.patient
    clinic = patient.clinic
    entries: list[dict] = []

    def add(resource: dict) -> str:
        full_url = _uuid()
        entries.append({"fullUrl": full_url, "resource": resource})
        return full_url

    organization = add(
        {
            "resourceType": "Organization",
            "identifier": [{"system": f"{SYSTEM_BASE}:clinic", "value": str(clinic.pk)}],
            "name": clinic.name,
            **({"address": [{"text": clinic.address}]} if getattr(clinic, "address", "") else {}),
        }
    )
    patient_ref = add(
        {
            "resourceType": "Patient",
            "identifier": [
                {
                    "system": f"{SYSTEM_BASE}:clinic:{clinic.pk}:patient",
                    "value": patient.identifier,
                    "assigner": {"reference": organization},
                }
            ],
            "gender": GENDER.get(patient.sex, "unknown"),
            "managingOrganization": {"reference": organization},
            # A specialist's export names no one: the patient number, sex and year of birth
            # (diagnosis.disclosure); the clinic's own export is the whole record.
            **(
                {"name": [{"text": patient.full_name}], "birthDate": patient.date_of_birth.isoformat()}
                if shows_patient_identity
                else {"birthDate": f"{patient.date_of_birth.year:04d}"}
            ),
        }
    )
    consent = {
        "resourceType": "Consent",
        "status": "active" if patient.consent_given else "inactive",
        "scope": {"text": "Photographs of the skin lesion, stored, analysed by software and shared with specialists"},
        "category": [_text("Consent to photograph the lesion and share it for analysis")],
        "patient": {"reference": patient_ref},
        "organization": [{"reference": organization}],
        "policyRule": _text("Skin Portal consent wording, recorded by clinic staff"),
    }
    if patient.consent_recorded_at:
        consent["dateTime"] = _instant(patient.consent_recorded_at)
    if patient.consent_recorded_by_id:
        consent["performer"] = [_user_ref(patient.consent_recorded_by)]
    add(consent)

    body_site = _text(case.get_body_site_display())
    media_refs: dict[int, str] = {}
    for image in case.images.all():
        media_refs[image.pk] = add(
            {
                "resourceType": "Media",
                "status": "completed",
                "type": _text("Photo"),
                "view": _text(VIEW_TEXT.get(image.kind, image.kind)),
                "subject": {"reference": patient_ref},
                "createdDateTime": _instant(image.created_at),
                "bodySite": body_site,
                "width": image.width,
                "height": image.height,
                "content": {
                    "contentType": image.content_type,
                    "url": absolute(reverse("diagnosis:image-file", args=[image.pk])),
                    "title": f"Case {case.pk}, photo {image.pk}",
                },
            }
        )

    devices: dict[str, str] = {}
    for image in case.images.all():
        prediction = image.current_result  # a photo the gate turned back has no result to export
        if prediction is None:
            continue
        version = prediction.model_version
        if version not in devices:
            devices[version] = add(
                {
                    "resourceType": "Device",
                    "deviceName": [{"name": "Skin Portal lesion classifier", "type": "model-name"}],
                    "version": [{"value": version}],
                    "type": _text("Decision-support software: skin lesion photo classifier"),
                    "owner": {"reference": organization},
                }
            )
        observation = add(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": _text("Skin lesion photo classification (decision support, not a diagnosis)"),
                "subject": {"reference": patient_ref},
                "effectiveDateTime": _instant(prediction.created_at),
                "bodySite": body_site,
                "device": {"reference": devices[version]},
                "derivedFrom": [{"reference": media_refs[image.pk]}],
                "valueCodeableConcept": _text(CLASS_NAMES.get(prediction.top_class, prediction.top_class)),
                "component": [
                    {
                        "code": _text(f"Probability: {CLASS_NAMES[code]}"),
                        "valueQuantity": {
                            "value": round(float((prediction.probabilities or {}).get(code, 0.0)), 6),
                            "unit": "probability",
                        },
                    }
                    for code in CLASSES
                ],
            }
        )
        add(
            {
                "resourceType": "Provenance",
                "target": [{"reference": observation}],
                "recorded": _instant(prediction.created_at),
                "agent": [
                    {
                        "type": _text("Software that produced the result"),
                        "who": {"reference": devices[version]},
                    }
                ],
                "entity": [{"role": "source", "what": {"reference": media_refs[image.pk]}}],
            }
        )

    try:
        referral = case.referral
    except ObjectDoesNotExist:
        referral = None
    if referral is not None:
        service_request = add(
            {
                "resourceType": "ServiceRequest",
                "status": "completed" if referral.status == Referral.Status.REVIEWED else "active",
                "intent": "order",
                "priority": "urgent" if referral.urgency == Referral.Urgency.URGENT else "routine",
                "code": _text("Specialist dermatology review of skin lesion photos"),
                "subject": {"reference": patient_ref},
                "authoredOn": _instant(referral.referred_at),
                "requester": (
                    _user_ref(referral.referred_by) if referral.referred_by_id else {"reference": organization}
                ),
                "reasonCode": [_text(referral.reason or referral.get_source_display())],
                "bodySite": [body_site],
                "supportingInfo": [{"reference": ref} for ref in media_refs.values()],
            }
        )
        status = effective_status(referral)
        task = {
            "resourceType": "Task",
            "status": TASK_STATUS.get(status, "requested"),
            "intent": "order",
            "priority": "urgent" if referral.urgency == Referral.Urgency.URGENT else "routine",
            "focus": {"reference": service_request},
            "for": {"reference": patient_ref},
            "authoredOn": _instant(referral.referred_at),
            "lastModified": _instant(referral.updated_at),
            "requester": {"reference": organization},
            "restriction": {"period": {"end": _instant(referral.due_at)}},
        }
        if status == Referral.Status.CLAIMED and referral.claimed_by_id:
            task["owner"] = _user_ref(referral.claimed_by)
        review = referral.latest_review
        if review is not None:
            task["owner"] = _user_ref(review.reviewer)
        add(task)
        if review is not None:
            outcome = f"Outcome: {review.get_outcome_display()}"
            if review.follow_up_months:
                outcome += f" (photograph again in {review.follow_up_months} months)"
            add(
                {
                    "resourceType": "DiagnosticReport",
                    "status": "amended" if review.supersedes_id else "final",
                    "code": _text("Specialist review of skin lesion photos"),
                    "subject": {"reference": patient_ref},
                    "basedOn": [{"reference": service_request}],
                    "issued": _instant(review.created_at),
                    "effectiveDateTime": _instant(review.created_at),
                    "performer": [_user_ref(review.reviewer)],
                    "conclusion": review.message,
                    "conclusionCode": [_text(f"Diagnosis: {review.diagnosis_label}"), _text(outcome)],
                    "media": [{"link": {"reference": ref}} for ref in media_refs.values()],
                }
            )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(timezone.now()),
        "identifier": {"system": f"{SYSTEM_BASE}:case", "value": str(case.pk)},
        "entry": entries,
    }


def bundle_validate(bundle: dict):
    """Parse the bundle with fhir.resources' models; raises on anything that is not valid FHIR."""
    from fhir.resources.R4B.bundle import Bundle

    return Bundle.model_validate(bundle)
