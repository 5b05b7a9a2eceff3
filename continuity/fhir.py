"""A case as a FHIR R4 Bundle (type ``collection``) a hospital system can take in.

Codes: SNOMED CT only where verified; everything else is ``CodeableConcept.text``. Photos are
``Media`` whose content is a URL to the access-checked file, never inline data. Every resource
is built as a ``fhir.resources`` model (its R4B models: Media, Observation, Task and the others
used here are defined the same in R4 and R4B), so a field FHIR does not have, or a value of
the wrong kind, fails where it is written, not in a later check.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.address import Address
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.device import Device, DeviceDeviceName, DeviceVersion
from fhir.resources.R4B.diagnosticreport import DiagnosticReport, DiagnosticReportMedia
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent, ProvenanceEntity
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task, TaskRestriction

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


def _text(value: str) -> CodeableConcept:
    return CodeableConcept(text=value)


def _ref(full_url: str) -> Reference:
    return Reference(reference=full_url)


def _user_ref(user) -> Reference:
    if user is None:
        return Reference(display="Skin Portal")
    return Reference(display=user.get_full_name() or user.username)


def case_bundle(*, case: Case, absolute, shows_patient_identity: bool = True) -> Bundle:
    """The case as a ``Bundle`` model; ``absolute(path)`` makes a path an absolute URL."""
    patient = case.patient
    clinic = patient.clinic
    entries: list[BundleEntry] = []

    def add(resource: Resource) -> str:
        full_url = _uuid()
        entries.append(BundleEntry(fullUrl=full_url, resource=resource))
        return full_url

    address = getattr(clinic, "address", "")
    organization = add(
        Organization(
            identifier=[Identifier(system=f"{SYSTEM_BASE}:clinic", value=str(clinic.pk))],
            name=clinic.name,
            address=[Address(text=address)] if address else None,
        )
    )
    # A specialist's export names no one: the patient number, sex and year of birth
    # (patients.disclosure); the clinic's own export is the whole record.
    patient_ref = add(
        Patient(
            identifier=[
                Identifier(
                    system=f"{SYSTEM_BASE}:clinic:{clinic.pk}:patient",
                    value=patient.identifier,
                    assigner=_ref(organization),
                )
            ],
            gender=GENDER.get(patient.sex, "unknown"),
            managingOrganization=_ref(organization),
            name=[HumanName(text=patient.full_name)] if shows_patient_identity else None,
            birthDate=(
                patient.date_of_birth.isoformat() if shows_patient_identity else f"{patient.date_of_birth.year:04d}"
            ),
        )
    )
    add(
        Consent(
            status="active" if patient.consent_given else "inactive",
            scope=_text("Photographs of the skin lesion, stored, analysed by software and shared with specialists"),
            category=[_text("Consent to photograph the lesion and share it for analysis")],
            patient=_ref(patient_ref),
            organization=[_ref(organization)],
            policyRule=_text("Skin Portal consent wording, recorded by clinic staff"),
            dateTime=_instant(patient.consent_recorded_at) if patient.consent_recorded_at else None,
            performer=[_user_ref(patient.consent_recorded_by)] if patient.consent_recorded_by_id else None,
        )
    )

    body_site = _text(case.get_body_site_display())
    media_refs: dict[int, str] = {}
    for image in case.images.all():
        media_refs[image.pk] = add(
            Media(
                status="completed",
                type=_text("Photo"),
                view=_text(VIEW_TEXT.get(image.kind, image.kind)),
                subject=_ref(patient_ref),
                createdDateTime=_instant(image.created_at),
                bodySite=body_site,
                width=image.width,
                height=image.height,
                content=Attachment(
                    contentType=image.content_type,
                    url=absolute(reverse("diagnosis:image-file", args=[image.pk])),
                    title=f"Case {case.pk}, photo {image.pk}",
                ),
            )
        )

    devices: dict[str, str] = {}
    for image in case.images.all():
        prediction = image.current_result  # a photo the gate turned back has no result to export
        if prediction is None:
            continue
        version = prediction.model_version
        if version not in devices:
            devices[version] = add(
                Device(
                    deviceName=[DeviceDeviceName(name="Skin Portal lesion classifier", type="model-name")],
                    version=[DeviceVersion(value=version)],
                    type=_text("Decision-support software: skin lesion photo classifier"),
                    owner=_ref(organization),
                )
            )
        probabilities = prediction.probabilities or {}
        observation = add(
            Observation(
                status="final",
                code=_text("Skin lesion photo classification (decision support, not a diagnosis)"),
                subject=_ref(patient_ref),
                effectiveDateTime=_instant(prediction.created_at),
                bodySite=body_site,
                device=_ref(devices[version]),
                derivedFrom=[_ref(media_refs[image.pk])],
                valueCodeableConcept=_text(CLASS_NAMES.get(prediction.top_class, prediction.top_class)),
                component=[
                    ObservationComponent(
                        code=_text(f"Probability: {CLASS_NAMES[code]}"),
                        valueQuantity=Quantity(value=round(float(probabilities.get(code, 0.0)), 6), unit="probability"),
                    )
                    for code in CLASSES
                ],
            )
        )
        add(
            Provenance(
                target=[_ref(observation)],
                recorded=_instant(prediction.created_at),
                agent=[ProvenanceAgent(type=_text("Software that produced the result"), who=_ref(devices[version]))],
                entity=[ProvenanceEntity(role="source", what=_ref(media_refs[image.pk]))],
            )
        )

    try:
        referral = case.referral
    except ObjectDoesNotExist:
        referral = None
    if referral is not None:
        priority = "urgent" if referral.urgency == Referral.Urgency.URGENT else "routine"
        service_request = add(
            ServiceRequest(
                status="completed" if referral.status == Referral.Status.REVIEWED else "active",
                intent="order",
                priority=priority,
                code=_text("Specialist dermatology review of skin lesion photos"),
                subject=_ref(patient_ref),
                authoredOn=_instant(referral.referred_at),
                requester=_user_ref(referral.referred_by) if referral.referred_by_id else _ref(organization),
                reasonCode=[_text(referral.reason or referral.get_source_display())],
                bodySite=[body_site],
                supportingInfo=[_ref(ref) for ref in media_refs.values()],
            )
        )
        status = effective_status(referral)
        review = referral.latest_review
        owner = None
        if review is not None:
            owner = _user_ref(review.reviewer)
        elif status == Referral.Status.CLAIMED and referral.claimed_by_id:
            owner = _user_ref(referral.claimed_by)
        add(
            Task(
                status=TASK_STATUS.get(status, "requested"),
                intent="order",
                priority=priority,
                focus=_ref(service_request),
                for_fhir=_ref(patient_ref),
                authoredOn=_instant(referral.referred_at),
                lastModified=_instant(referral.updated_at),
                requester=_ref(organization),
                owner=owner,
                restriction=TaskRestriction(period=Period(end=_instant(referral.due_at))),
            )
        )
        if review is not None:
            outcome = f"Outcome: {review.get_outcome_display()}"
            if review.follow_up_months:
                outcome += f" (photograph again in {review.follow_up_months} months)"
            add(
                DiagnosticReport(
                    status="amended" if review.supersedes_id else "final",
                    code=_text("Specialist review of skin lesion photos"),
                    subject=_ref(patient_ref),
                    basedOn=[_ref(service_request)],
                    issued=_instant(review.created_at),
                    effectiveDateTime=_instant(review.created_at),
                    performer=[_user_ref(review.reviewer)],
                    conclusion=review.message,
                    conclusionCode=[_text(f"Diagnosis: {review.diagnosis_label}"), _text(outcome)],
                    media=[DiagnosticReportMedia(link=_ref(ref)) for ref in media_refs.values()],
                )
            )
    return Bundle(
        type="collection",
        timestamp=_instant(timezone.now()),
        identifier=Identifier(system=f"{SYSTEM_BASE}:case", value=str(case.pk)),
        entry=entries,
    )


def bundle_json(bundle: Bundle) -> dict:
    """The bundle as FHIR JSON: aliases (``for``), no empty elements."""
    return bundle.model_dump(mode="json", by_alias=True, exclude_none=True)


def bundle_validate(bundle: dict) -> Bundle:
    """Parse FHIR JSON with fhir.resources' models; raises on anything that is not valid FHIR."""
    return Bundle.model_validate(bundle)
