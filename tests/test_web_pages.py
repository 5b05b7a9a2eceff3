"""The server-rendered web UI: who sees which page, scoping, audit events and the result card."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape
from PIL import Image

from accounts.models import AuditEvent
from diagnosis.models import Case, LesionImage
from inference.preprocessing import CLASS_NAMES, CLASSES, SPEC_NAME
from patients.forms import CONSENT_WORDING
from patients.models import Patient
from tests.factories import (
    CaseFactory,
    LesionImageFactory,
    PatientFactory,
    PredictionFactory,
    image_bytes,
)

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


@pytest.fixture
def patient_a(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff, full_name="Amina Okafor", identifier="A-001")


@pytest.fixture
def patient_b(clinic_b, other_staff):
    return PatientFactory(clinic=clinic_b, created_by=other_staff, full_name="Bruno Keller", identifier="B-001")


@pytest.fixture
def case_a(patient_a, staff):
    case = CaseFactory(patient=patient_a, submitted_by=staff, body_site=Case.BodySite.BACK)
    LesionImageFactory(case=case)
    return case


@pytest.fixture
def case_b(patient_b, other_staff):
    case = CaseFactory(patient=patient_b, submitted_by=other_staff, body_site=Case.BodySite.FACE)
    LesionImageFactory(case=case)
    return case


def audited(action: str, obj) -> bool:
    return AuditEvent.objects.filter(action=action, object_id=str(obj.pk)).exists()


def analysed(case: Case, *, risk: str = Case.Risk.LOW, summary: str = "Looks like a common mole.", **prediction):
    """Give every image of the case a prediction, the way the worker finishes a case."""
    for image in case.images.all():
        image.analysis_status = LesionImage.AnalysisStatus.DONE
        image.save(update_fields=["analysis_status"])
        PredictionFactory(image=image, **prediction)
    case.status = Case.Status.ANALYSED
    case.risk = risk
    case.summary = summary
    case.save(update_fields=["status", "risk", "summary"])
    return case


# --- Sign-in --------------------------------------------------------------------------------
def test_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content
    assert b'autocomplete="current-password"' in response.content


def test_staff_can_sign_in_and_reach_the_dashboard(client, staff):
    response = client.post(
        reverse("login"),
        {"username": "alice", "password": "correct horse battery staple"},
        follow=True,
    )
    assert response.status_code == 200
    assert response.resolver_match.view_name == "web:dashboard"


@pytest.mark.parametrize(
    "name, args",
    [
        ("web:dashboard", []),
        ("web:patient-list", []),
        ("web:patient-create", []),
        ("web:patient-detail", [1]),
        ("web:case-create", [1]),
        ("web:case-detail", [1]),
        ("web:case-result", [1]),
        ("monitoring:model-report", []),
        ("monitoring:model-report-file", ["confusion_matrix.png"]),
        ("web:image-preview", [1, 160]),
        ("password_change", []),
    ],
)
def test_anonymous_is_redirected_to_login(client, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=" in response["Location"]


def test_password_change_page_renders(web_client, staff):
    response = web_client(staff).get(reverse("password_change"))
    assert response.status_code == 200
    assert b'name="new_password1"' in response.content


# --- Dashboard -----------------------------------------------------------------------------
def test_staff_dashboard_lists_own_clinics_cases_only(web_client, staff, case_a, case_b):
    response = web_client(staff).get(reverse("web:dashboard"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Amina Okafor" in content
    assert "Bruno Keller" not in content
    assert reverse("web:case-detail", args=[case_a.pk]) in content
    assert "Register patient" in content


def test_specialist_dashboard_is_the_referral_queue(web_client, specialist, patient_a, case_b):
    referred = CaseFactory(patient=patient_a, referred=True)
    response = web_client(specialist).get(reverse("web:dashboard"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Referred cases" in content
    assert reverse("web:case-detail", args=[referred.pk]) in content
    assert reverse("web:case-detail", args=[case_b.pk]) not in content
    assert "Register patient" not in content


def test_administrator_dashboard_shows_every_clinic(web_client, admin_user, case_a, case_b):
    content = web_client(admin_user).get(reverse("web:dashboard")).content.decode()
    assert "Amina Okafor" in content and "Bruno Keller" in content
    assert "Clinic A" in content and "Clinic B" in content


# --- Patients ------------------------------------------------------------------------------
def test_patient_list_search(web_client, staff, patient_a, clinic_a):
    PatientFactory(clinic=clinic_a, created_by=staff, full_name="Zola Dube")
    client = web_client(staff)
    everyone = client.get(reverse("web:patient-list")).content.decode()
    assert "Amina Okafor" in everyone and "Zola Dube" in everyone
    found = client.get(reverse("web:patient-list"), {"q": "zola"}).content.decode()
    assert "Zola Dube" in found and "Amina Okafor" not in found
    by_number = client.get(reverse("web:patient-list"), {"q": "A-001"}).content.decode()
    assert "Amina Okafor" in by_number


def test_patient_search_with_a_null_character_is_a_form_error(web_client, staff, patient_a):
    # PostgreSQL refuses NUL in a query string: without the check this is a 500 there.
    response = web_client(staff).get(reverse("web:patient-list"), {"q": "Amina\x00"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "The search could not be run" in page and "Null characters are not allowed." in page
    assert "Amina Okafor" not in page
    assert not AuditEvent.objects.filter(action="patient.list").exists()


def test_staff_cannot_list_other_clinics_patients(web_client, staff, patient_a, patient_b):
    content = web_client(staff).get(reverse("web:patient-list")).content.decode()
    assert "Amina Okafor" in content
    assert "Bruno Keller" not in content


def test_patient_create_form_shows_the_consent_wording(web_client, staff):
    response = web_client(staff).get(reverse("web:patient-create"))
    assert response.status_code == 200
    assert escape(str(CONSENT_WORDING)) in response.content.decode()
    assert b'name="consent_given"' in response.content


def test_staff_registers_a_patient(web_client, staff, clinic_a):
    response = web_client(staff).post(
        reverse("web:patient-create"),
        {
            "clinic": clinic_a.pk,
            "identifier": "A-777",
            "full_name": "Grace Mwangi",
            "date_of_birth": "1984-02-29",
            "sex": Patient.Sex.FEMALE,
            "skin_type": Patient.SkinType.V,
            "consent_given": "on",
        },
    )
    patient = Patient.objects.get(identifier="A-777")
    assert response.status_code == 302
    assert response["Location"] == reverse("web:patient-detail", args=[patient.pk])
    assert patient.clinic == clinic_a and patient.consent_given
    assert patient.consent_recorded_by == staff
    assert audited("patient.create", patient)


def test_patient_number_already_used_in_the_clinic_is_an_error(web_client, staff, clinic_a, patient_a):
    response = web_client(staff).post(
        reverse("web:patient-create"),
        {
            "clinic": clinic_a.pk,
            "identifier": "A-001",
            "full_name": "Someone Else",
            "date_of_birth": "1990-01-01",
            "sex": Patient.Sex.MALE,
        },
    )
    assert response.status_code == 200
    assert Patient.objects.filter(identifier="A-001").count() == 1
    # On the number field, with a link to the patient already registered under it.
    assert response.context["form"].has_error("identifier", code="unique")
    assert not response.context["form"].non_field_errors()
    assert reverse("web:patient-detail", args=[patient_a.pk]).encode() in response.content


def test_staff_cannot_register_a_patient_in_another_clinic(web_client, staff, clinic_b):
    response = web_client(staff).post(
        reverse("web:patient-create"),
        {
            "clinic": clinic_b.pk,
            "identifier": "X-1",
            "full_name": "Mallory",
            "date_of_birth": "1990-01-01",
            "sex": Patient.Sex.MALE,
            "consent_given": "on",
        },
    )
    assert response.status_code == 200  # the form refuses the choice
    assert not Patient.objects.filter(identifier="X-1").exists()


def test_specialist_cannot_register_patients(web_client, specialist):
    response = web_client(specialist).get(reverse("web:patient-create"))
    assert response.status_code == 403
    assert b"Not allowed" in response.content


def test_patient_page_shows_case_history_and_is_audited(web_client, staff, patient_a, case_a):
    response = web_client(staff).get(reverse("web:patient-detail", args=[patient_a.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Amina Okafor" in content
    assert reverse("web:case-detail", args=[case_a.pk]) in content
    image = case_a.images.get()
    assert reverse("web:image-preview", args=[image.pk, 160]) in content
    assert 'loading="lazy"' in content
    assert reverse("web:case-create", args=[patient_a.pk]) in content
    assert audited("patient.view", patient_a)


def test_staff_cannot_see_other_clinics_patient(web_client, staff, patient_b):
    response = web_client(staff).get(reverse("web:patient-detail", args=[patient_b.pk]))
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert not audited("patient.view", patient_b)


# --- New case ----------------------------------------------------------------------------------
def photo(name="lesion.jpg", width=320, height=240):
    return SimpleUploadedFile(name, image_bytes(width, height), content_type="image/jpeg")


def case_form_data(**overrides):
    data = {
        "body_site": Case.BodySite.BACK,
        "duration": Case.Duration.MONTHS_1_6,
        "recently_changed": "on",
        "abcde_border": "on",
        "notes": "Grew in the last month.",
    }
    data.update(overrides)
    return data


def test_case_form_opens_the_camera(web_client, staff, patient_a):
    response = web_client(staff).get(reverse("web:case-create", args=[patient_a.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert 'capture="environment"' in content
    assert 'accept="image/*"' in content
    assert 'enctype="multipart/form-data"' in content
    for value, _label in Case.BodySite.choices:
        assert f'value="{value}"' in content
    assert audited("patient.view", patient_a)


def test_case_form_posts_without_javascript(web_client, staff, patient_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = web_client(staff).post(
            reverse("web:case-create", args=[patient_a.pk]),
            {**case_form_data(), "images": [photo("one.jpg"), photo("two.jpg")]},
        )
    case = Case.objects.get(patient=patient_a)
    assert response.status_code == 302
    assert response["Location"] == reverse("web:case-detail", args=[case.pk])
    assert case.images.count() == 2
    assert case.recently_changed and case.abcde_border and not case.itching
    assert case.duration == Case.Duration.MONTHS_1_6
    assert case.submitted_by == staff


def test_case_upload_by_script_gets_json_and_keeps_image_kinds(
    web_client, staff, patient_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = web_client(staff).post(
            reverse("web:case-create", args=[patient_a.pk]),
            {
                **case_form_data(),
                "images": [photo("a.jpg"), photo("b.jpg")],
                "image_kinds": [LesionImage.Kind.OVERVIEW, LesionImage.Kind.DERMOSCOPIC],
            },
            **XHR,
        )
    assert response.status_code == 201
    body = response.json()
    case = Case.objects.get(pk=body["case"])
    assert body["redirect"] == reverse("web:case-detail", args=[case.pk])
    assert [image.kind for image in case.images.all()] == ["overview", "dermoscopic"]


def test_case_without_photos_is_refused_with_json_errors(web_client, staff, patient_a):
    response = web_client(staff).post(reverse("web:case-create", args=[patient_a.pk]), case_form_data(), **XHR)
    assert response.status_code == 400
    assert "images" in response.json()["errors"]
    assert not Case.objects.exists()


def test_case_with_a_file_that_is_not_an_image_shows_the_reason(web_client, staff, patient_a):
    bogus = SimpleUploadedFile("notes.jpg", b"not really a photo", content_type="image/jpeg")
    response = web_client(staff).post(
        reverse("web:case-create", args=[patient_a.pk]), {**case_form_data(), "images": [bogus]}
    )
    assert response.status_code == 200
    assert "not an image" in response.content.decode()
    assert not Case.objects.exists()


def test_case_cannot_be_submitted_without_consent(web_client, staff, clinic_a):
    patient = PatientFactory(clinic=clinic_a, created_by=staff, consent_given=False)
    client = web_client(staff)
    page = client.get(reverse("web:case-create", args=[patient.pk]))
    assert b"consent is not recorded" in page.content
    response = client.post(reverse("web:case-create", args=[patient.pk]), {**case_form_data(), "images": [photo()]})
    assert response.status_code == 200
    assert not Case.objects.exists()


def test_staff_cannot_open_case_form_for_other_clinics_patient(web_client, staff, patient_b):
    client = web_client(staff)
    assert client.get(reverse("web:case-create", args=[patient_b.pk])).status_code == 404
    response = client.post(reverse("web:case-create", args=[patient_b.pk]), {**case_form_data(), "images": [photo()]})
    assert response.status_code == 404
    assert not Case.objects.exists()


def test_specialist_cannot_submit_cases(web_client, specialist, patient_a):
    CaseFactory(patient=patient_a, referred=True)  # a referred case: still no patient record for specialists
    response = web_client(specialist).get(reverse("web:case-create", args=[patient_a.pk]))
    assert response.status_code == 404


# --- Case page and result card -------------------------------------------------------------------
def test_case_page_says_analysing_before_a_prediction(web_client, staff, case_a):
    response = web_client(staff).get(reverse("web:case-detail", args=[case_a.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Analysing" in content
    assert 'data-pending="true"' in content
    assert reverse("web:case-result", args=[case_a.pk]) in content
    assert "Decision support, not a diagnosis" in content
    assert 'class="probs"' not in content
    assert audited("case.view", case_a)


def test_case_page_shows_probability_bars_after_a_prediction(web_client, staff, case_a):
    analysed(
        case_a,
        risk=Case.Risk.HIGH,
        summary="Melanoma is the most likely class; refer.",
        model_version="mobilenet_v2-test",
        probabilities={"akiec": 0.02, "bcc": 0.03, "bkl": 0.05, "df": 0.01, "mel": 0.71, "nv": 0.17, "vasc": 0.01},
        top_class="mel",
        with_heatmap=True,
    )
    response = web_client(staff).get(reverse("web:case-detail", args=[case_a.pk]))
    content = response.content.decode()
    assert 'data-pending="false"' in content
    for code in CLASSES:
        assert CLASS_NAMES[code] in content
    assert "71.0 %" in content and "17.0 %" in content
    assert 'class="w71"' in content  # a width class: the CSP allows no inline style
    assert "mobilenet_v2-test" in content
    assert "Melanoma is the most likely class; refer." in content
    assert "High" in content and "risk-high" in content
    image = case_a.images.get()
    assert reverse("diagnosis:image-heatmap", args=[image.pk]) in content
    assert "Decision support, not a diagnosis" in content
    assert "The model is uncertain" not in content


def test_result_card_says_when_the_model_is_uncertain(web_client, staff, case_a):
    analysed(
        case_a,
        probabilities={"akiec": 0.1, "bcc": 0.1, "bkl": 0.3, "df": 0.1, "mel": 0.2, "nv": 0.15, "vasc": 0.05},
        top_class="bkl",
    )
    content = web_client(staff).get(reverse("web:case-detail", args=[case_a.pk])).content.decode()
    assert "The model is uncertain about this photo" in content


def test_result_endpoint_is_pending_then_delivers_the_result(web_client, staff, case_a):
    client = web_client(staff)
    url = reverse("web:case-result", args=[case_a.pk])
    page = client.get(reverse("web:case-detail", args=[case_a.pk])).content.decode()
    AuditEvent.objects.all().delete()
    pending = client.get(url).json()
    assert pending["pending"] is True
    assert "Analysing" in pending["html"]
    # Unchanged card, same fingerprint: the page keeps what it shows.
    assert f'data-fingerprint="{pending["fingerprint"]}"' in page
    assert not audited("case.view", case_a)  # polls that show no result are not logged

    analysed(case_a)
    done = client.get(url).json()
    assert done["pending"] is False
    assert done["fingerprint"] != pending["fingerprint"]
    assert done["status"] == Case.Status.ANALYSED
    assert CLASS_NAMES["nv"] in done["html"]
    assert "Analysed" in done["status_html"]
    assert AuditEvent.objects.filter(
        action="case.view", object_id=str(case_a.pk), details__via="result-refresh"
    ).exists()


def test_failed_image_shows_its_reason(web_client, staff, case_a):
    image = case_a.images.get()
    image.analysis_status = LesionImage.AnalysisStatus.FAILED
    image.analysis_error = "The photo is too dark to analyse."
    image.save(update_fields=["analysis_status", "analysis_error"])
    Case.objects.filter(pk=case_a.pk).update(status=Case.Status.FAILED)
    content = web_client(staff).get(reverse("web:case-detail", args=[case_a.pk])).content.decode()
    assert "The photo is too dark to analyse." in content
    assert 'data-pending="false"' in content


def failed(case: Case, reason: str = "Worker lost.") -> Case:
    case.images.update(analysis_status=LesionImage.AnalysisStatus.FAILED, analysis_error=reason)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.FAILED)
    case.refresh_from_db()
    return case


def test_analyse_again_queues_the_photos_again(web_client, staff, case_a, django_capture_on_commit_callbacks):
    failed(case_a)
    client = web_client(staff)
    page = client.get(reverse("web:case-detail", args=[case_a.pk])).content.decode()
    assert "Analyse again" in page
    assert reverse("analysis:case-reanalyse", args=[case_a.pk]) in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("analysis:case-reanalyse", args=[case_a.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("web:case-detail", args=[case_a.pk])
    case_a.refresh_from_db()
    assert case_a.status == Case.Status.ANALYSING
    assert case_a.images.get().analysis_status == LesionImage.AnalysisStatus.QUEUED
    assert len(callbacks) == 1  # the case goes back on the analysis queue after commit
    assert audited("case.reanalyse", case_a)


def test_specialist_is_not_offered_analyse_again(web_client, specialist, patient_a):
    case = CaseFactory(patient=patient_a, referred=True)
    LesionImageFactory(case=case)
    case.images.update(analysis_status=LesionImage.AnalysisStatus.FAILED, analysis_error="Worker lost.")
    client = web_client(specialist)
    page = client.get(reverse("web:case-detail", args=[case.pk])).content.decode()
    assert "Worker lost." in page
    assert reverse("analysis:case-reanalyse", args=[case.pk]) not in page
    assert client.post(reverse("analysis:case-reanalyse", args=[case.pk])).status_code == 403


def test_other_clinic_cannot_ask_to_analyse_again(web_client, other_staff, case_a):
    failed(case_a)
    response = web_client(other_staff).post(reverse("analysis:case-reanalyse", args=[case_a.pk]))
    assert response.status_code == 404
    case_a.refresh_from_db()
    assert case_a.status == Case.Status.FAILED


def test_photo_previews_are_small_jpegs(web_client, staff, case_a):
    image = LesionImageFactory(case=case_a, width=1600, height=1200)
    response = web_client(staff).get(reverse("web:image-preview", args=[image.pk, 160]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "no-store" in response["Cache-Control"]
    with Image.open(io.BytesIO(response.content)) as preview:
        assert preview.size == (160, 120)
    assert AuditEvent.objects.filter(action="image.view", object_id=str(image.pk), details__preview=160).exists()


def test_photo_previews_never_enlarge(web_client, staff, case_a):
    image = case_a.images.get()  # 64 x 48
    response = web_client(staff).get(reverse("web:image-preview", args=[image.pk, 800]))
    with Image.open(io.BytesIO(response.content)) as preview:
        assert preview.size == (64, 48)


def test_photo_preview_only_in_the_offered_sizes(web_client, staff, case_a):
    image = case_a.images.get()
    assert web_client(staff).get(reverse("web:image-preview", args=[image.pk, 4000])).status_code == 404


def test_staff_cannot_see_other_clinics_photo_preview(web_client, staff, case_b):
    image = case_b.images.get()
    assert web_client(staff).get(reverse("web:image-preview", args=[image.pk, 160])).status_code == 404


def test_staff_cannot_see_other_clinics_case(web_client, staff, case_b):
    client = web_client(staff)
    assert client.get(reverse("web:case-detail", args=[case_b.pk])).status_code == 404
    assert client.get(reverse("web:case-result", args=[case_b.pk])).status_code == 404
    assert not audited("case.view", case_b)


def test_specialist_sees_referred_cases_only(web_client, specialist, case_a, patient_a):
    referred = CaseFactory(patient=patient_a, referred=True)
    client = web_client(specialist)
    assert client.get(reverse("web:case-detail", args=[case_a.pk])).status_code == 404
    assert client.get(reverse("web:case-detail", args=[referred.pk])).status_code == 200


# --- Model page ------------------------------------------------------------------------------
PNG_BYTES = image_bytes(40, 30, (20, 120, 200), "PNG")


@pytest.fixture
def model_artifact(tmp_path, settings):
    """A minimal artifact folder the way training/export.py writes one, with a report."""
    folder = tmp_path / "artifact-test-1"
    report = folder / "report"
    report.mkdir(parents=True)
    manifest = {
        "format_version": 2,
        "gate": {"file": "gate.npz", "thresholds": {"ood_score": 4.0}},
        "model_version": "mobilenet_v2-20260101-test",
        "architecture": "mobilenet_v2",
        "created_at": "2026-01-01T00:00:00+00:00",
        "classes": list(CLASSES),
        "preprocessing": {"name": SPEC_NAME, "input_size": 224},
        "serving": {"file": "model.tflite", "runtime": "litert"},
        "temperature": 1.3,
        "thresholds": {"mel": 0.12, "bcc": 0.2, "akiec": 0.25},
        "threshold_target_sensitivity": 0.9,
        "metrics": {
            "test": {
                "images": 1503,
                "accuracy": 0.8123,
                "balanced_accuracy": 0.7011,
                "macro_f1": 0.6822,
                "melanoma_recall": 0.6555,
                "malignant_sensitivity": 0.9,
                "malignant_specificity": 0.61,
                "malignant_roc_auc": 0.91,
                "ece": 0.031,
            }
        },
        "parameters": 2266951,
        "files": {"gate.npz": "0" * 64},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (report / "report.md").write_text(
        "# Evaluation of mobilenet_v2\n\nEvaluated on **1503** images <script>alert(1)</script>.\n\n"
        "| metric | value |\n| --- | ---: |\n| accuracy | 0.812 |\n\n"
        "![confusion matrix](confusion_matrix.png) ![secret](../manifest.json)\n"
    )
    (report / "confusion_matrix.png").write_bytes(PNG_BYTES)
    (report / "metrics.json").write_text("{}")
    settings.SKINPORTAL_MODEL_DIR = str(folder)
    return folder


def test_model_page_without_a_model(web_client, staff, settings, tmp_path):
    settings.SKINPORTAL_MODEL_DIR = str(tmp_path / "nothing-here")
    response = web_client(staff).get(reverse("monitoring:model-report"))
    assert response.status_code == 200
    assert b"No model installed" in response.content


def test_model_page_shows_the_report(web_client, specialist, model_artifact):
    response = web_client(specialist).get(reverse("monitoring:model-report"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "mobilenet_v2-20260101-test" in content
    assert "0.812" in content  # headline accuracy from the manifest
    headline = content.split("How well it does", 1)[1].split("</section>", 1)[0]
    assert "0.701" in headline and "0.682" in headline  # the served model's test figures
    assert 'title="ham10000-mobilenetv2-v1"' in headline and "0.670" in headline  # the shipped v1 beside it
    assert "0.530" in headline  # the published system's macro F1
    assert "2026-01-01T" not in content and "1 January 2026" in content
    assert "<table" in content
    assert reverse("monitoring:model-report-file", args=["confusion_matrix.png"]) in content
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;" in content
    assert "manifest.json" not in content
    assert CLASS_NAMES["mel"] in content  # referral thresholds by class name


def test_model_report_links_only_to_web_addresses_and_shows_only_its_own_figures():
    from monitoring.report_markdown import render_report_markdown

    html = render_report_markdown(
        "[paper](https://example.org/a) [bad](javascript:alert(1)) ![remote](http://example.org/x.png)",
        image_url=lambda name: None,
    )

    assert '<a href="https://example.org/a"' in html
    assert 'href="javascript:' not in html
    assert "<img" not in html and "http://example.org/x.png" not in html


def _elements(html: str) -> list[tuple[str, dict[str, str]]]:
    """Every element of an HTML fragment with its attributes, as a browser's parser sees them."""
    from html.parser import HTMLParser

    found: list[tuple[str, dict[str, str]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, {name: value or "" for name, value in attrs}))

    Collector().feed(str(html))
    return found


def test_model_report_neutralises_scripts_handlers_and_script_links():
    from monitoring.report_markdown import render_report_markdown

    html = render_report_markdown(
        "<script>alert(1)</script>\n\n"
        '<img src=x onerror=alert(2)> <a href="javascript:alert(3)">raw</a>\n\n'
        "[a](javascript:alert(4)) [b](JaVaScRiPt:alert(5)) [c](java&#x09;script:alert(6)) "
        "[d](data:text/html,<b>7</b>) [e](vbscript:msgbox) <javascript:alert(8)> [f](/relative) [ok](https://example.org/ok)\n\n"
        '![g](confusion_matrix.png "x" onerror="alert(9)")\n\n![h](confusion_matrix.png "figure")\n',
        image_url=lambda name: "/model/report/files/confusion_matrix.png" if name == "confusion_matrix.png" else None,
    )

    elements = _elements(html)
    assert not [tag for tag, _attrs in elements if tag in ("script", "iframe", "object", "style")]
    assert not [name for _tag, attrs in elements for name in attrs if name.startswith("on")]
    links = [attrs.get("href") for tag, attrs in elements if tag == "a" and attrs.get("href")]
    assert links == ["https://example.org/ok"]  # not javascript:, data:, vbscript: nor /relative
    assert [attrs["src"] for tag, attrs in elements if tag == "img"] == ["/model/report/files/confusion_matrix.png"]
    assert "&lt;script&gt;" in html  # raw HTML is shown as text, not run


def test_model_report_renders_fenced_code_nested_lists_and_autolinks():
    from monitoring.report_markdown import render_report_markdown

    html = render_report_markdown(
        "```\npython -m training.train --epochs 30\n```\n\n"
        '- outer\n  - inner\n\nSee <https://example.org/paper> and [the data](https://example.org/d "HAM10000").\n',
        image_url=lambda name: None,
    )

    assert "<pre><code>python -m training.train --epochs 30\n</code></pre>" in html
    assert html.count("<ul>") == 2  # the inner list nests in the outer one
    assert '<a href="https://example.org/paper" rel="noopener noreferrer">https://example.org/paper</a>' in html
    assert 'title="HAM10000"' in html


def test_model_report_figures_are_served_by_name_only(web_client, staff, model_artifact):
    client = web_client(staff)
    response = client.get(reverse("monitoring:model-report-file", args=["confusion_matrix.png"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG_BYTES
    for name in ("metrics.json", "report.md", "missing.png", "..%2Fmanifest.json"):
        assert client.get(reverse("monitoring:model-report-file", args=[name])).status_code == 404


def test_model_report_figures_404_without_a_model(web_client, staff, settings, tmp_path):
    settings.SKINPORTAL_MODEL_DIR = str(tmp_path / "nothing-here")
    response = web_client(staff).get(reverse("monitoring:model-report-file", args=["confusion_matrix.png"]))
    assert response.status_code == 404


def test_model_page_copes_with_a_bare_manifest(web_client, staff, settings, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    manifest = {
        "format_version": 2,
        "gate": {"file": "gate.npz", "thresholds": {"ood_score": 4.0}},
        "files": {"gate.npz": "0" * 64},
        "model_version": "bare-1",
        "classes": list(CLASSES),
        "preprocessing": {"name": SPEC_NAME},
        "serving": {"file": "model.tflite"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    settings.SKINPORTAL_MODEL_DIR = str(folder)
    response = web_client(staff).get(reverse("monitoring:model-report"))
    assert response.status_code == 200
    assert b"bare-1" in response.content
    assert b"without a written report" in response.content


PATIENT_DATA_PAGES = [
    ("get", "web:dashboard", None),
    ("get", "web:patient-list", None),
    ("get", "web:patient-create", None),
    ("get", "web:patient-detail", "patient"),
    ("get", "web:case-create", "patient"),
    ("post", "web:case-create", "patient"),  # refused: the form comes back with the patient's name
    ("get", "web:case-detail", "case"),
    ("get", "web:case-result", "case"),
    ("post", "web:patient-consent", "patient"),
]


@pytest.mark.parametrize(
    ("method", "name", "arg"), PATIENT_DATA_PAGES, ids=[f"{m}-{n}" for m, n, _ in PATIENT_DATA_PAGES]
)
def test_pages_with_patient_data_are_never_cached(web_client, staff, case_a, method, name, arg):
    args = {"patient": [case_a.patient.pk], "case": [case_a.pk], None: []}[arg]

    response = getattr(web_client(staff), method)(reverse(name, args=args))

    assert response.status_code in (200, 302, 400), response.status_code
    assert response["Cache-Control"] == "private, no-store"


def test_model_page_compares_the_served_network_with_lenet5_and_alexnet_on_its_split(web_client, staff):
    """The served artifact's baselines (inference/baselines/<version>.json), trained on its own split."""
    import hashlib

    from inference.artifact import load_artifact
    from inference.baselines import baselines_for_artifact

    artifact = load_artifact()
    measured, _measured_on = baselines_for_artifact(artifact)
    assert measured is not None, "no baselines measured for the served model"
    split = (artifact.report_dir / "split.csv").read_bytes()
    assert measured["split_sha256"] == hashlib.sha256(split).hexdigest()

    content = web_client(staff).get(reverse("monitoring:model-report")).content.decode()

    table = content.split("Compared with older network designs", 1)[1].split("</section>", 1)[0]
    for name in ("MobileNetV2", "LeNet-5", "AlexNet"):
        assert name in table
    for row in measured["baselines"]:
        assert f"{row['balanced_accuracy']:.3f}" in table
