"""The portal's own pages read wholly in French and in Portuguese, and the catalogues are complete.

Each page is rendered for the same user in English and in the other language; whatever visible
text is the same in both, less the data the page shows, is a string left in English.

The panels other apps add to these pages (the referral workflow, follow-ups, the UV card) are
left out here: they are those apps' pages and are checked with them.
"""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import trans_real

from analysis.services import PHOTO_UNREADABLE
from diagnosis import extensions
from diagnosis.models import Case, LesionImage
from diagnosis.summary import case_summary, render_facts
from inference.risk import ImageResult, case_risk
from tests.factories import (
    CaseFactory,
    LesionImageFactory,
    PatientFactory,
    PredictionFactory,
    image_bytes,
)
from tests.i18n import LANGUAGES, catalogue, untranslated

pytestmark = pytest.mark.django_db

THRESHOLDS = {"mel": 0.3, "bcc": 0.4, "akiec": 0.4}
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}")


@pytest.fixture(autouse=True)
def own_pages_only(monkeypatch):
    for name in ("CASE_PAGE_PANELS", "DASHBOARD_PANELS", "PATIENT_PAGE_PANELS"):
        monkeypatch.setattr(extensions, name, [])


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(
        clinic=clinic_a,
        created_by=staff,
        full_name="Wanjiru Kamau",
        identifier="KE-4471",
        phone="+254 712 345 678",
        village="Kibera",
    )


def _assessment(probabilities: list[dict | None], turned_back: dict | None = None, versions=("test-model-v2",)):
    turned_back = turned_back or {}
    images = [
        ImageResult(number, probs, turned_back=turned_back.get(number, ""))
        for number, probs in enumerate(probabilities, start=1)
    ]
    return case_risk(images, thresholds=THRESHOLDS, model_versions=list(versions))


MELANOMA = {"akiec": 0.02, "bcc": 0.03, "bkl": 0.05, "df": 0.01, "mel": 0.62, "nv": 0.26, "vasc": 0.01}
UNCERTAIN = {"akiec": 0.05, "bcc": 0.25, "bkl": 0.2, "df": 0.05, "mel": 0.05, "nv": 0.38, "vasc": 0.02}
BENIGN = {"akiec": 0.01, "bcc": 0.01, "bkl": 0.02, "df": 0.01, "mel": 0.02, "nv": 0.92, "vasc": 0.01}


def _scored_case(patient, staff, *, status=Case.Status.ANALYSED, probabilities=MELANOMA, **fields):
    assessment = _assessment([probabilities])
    case = CaseFactory(
        patient=patient,
        submitted_by=staff,
        status=status,
        risk=assessment.level,
        summary=assessment.summary,
        summary_facts=list(assessment.facts),
        notes="Grew since the rains",
        changed_size=True,
        abcde_colour=True,
        diameter_mm=8,
        **fields,
    )
    image = LesionImageFactory(case=case, kind="close_up", analysis_status=LesionImage.AnalysisStatus.DONE)
    PredictionFactory(image=image, model_version="test-model-v2", probabilities=probabilities, with_heatmap=True)
    return case


def _page(client, url, user=None, language="en-gb", method="get", data=None):
    if user is not None:
        user.language = language
        user.save(update_fields=["language"])
        client.force_login(user)
    else:
        client.cookies["django_language"] = language
    response = getattr(client, method)(url, data or {})
    return response


def _check(client, url, user, data, method="get", form=None, status=200):
    """The page in English and in each other language: nothing left in English."""
    english = _page(client, url, user, "en-gb", method, form)
    assert english.status_code == status, url
    english_html = english.content.decode()
    for language in LANGUAGES:
        other = _page(client, url, user, language, method, form)
        assert other.status_code == status
        html = other.content.decode()
        assert f'<html lang="{language}">' in html
        left = untranslated(english_html, html, language, data=data)
        assert left == [], f"{url} in {language}: {left}"


def _user_data(user):
    return [user.username, user.get_full_name(), user.clinics.first().name if user.clinics.exists() else ""]


def _patient_data(patient):
    return [patient.full_name, patient.identifier, patient.clinic.name, patient.phone, patient.village]


# --- Signed out -----------------------------------------------------------------------------
def test_the_login_page(client):
    _check(client, reverse("login"), None, [])


def test_the_login_page_after_a_wrong_password(client, staff):
    _check(client, reverse("login"), None, [], method="post", form={"username": "nobody", "password": "wrong"})


# --- Dashboard and case list ----------------------------------------------------------------
def test_the_dashboard_of_clinic_staff(client, staff, patient):
    _scored_case(patient, staff)
    CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.FAILED)
    _check(client, reverse("web:dashboard"), staff, _user_data(staff) + _patient_data(patient))


def test_the_empty_dashboard(client, staff):
    _check(client, reverse("web:dashboard"), staff, _user_data(staff))


def test_the_dashboard_of_a_specialist(client, specialist, staff, patient):
    _scored_case(patient, staff, status=Case.Status.REFERRED, referred_at="2026-03-02T10:00:00Z")
    _scored_case(patient, staff, status=Case.Status.REVIEWED, referred_at="2026-03-01T10:00:00Z")
    _check(client, reverse("web:dashboard"), specialist, _user_data(specialist) + _patient_data(patient))


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 200),
        ("?status=awaiting&risk=high", 200),
        ("?q=Wanjiru&submitted_from=01/01/2020", 200),
        ("?q=none", 200),
        ("?submitted_from=2026-02-30", 400),
        ("?submitted_from=2026-03-02&submitted_to=2026-03-01", 400),
    ],
)
def test_the_case_list_with_filters(client, staff, patient, query, status, monkeypatch):
    monkeypatch.setattr("diagnosis.views.CASES_PER_PAGE", 1)  # a pager too
    _scored_case(patient, staff)
    CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSING)
    _check(
        client,
        reverse("web:case-list") + query,
        staff,
        _user_data(staff) + _patient_data(patient) + ["none"],
        status=status,
    )


# --- Patients -------------------------------------------------------------------------------
def test_the_patient_list(client, staff, patient, monkeypatch):
    monkeypatch.setattr("diagnosis.views.PATIENTS_PER_PAGE", 1)  # a pager too
    PatientFactory(clinic=patient.clinic, created_by=staff, full_name="Juma Otieno", consent_given=False)
    _check(client, reverse("web:patient-list"), staff, _user_data(staff) + _patient_data(patient) + ["Juma Otieno"])


def test_the_patient_list_without_a_match(client, staff, patient):
    _check(client, reverse("web:patient-list") + "?q=Zzyzx", staff, _user_data(staff) + ["Zzyzx"])


def test_the_patient_page(client, staff, patient):
    _scored_case(patient, staff)
    _check(client, reverse("web:patient-detail", args=[patient.pk]), staff, _user_data(staff) + _patient_data(patient))


def test_the_page_of_a_patient_without_consent(client, staff, clinic_a):
    patient = PatientFactory(clinic=clinic_a, created_by=staff, consent_given=False, consent_recorded_at=None)
    _check(client, reverse("web:patient-detail", args=[patient.pk]), staff, _user_data(staff) + _patient_data(patient))


def test_the_patient_registration_form_and_its_errors(client, staff):
    url = reverse("web:patient-create")
    _check(client, url, staff, _user_data(staff))
    form = {"identifier": "", "full_name": "Amina Yusuf", "date_of_birth": "31/02/1970", "sex": "female"}
    _check(client, url, staff, _user_data(staff) + ["Amina Yusuf", "31/02/1970"], method="post", form=form)


def test_the_patient_edit_form(client, staff, patient):
    _check(client, reverse("web:patient-edit", args=[patient.pk]), staff, _user_data(staff) + _patient_data(patient))


def test_the_consent_withdrawal_page(client, staff, patient):
    url = reverse("web:patient-consent", args=[patient.pk])
    _check(
        client, url, staff, _user_data(staff) + _patient_data(patient), method="post", form={"consent_given": "false"}
    )


# --- New case -------------------------------------------------------------------------------
def test_the_new_case_form(client, staff, patient):
    _check(client, reverse("web:case-create", args=[patient.pk]), staff, _user_data(staff) + _patient_data(patient))


def test_the_new_case_form_offers_the_patients_lesions(client, staff, patient):
    _scored_case(patient, staff)
    _check(client, reverse("web:case-create", args=[patient.pk]), staff, _user_data(staff) + _patient_data(patient))


def test_the_new_case_form_with_its_errors(client, staff, patient):
    url = reverse("web:case-create", args=[patient.pk])
    form = {"body_site": "", "duration": "unknown", "diameter_mm": "900"}
    english = _page(client, url, staff, "en-gb", "post", form).content.decode()
    assert "The case was not submitted." in english
    _check(client, url, staff, _user_data(staff) + _patient_data(patient), method="post", form=form)


# --- The case page in its states ------------------------------------------------------------
def test_a_queued_case(client, staff, patient):
    case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=case, kind="dermoscopic")
    _check(client, reverse("web:case-detail", args=[case.pk]), staff, _user_data(staff) + _patient_data(patient))


@pytest.mark.parametrize("probabilities", [MELANOMA, UNCERTAIN, BENIGN])
def test_a_scored_case_with_its_result_and_heatmap(client, staff, patient, probabilities):
    case = _scored_case(patient, staff, probabilities=probabilities)
    page = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "fr").content.decode()
    assert "Carte de chaleur" in page
    _check(
        client,
        reverse("web:case-detail", args=[case.pk]),
        staff,
        _user_data(staff) + _patient_data(patient) + ["test-model-v2", case.notes],
    )


def test_a_case_whose_photo_the_gate_turned_back(client, staff, patient):
    assessment = _assessment([None], turned_back={1: "blurred"})
    case = CaseFactory(
        patient=patient,
        submitted_by=staff,
        status=Case.Status.FAILED,
        summary=assessment.summary,
        summary_facts=list(assessment.facts),
    )
    PredictionFactory(
        image=LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE),
        gate="blurred",
        gate_score=1.5,
        model_version="test-model-v2",
    )
    page = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "pt").content.decode()
    assert "Esta fotografia parece desfocada" in page
    _check(client, reverse("web:case-detail", args=[case.pk]), staff, _user_data(staff) + _patient_data(patient))


def test_a_case_whose_photo_could_not_be_read(client, staff, patient):
    assessment = _assessment([None])
    case = CaseFactory(
        patient=patient,
        submitted_by=staff,
        status=Case.Status.FAILED,
        summary=assessment.summary,
        summary_facts=list(assessment.facts),
    )
    LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.FAILED, analysis_error=PHOTO_UNREADABLE)
    page = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "fr").content.decode()
    assert "Cette photo n&#x27;a pas pu être lue comme une image." in page
    _check(client, reverse("web:case-detail", args=[case.pk]), staff, _user_data(staff) + _patient_data(patient))


def test_a_case_waiting_for_a_new_photo_and_the_dashboard_that_lists_it(client, staff, patient):
    from django.utils import timezone

    assessment = _assessment([None], turned_back={1: "not_a_lesion"})
    case = CaseFactory(
        patient=patient,
        submitted_by=staff,
        status=Case.Status.FAILED,
        summary=assessment.summary,
        summary_facts=list(assessment.facts),
        awaiting_photo_since=timezone.now(),
    )
    PredictionFactory(
        image=LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE),
        gate="not_a_lesion",
        gate_score=9.5,
        model_version="test-model-v2",
    )
    page = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "fr").content.decode()
    assert "Clore sans résultat" in page
    _check(client, reverse("web:case-detail", args=[case.pk]), staff, _user_data(staff) + _patient_data(patient))
    _check(client, reverse("web:dashboard"), staff, _user_data(staff) + _patient_data(patient))
    listed = reverse("web:case-list") + "?status=awaiting_photo"
    _check(client, listed, staff, _user_data(staff) + _patient_data(patient))


# --- The model in the field -------------------------------------------------------------------
def test_the_model_in_the_field_page_without_answers(client, admin_user):
    _check(client, reverse("monitoring:field"), admin_user, _user_data(admin_user))


def test_the_model_in_the_field_page_with_answers_and_turned_back_photos(
    client, admin_user, specialist, patient, staff
):
    from tests.test_field_figures import answered

    for _ in range(12):
        answered(patient.clinic, specialist, referred=True, diagnosis="mel", top_class="mel", version="test-model-v2")
    for _ in range(3):
        answered(patient.clinic, specialist, referred=False, diagnosis="nv", sample_rate=0.5, version="test-model-v2")
    case = _scored_case(patient, staff)
    PredictionFactory(image=LesionImageFactory(case=case), gate="blurred", model_version="test-model-v2")
    page = _page(client, reverse("monitoring:field"), admin_user, "pt").content.decode()
    assert "O modelo no terreno" in page and "ainda não há respostas suficientes" in page
    _check(
        client,
        reverse("monitoring:field"),
        admin_user,
        _user_data(admin_user) + [patient.clinic.name, "test-model-v2", "Fitzpatrick III", _this_monday()],
    )


def _this_monday() -> str:
    """The week's first day as the turned-back table writes it (a month's short name may not change)."""
    from datetime import timedelta

    from django.utils import dateformat, timezone

    today = timezone.localdate()
    return dateformat.format(today - timedelta(days=today.weekday()), "j M Y")


def test_a_referred_case_seen_by_the_specialist(client, staff, specialist, patient):
    case = _scored_case(patient, staff, status=Case.Status.REFERRED, referred_at="2026-03-02T10:00:00Z")
    _check(
        client,
        reverse("web:case-detail", args=[case.pk]),
        specialist,
        _user_data(specialist) + _user_data(staff) + _patient_data(patient) + ["test-model-v2", case.notes],
    )


# --- Account and error pages ----------------------------------------------------------------
def test_the_password_change_form_and_its_errors(client, staff):
    url = reverse("password_change")
    _check(client, url, staff, _user_data(staff))
    form = {"old_password": "wrong", "new_password1": "abc", "new_password2": "abd"}
    _check(client, url, staff, _user_data(staff), method="post", form=form)


def test_the_not_allowed_page(client, specialist):
    _check(client, reverse("web:patient-create"), specialist, _user_data(specialist), status=403)


def test_the_not_found_page(client, staff):
    _check(client, reverse("web:case-detail", args=[999999]), staff, _user_data(staff), status=404)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_server_error_page(language):
    with translation.override("en-gb"):
        english = render_to_string("500.html")
    with translation.override(language):
        other = render_to_string("500.html")
    assert untranslated(english, other, language) == []


# --- The date of birth in the reader's format ------------------------------------------------
@pytest.mark.parametrize(
    ("language", "placeholder", "typed"),
    [("en-gb", "dd/mm/yyyy", "02/03/1970"), ("fr", "jj/mm/aaaa", "02/03/1970"), ("pt", "dd/mm/aaaa", "02/03/1970")],
)
def test_the_date_of_birth_is_typed_and_shown_as_the_language_writes_it(
    client, staff, patient, language, placeholder, typed
):
    url = reverse("web:patient-edit", args=[patient.pk])
    html = _page(client, url, staff, language).content.decode()
    field = re.search(r'<input[^>]*name="date_of_birth"[^>]*>', html).group(0)
    assert 'type="text"' in field and f'placeholder="{placeholder}"' in field
    assert 'value="17/05/1970"' in field
    form = {
        "identifier": patient.identifier,
        "full_name": patient.full_name,
        "date_of_birth": typed,
        "sex": "female",
        "skin_type": "",
        "phone": "",
        "village": "",
    }
    response = _page(client, url, staff, language, "post", form)
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.date_of_birth.isoformat() == "1970-03-02"


def test_a_two_digit_year_of_birth_is_refused(client, staff, patient):
    url = reverse("web:patient-edit", args=[patient.pk])
    form = {
        "identifier": patient.identifier,
        "full_name": patient.full_name,
        "date_of_birth": "02/03/70",
        "sex": "female",
    }
    response = _page(client, url, staff, "fr", "post", form)
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.date_of_birth.isoformat() == "1970-05-17"


def test_percentages_follow_the_language(client, staff, patient):
    case = _scored_case(patient, staff)
    english = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "en-gb").content.decode()
    french = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "fr").content.decode()
    assert "62.0 %" in english and "62,0 %" in french


def test_numbers_a_report_could_not_compute_read_as_not_available():
    from django.utils import translation

    from diagnosis.templatetags.portal import metric, percent

    with translation.override("fr"):
        assert metric(float("nan")) == metric(None) != "nan"
        assert percent(float("nan")) == "" and percent(float("inf")) == ""
        assert metric(0.5) == "0,500"


# --- The risk summary -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("probabilities", "turned_back"),
    [
        ([MELANOMA], {}),
        ([UNCERTAIN], {}),
        ([BENIGN], {}),
        ([MELANOMA, MELANOMA, None], {}),
        ([BENIGN, UNCERTAIN, None], {3: "too_dark"}),
        ([None, None], {1: "not_skin"}),
        ([None], {}),
        ([{**BENIGN, "nv": 0.995, "bkl": 0.0}], {}),
        ([{**BENIGN, "mel": 0.005, "nv": 0.935}], {}),
    ],
)
def test_the_summary_rendered_in_english_is_the_stored_text(probabilities, turned_back):
    assessment = _assessment(probabilities, turned_back)
    with translation.override("en-gb"):
        assert render_facts(assessment.facts) == assessment.summary


def test_a_case_summary_renders_from_its_facts_in_each_language(staff, patient):
    case = _scored_case(patient, staff)
    rendered = {}
    for language in ("en-gb", "fr", "pt"):
        with translation.override(language):
            rendered[language] = case_summary(case)
    assert rendered["en-gb"] == case.summary
    assert rendered["en-gb"].startswith("High risk: melanoma probability 62%")
    assert rendered["fr"].startswith("Risque élevé : probabilité de mélanome 62 % (seuil d'orientation 30 %)")
    assert rendered["pt"].startswith(
        "Risco alto: probabilidade de melanoma 62% (limiar de encaminhamento 30%). O caso é encaminhado"
    )
    assert "test-model-v2" in rendered["fr"] and "pas un diagnostic" in rendered["fr"]


def test_a_case_without_facts_shows_its_stored_text(staff, patient):
    case = CaseFactory(patient=patient, submitted_by=staff, summary="Low risk: written before facts were kept.")
    with translation.override("fr"):
        assert case_summary(case) == "Low risk: written before facts were kept."


@pytest.mark.parametrize(
    "facts",
    [
        ["high"],
        [None],
        [{"code": "high", "params": {"classes": ["mel"]}}],
        [{"code": "turned_back", "params": "blurred"}],
    ],
)
def test_facts_of_another_shape_show_the_stored_text_not_an_error(client, staff, patient, facts):
    case = _scored_case(patient, staff)
    Case.objects.filter(pk=case.pk).update(summary_facts=facts)
    case.refresh_from_db()
    with translation.override("fr"):
        assert case_summary(case) == case.summary
    response = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "fr")
    assert response.status_code == 200


def test_the_case_page_and_the_api_give_the_summary_in_the_readers_language(client, client_for, staff, patient):
    case = _scored_case(patient, staff)
    page = _page(client, reverse("web:case-detail", args=[case.pk]), staff, "pt").content.decode()
    assert "Risco alto: probabilidade de melanoma 62%" in page
    body = client_for(staff).get(f"/api/v1/cases/{case.pk}/").json()
    assert body["summary"] == case.summary  # the English text stays for API clients
    assert body["summary_text"].startswith("Risco alto:")
    assert body["summary_facts"][0]["code"] == "high"


def test_the_models_referral_reason_is_shown_in_the_readers_language(staff, patient):
    from diagnosis.templatetags.portal import referral_reason

    case = _scored_case(patient, staff, status=Case.Status.REFERRED)

    class Referral:
        source = "model"
        reason = case.summary.split(". ")[0] + "."

    Referral.case = case
    with translation.override("fr"):
        assert referral_reason(Referral()).startswith("Risque élevé : probabilité de mélanome 62 %")
    Referral.source = "clinic"
    with translation.override("fr"):
        assert referral_reason(Referral()) == Referral.reason


def test_a_failed_photos_stored_reason_is_translated(staff, patient):
    from diagnosis.summary import stored_reason

    with translation.override("pt"):
        assert stored_reason(PHOTO_UNREADABLE) == "Esta fotografia não pôde ser lida como imagem."
        text = "The photo could not be analysed after 3 attempts. Use “Analyse again” to retry."
        assert stored_reason(text).startswith("A fotografia não pôde ser analisada após 3 tentativas.")
        assert stored_reason("Something no catalogue knows.") == "Something no catalogue knows."


# --- The catalogues ---------------------------------------------------------------------------
def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalogue_entry_is_translated_with_the_same_placeholders(language):
    entries = catalogue(language)
    assert len(entries) > 400
    problems = []
    for entry in entries:
        if not entry.translated or entry.fuzzy:
            problems.append(f"untranslated or fuzzy: {entry.msgid!r}")
            continue
        for index, text in enumerate(entry.msgstr):
            source = entry.msgid if (index == 0 or not entry.msgid_plural) else entry.msgid_plural
            # a singular form may leave the number out ("one photo"); every other placeholder stays
            expected = _placeholders(source) | (_placeholders(entry.msgid_plural) if entry.msgid_plural else set())
            if not _placeholders(text) <= expected or not (_placeholders(source) - {"%(count)s"}) <= _placeholders(
                text
            ):
                problems.append(f"placeholders differ: {entry.msgid!r} -> {text!r}")
    assert problems == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_the_po_file(language):
    compiled = trans_real.translation(language)._catalog
    stale = []
    for entry in catalogue(language):
        key = f"{entry.context}\x04{entry.msgid}" if entry.context else entry.msgid
        if entry.msgid_plural:
            got = [compiled.get((key, n)) for n in range(len(entry.msgstr))]
        else:
            got = [compiled.get(key)]
        if got != entry.msgstr:
            stale.append(entry.msgid)
    assert stale == []


def test_the_html_in_translations_is_the_same_markup():
    for language in LANGUAGES:
        for entry in catalogue(language):
            tags = sorted(re.findall(r"<[^>]+>", entry.msgid))
            for text in entry.msgstr:
                assert sorted(re.findall(r"<[^>]+>", text)) == tags, (language, entry.msgid)


def test_a_photo_added_in_french_keeps_the_page_in_french(client, staff, patient):
    """The retake form on a case whose photo was turned back: the message after adding it."""
    case = CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.FAILED)
    LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.FAILED)
    upload = ContentFile(image_bytes(), name="retake.jpg")
    response = _page(
        client,
        reverse("web:case-photos-add", args=[case.pk]),
        staff,
        "fr",
        "post",
        {"images": upload, "image_kinds": "dermoscopic"},
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "La nouvelle photo est ajoutée et en file d&#x27;attente pour l&#x27;analyse." in page


def test_report_figures_follow_the_language():
    from diagnosis.templatetags.portal import metric, percent

    with translation.override("en-gb"):
        assert (metric(12345), metric(0.66999), percent(0.1234)) == ("12,345", "0.670", "12.3 %")
    with translation.override("fr"):
        assert (metric(0.66999), percent(0.1234), percent(0.00001)) == ("0,670", "12,3 %", "< 0,1 %")
    with translation.override("pt"):
        assert (metric(12345), metric(None)) == ("12.345", "n. d.")
