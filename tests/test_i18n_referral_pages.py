"""The referral workflow, continuity of care, the UV card and the model page read wholly in
French and in Portuguese; notifications and their emails are written in each reader's language."""

from __future__ import annotations

import datetime
import re

import pytest
from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone, translation

from accounts.language import for_user
from clinics.uv import clinic_uv
from continuity import services as continuity_services
from continuity.models import FollowUp
from continuity.panels import dashboard_follow_ups_panel, patient_lesions_panel
from diagnosis import dispatch
from diagnosis.models import Case, Lesion, LesionImage
from inference.artifact import ARTIFACTS_DIR
from inference.preprocessing import CLASS_NAMES, CLASSES
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, referral_row
from tests.i18n import LANGUAGES, catalogue, untranslated
from tests.test_web_pages import model_artifact  # noqa: F401 (a fixture)
from triage import services
from triage.models import Notification, Referral, Review, class_name
from triage.notifications import notification_email_send
from triage.panels import case_referral_panel

pytestmark = pytest.mark.django_db

NAIROBI = (-1.2921, 36.8219)
REASON = "Bleeds when touched and grew this month."
MESSAGE = "Looks like a benign naevus; photograph it again in six months."
QUESTION = "Has it itched or bled?"
ANSWER = "It bled twice last week."


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Cases and emails go to nobody: no broker here (emails are sent by calling the task's service)."""
    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: None)

    class NoApp:
        def send_task(self, *args, **kwargs):
            return None

    monkeypatch.setattr("triage.notifications.current_app", NoApp())


@pytest.fixture(autouse=True)
def site_language():
    """Each test starts and ends in the site's language (a request leaves its language active)."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _main(html: str) -> str:
    """The page's own content, without the header and footer every page shares."""
    return html.split('<main id="main"', 1)[1].split(">", 1)[1].split("</main>", 1)[0]


def _get(client, url: str, language: str) -> str:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code in (200, 400), (url, response.status_code)
    assert response["Content-Language"] == language
    return response.content.decode()


# A date as the pages write it ("1 Jun 2027", "28 Nov 2026, 14:05"): some abbreviations are
# spelled the same in English, French and Portuguese.
DATE = re.compile(r"^\d{1,2} \w{3,5}\.?( \d{4})?(, \d{2}:\d{2})?$")
# Words these pages use that French or Portuguese spell as English does.
SPELLED_THE_SAME = {"fr": ["Photo", "pixels"], "pt": []}


def assert_reads_in_every_language(render, data=()):
    """``render(language)`` gives the HTML in that language; nothing English is left in fr or pt."""
    english = render("en-gb")
    for language in LANGUAGES:
        other = render(language)
        assert other != english, language
        allowed = [*data, *SPELLED_THE_SAME[language]]
        left = [piece for piece in untranslated(english, other, language, data=allowed) if not DATE.match(piece)]
        assert left == [], (language, left)


def assert_page_reads_in_every_language(client, url, data=()):
    assert_reads_in_every_language(lambda language: _main(_get(client, url, language)), data)


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff, identifier="MZ-0042", full_name="Lena Sommer")


def _analysed_case(patient, staff, *, label="mole on the back", lesion=None, created_at=None) -> Case:
    lesion = lesion or Lesion.objects.create(
        patient=patient, body_site=Case.BodySite.BACK, label=label, created_by=staff
    )
    case = CaseFactory(patient=patient, submitted_by=staff, lesion=lesion, status=Case.Status.ANALYSED)
    for kind in (LesionImage.Kind.OVERVIEW, LesionImage.Kind.CLOSE_UP):
        image = LesionImageFactory(case=case, kind=kind, analysis_status=LesionImage.AnalysisStatus.DONE)
        PredictionFactory(image=image, model_version="test-model-1", with_heatmap=True)
    Case.objects.filter(pk=case.pk).update(risk=Case.Risk.LOW, analysed_at=timezone.now())
    if created_at is not None:
        Case.objects.filter(pk=case.pk).update(created_at=created_at)
    return Case.objects.get(pk=case.pk)


@pytest.fixture
def world(patient, staff, specialist, clinic_a):
    """Three referrals: one waiting, one held by the specialist, one answered (monitor) with a follow-up."""
    waiting = _analysed_case(patient, staff, label="mole on the left arm")
    services.referral_create(actor=staff, case=waiting, urgency="urgent", reason=REASON)
    held = _analysed_case(patient, staff, label="spot on the neck")
    held_referral = services.referral_create(actor=staff, case=held, urgency="routine", reason=REASON)
    services.referral_claim(actor=specialist, referral=held_referral)
    first = _analysed_case(patient, staff, created_at=timezone.now() - datetime.timedelta(days=200))
    answered = services.referral_create(actor=staff, case=first, urgency="routine", reason=REASON)
    services.referral_claim(actor=specialist, referral=answered)
    services.information_request(actor=specialist, referral=answered, message=QUESTION)
    services.information_answer(actor=staff, case=first, message=ANSWER)
    services.referral_claim(actor=specialist, referral=answered)
    services.review_submit(
        actor=specialist,
        referral=answered,
        diagnosis="nv",
        agrees_with_model=True,
        outcome="monitor",
        follow_up_months=6,
        message=MESSAGE,
        private_note="Seen before.",
    )
    second = _analysed_case(patient, staff, lesion=first.lesion)
    FollowUp.objects.filter(lesion=first.lesion).update(due_on=timezone.localdate() - datetime.timedelta(days=3))
    return {
        "waiting": Referral.objects.get(case=waiting),
        "held": Referral.objects.get(case=held),
        "answered": Referral.objects.get(case=first),
        "first": first,
        "second": second,
        "lesion": first.lesion,
    }


def _data(patient, *users, extra=()):
    return [
        patient.identifier,
        patient.full_name,
        patient.clinic.name,
        REASON,
        MESSAGE,
        QUESTION,
        ANSWER,
        "Seen before.",
        "test-model-1",
        *(user.display_name for user in users),
        *(lesion.label for lesion in Lesion.objects.all()),
        *extra,
    ]


# --- The specialist's pages -------------------------------------------------------------------
def test_the_referral_queue_reads_in_every_language(client, specialist, patient, staff, world):
    client.force_login(specialist)
    assert_page_reads_in_every_language(client, "/referrals/", _data(patient, staff, specialist))
    assert_page_reads_in_every_language(client, "/referrals/?status=all", _data(patient, staff, specialist))


def test_the_review_page_with_its_form_and_errors_reads_in_every_language(client, specialist, patient, staff, world):
    client.force_login(specialist)
    referral = world["held"]
    # The photos' probability bars are the case result's (diagnosis.views.result_context).
    data = _data(patient, staff, specialist, extra=CLASS_NAMES.values())
    assert_page_reads_in_every_language(client, f"/referrals/{referral.pk}/", data)

    def after_a_bad_answer(language):
        response = client.post(
            f"/referrals/{referral.pk}/review/",
            {"diagnosis": "other", "outcome": "monitor"},
            HTTP_ACCEPT_LANGUAGE=language,
        )
        assert response.status_code == 400
        return _main(response.content.decode())

    assert_reads_in_every_language(after_a_bad_answer, data)
    french = after_a_bad_answer("fr")
    assert "Indiquez dans combien de mois la lésion doit être photographiée à nouveau." in french
    assert "Décrivez le diagnostic." in french
    # The answered referral, with its exchange and answers.
    assert_page_reads_in_every_language(client, f"/referrals/{world['answered'].pk}/", data)


def test_audit_and_unreadable_referrals_read_in_every_language(client, specialist, patient, staff, world):
    """The audit sample's mark and note, and the unreadable referral's reason, in the queue and on the review page."""
    from analysis import safety_net

    audited = _analysed_case(patient, staff, label="freckle on the shin")
    Case.objects.filter(pk=audited.pk).update(status=Case.Status.REFERRED, referred_at=timezone.now())
    referral_row(case=audited, source="audit", urgency="routine", reason=safety_net.AUDIT_REASON, sample_rate=0.05)
    unreadable = _analysed_case(patient, staff, label="patch on the scalp")
    Case.objects.filter(pk=unreadable.pk).update(status=Case.Status.REFERRED, referred_at=timezone.now(), risk="")
    referral_row(case=unreadable, source="unreadable", urgency="routine", reason=safety_net.UNREADABLE_REASON)
    client.force_login(specialist)
    data = _data(patient, staff, specialist, extra=CLASS_NAMES.values())
    assert_page_reads_in_every_language(client, "/referrals/", data)
    for case in (audited, unreadable):
        assert_page_reads_in_every_language(client, f"/referrals/{Referral.objects.get(case=case).pk}/", data)
    french = _main(_get(client, f"/referrals/{Referral.objects.get(case=audited).pk}/", "fr"))
    assert "Échantillon d’audit" in french and "tiré pour l’échantillon d’audit" in french


def test_the_workflows_messages_are_in_the_users_language(client, specialist, world):
    specialist.language = "pt"
    specialist.save()
    client.force_login(specialist)
    released = client.post(f"/referrals/{world['held'].pk}/release/", follow=True)
    assert "A referenciação voltou à fila." in released.content.decode()
    refused = client.post(f"/referrals/{world['answered'].pk}/release/", follow=True)
    assert "Esta referenciação não está consigo." in refused.content.decode()


def test_the_service_measures_read_in_every_language(client, specialist, patient, staff, world):
    answered = world["answered"]
    Referral.objects.filter(pk=answered.pk).update(referred_at=answered.reviewed_at - datetime.timedelta(minutes=90))
    client.force_login(specialist)
    assert_page_reads_in_every_language(client, "/service/", _data(patient, staff, specialist))
    assert "<strong>1.5 h</strong>" in _get(client, "/service/", "en-gb")
    assert "<strong>1,5 h</strong>" in _get(client, "/service/", "fr")  # numbers written the reader's way


# --- The clinic's side ------------------------------------------------------------------------
def _panel(user, case, language, panel=case_referral_panel):
    request = RequestFactory().get(f"/cases/{case.pk}/")
    request.user = user
    with translation.override(language):
        return panel(request, case)


def test_the_clinics_referral_panel_reads_in_every_language(staff, specialist, patient, world):
    data = _data(patient, staff, specialist)
    answered = world["first"]
    for case in (answered, world["waiting"].case, world["second"]):
        assert_reads_in_every_language(lambda language, case=case: _panel(staff, case, language), data)
    assert_reads_in_every_language(lambda language: _panel(specialist, answered, language), data)
    assert "Photographiez à nouveau la lésion" in _panel(staff, answered, "fr")
    assert "(6 meses)" in _panel(staff, answered, "pt")


def test_a_question_waiting_for_the_clinic_reads_in_every_language(staff, specialist, patient, world):
    services.referral_claim(actor=specialist, referral=world["waiting"])
    services.information_request(actor=specialist, referral=world["waiting"], message=QUESTION)
    case = world["waiting"].case
    assert_reads_in_every_language(lambda language: _panel(staff, case, language), _data(patient, staff, specialist))


# --- Notifications ----------------------------------------------------------------------------
def test_the_notifications_page_reads_in_every_language(client, staff, specialist, patient, world):
    assert {n.kind for n in specialist.notifications.all()} >= {"referral_new", "referral_returned"}
    client.force_login(specialist)
    assert_page_reads_in_every_language(client, "/notifications/", _data(patient, staff, specialist))

    continuity_services.follow_ups_due_notify()
    assert {n.kind for n in staff.notifications.all()} == {"review", "information_requested", "follow_up_due"}
    client.force_login(staff)
    assert_page_reads_in_every_language(client, "/notifications/", _data(patient, staff, specialist))


def test_one_notification_reads_in_each_readers_language(staff, specialist, world):
    row = specialist.notifications.filter(kind="referral_new", case=world["waiting"].case).get()
    with translation.override("fr"):
        french = row.texts()
    with translation.override("pt"):
        portuguese = row.texts()
    case = world["waiting"].case_id
    assert french == (
        f"Nouvelle orientation urgente (suspicion de cancer) : dossier {case}",
        f"Clinic A a adressé le dossier {case} (la clinique).",
    )
    assert portuguese[0] == f"Nova referenciação urgente (suspeita de cancro): caso {case}"
    assert row.title == f"New urgent referral (suspected cancer): case {case}"  # the site's language, stored

    returned = specialist.notifications.get(kind="referral_returned")
    with translation.override("pt"):
        assert returned.display_body == "Clinic A enviou mais informações."


def test_the_notifications_api_answers_in_the_users_language(client_for, specialist, world):
    specialist.language = "fr"
    specialist.save()
    rows = client_for(specialist).get("/api/v1/notifications/").json()["results"]
    assert rows and all(row["title"].startswith(("Nouvelle orientation", "Dossier ")) for row in rows)


def test_a_notification_made_before_its_facts_were_kept_shows_its_stored_text(client, staff, world):
    old = Notification.objects.create(
        recipient=staff, kind="review", case=world["first"], title="Case 1: the specialist's answer", body="Outcome: x."
    )
    staff.language = "fr"
    staff.save()
    with translation.override("fr"):
        assert old.texts() == ("Case 1: the specialist's answer", "Outcome: x.")
    client.force_login(staff)
    assert "Case 1: the specialist&#x27;s answer" in client.get("/notifications/").content.decode()
    broken = Notification.objects.create(
        recipient=staff, kind="follow_up_due", title="Stored title", params={"lesion": 3, "due_on": "not a date"}
    )
    assert broken.texts() == ("Stored title", "")
    not_an_object = Notification.objects.create(
        recipient=staff, kind="review", title="Stored title", body="Stored body", params=["case", 1]
    )
    assert not_an_object.texts() == ("Stored title", "Stored body")
    assert client.get("/notifications/").status_code == 200


def test_an_email_to_a_french_user_is_in_french(staff, specialist, patient, world, settings):
    settings.SKINPORTAL_PUBLIC_URL = "https://portal.example"
    staff.language = "fr"
    staff.save()
    note = staff.notifications.get(kind="review")
    mail.outbox.clear()

    assert notification_email_send(notification_id=note.pk)

    (email,) = mail.outbox
    case = world["first"].pk
    assert email.subject == f"Skin Portal : Dossier {case} : la réponse du spécialiste"
    assert "Conduite à tenir : Surveillance : la photographier à nouveau plus tard." in email.body
    assert f"Ouvrez-la dans Skin Portal : https://portal.example/cases/{case}/" in email.body
    assert "Outcome" not in email.body and "Open it" not in email.body
    assert patient.full_name not in email.body and patient.identifier not in email.body

    specialist.language = "pt"
    specialist.save()
    mail.outbox.clear()
    assert notification_email_send(notification_id=specialist.notifications.get(kind="referral_returned").pk)
    assert mail.outbox[0].subject == f"Skin Portal: Caso {case}: a clínica respondeu à sua pergunta"

    with for_user(staff):
        assert translation.get_language() == "fr"


def test_an_email_to_a_user_without_a_language_stays_in_english(staff, world):
    mail.outbox.clear()
    assert notification_email_send(notification_id=staff.notifications.get(kind="review").pk)
    assert mail.outbox[0].subject == f"Skin Portal: Case {world['first'].pk}: the specialist's answer"
    assert "Outcome: Monitor: photograph it again later." in mail.outbox[0].body


# --- Continuity of care -----------------------------------------------------------------------
def test_follow_ups_read_in_every_language(client, staff, specialist, patient, world):
    client.force_login(staff)
    assert_page_reads_in_every_language(client, "/follow-ups/", _data(patient, staff, specialist))
    request = RequestFactory().get("/")
    request.user = staff

    def dashboard_panel(language):
        with translation.override(language):
            return dashboard_follow_ups_panel(request)

    assert_reads_in_every_language(dashboard_panel)


def test_the_lesion_pages_read_in_every_language(client, staff, specialist, patient, world):
    client.force_login(staff)
    lesion = world["lesion"]
    data = _data(patient, staff, specialist)
    assert_page_reads_in_every_language(client, f"/lesions/{lesion.pk}/", data)
    assert_page_reads_in_every_language(client, f"/lesions/{lesion.pk}/compare/", data)
    assert_page_reads_in_every_language(client, f"/lesions/{lesion.pk}/compare/?heatmap=1", data)
    french = _get(client, f"/lesions/{lesion.pk}/compare/", "fr")
    assert 'data-show-label="Afficher la carte de chaleur"' in french
    assert 'data-hide-label="Masquer la carte de chaleur"' in french

    def lesions_panel(language):
        request = RequestFactory().get("/")
        request.user = staff
        with translation.override(language):
            return patient_lesions_panel(request, patient)

    assert_reads_in_every_language(lesions_panel, data)


def test_a_change_of_probability_is_written_the_readers_way(client, staff, patient, world):
    lesion = world["lesion"]
    first_image = world["first"].images.first()
    first_image.current_prediction.__class__.objects.filter(image__case=world["first"]).update(
        probabilities={name: (0.105 if name == "mel" else 0.1) for name in CLASSES}
    )
    client.force_login(staff)
    french = _get(client, f"/lesions/{lesion.pk}/", "fr")
    english = _get(client, f"/lesions/{lesion.pk}/", "en-gb")
    assert re.search(r"[+-]\d+\.\d points", english)
    assert re.search(r"[+-]\d+,\d points", french)


def test_the_letter_reads_in_every_language(client, staff, specialist, patient, clinic_a, world):
    clinic_a.latitude, clinic_a.longitude = NAIROBI
    clinic_a.save()
    client.force_login(staff)
    case = world["first"]
    url = reverse("continuity:case-letter", args=[case.pk])
    data = _data(patient, staff, specialist, extra=[clinic_a.address])

    assert_reads_in_every_language(lambda language: _get(client, url, language), data)
    french = _get(client, url, "fr")
    assert '<html lang="fr">' in french
    assert "Protection solaire" in french and "Conseil de l'Organisation mondiale de la santé" in french
    with translation.override("fr"):
        reading = clinic_uv(clinic_a)
    assert reading.advice in french.replace("&#x27;", "'")


def test_the_letter_shows_the_uv_advice_in_english_too(client, staff, clinic_a, world):
    clinic_a.latitude, clinic_a.longitude = NAIROBI
    clinic_a.save()
    client.force_login(staff)
    page = client.get(reverse("continuity:case-letter", args=[world["first"].pk])).content.decode()
    assert "Sun protection" in page and "World Health Organization advice for the patient:" in page
    assert clinic_uv(clinic_a).band_label in page


def test_a_letter_of_a_clinic_without_a_location_has_no_uv_section(client, staff, world):
    client.force_login(staff)
    page = client.get(reverse("continuity:case-letter", args=[world["first"].pk])).content.decode()
    assert "Sun protection" not in page


# --- The UV card and the model page -----------------------------------------------------------
def test_the_uv_card_reads_in_every_language(staff, clinic_a):
    clinic_a.latitude, clinic_a.longitude = NAIROBI
    clinic_a.save()

    def card(language):
        with translation.override(language):
            readings = [(clinic_a, clinic_uv(clinic_a, when=timezone.now().replace(hour=9, minute=0)))]
            return render_to_string("clinics/_uv_card.html", {"uv_readings": readings})

    assert_reads_in_every_language(card, [clinic_a.name])
    french, portuguese = card("fr"), card("pt")
    assert "Indice UV aujourd'hui à Clinic A" in french.replace("&#x27;", "'")
    assert "Estimation pour un ciel dégagé" in french
    assert "Índice UV hoje em Clinic A" in portuguese


def test_the_model_page_reads_in_every_language(client, specialist, model_artifact):  # noqa: F811
    client.force_login(specialist)
    # The written report is shown as its author wrote it.
    report = ["Evaluation of mobilenet_v2", "Evaluated on", "images <script>alert(1)</script>.", "metric", "value"]
    report += ["accuracy", "confusion matrix", "[secret]", "mobilenet_v2"]
    assert_page_reads_in_every_language(
        client,
        reverse("monitoring:model-report"),
        ["mobilenet_v2-20260101-test", *(folder.name for folder in ARTIFACTS_DIR.iterdir()), "test", *report],
    )
    french = _get(client, reverse("monitoring:model-report"), "fr")
    assert "Mélanome" in french and "Le modèle d'analyse" in french


def test_the_model_page_without_a_model_reads_in_every_language(client, staff, settings, tmp_path):
    settings.SKINPORTAL_MODEL_DIR = str(tmp_path / "nothing-here")
    client.force_login(staff)
    assert_page_reads_in_every_language(client, reverse("monitoring:model-report"))


# --- The catalogues ---------------------------------------------------------------------------
def test_the_model_classes_keep_one_name_for_the_model_and_the_specialist():
    assert {code: str(Review.Diagnosis(code).label) for code in CLASSES} == CLASS_NAMES
    with translation.override("fr"):
        assert class_name("mel") == "Mélanome" and class_name("unknown") == "unknown"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_and_none_is_fuzzy(language):
    entries = catalogue(language)
    assert entries
    assert [e.msgid for e in entries if not e.translated or e.fuzzy] == []
    for entry in entries:
        wanted = set(re.findall(r"%\(\w+\)s", entry.msgid + entry.msgid_plural))
        for text in entry.msgstr:
            assert set(re.findall(r"%\(\w+\)s", text)) == wanted, entry.msgid


# --- Referral reasons the portal writes (the model's, the checklist's) ------------------------
def _model_referred_case(patient, staff) -> Case:
    from tests.test_i18n_pages import _scored_case

    case = _scored_case(patient, staff, status=Case.Status.REFERRED)
    referral_row(case=case, source="model", urgency="urgent", reason=case.summary.split(". ")[0] + ".")
    return case


def test_the_letter_gives_the_models_referral_reason_in_the_readers_language(client, staff, patient):
    case = _model_referred_case(patient, staff)
    client.force_login(staff)
    url = reverse("continuity:case-letter", args=[case.pk])

    french = _get(client, url, "fr")
    portuguese = _get(client, url, "pt")

    assert "High risk" not in french and "High risk" not in portuguese
    assert french.count("Risque élevé : probabilité de mélanome 62 %") == 2  # the summary and the reason
    assert portuguese.count("Risco alto: probabilidade de melanoma 62%") == 2


def _checklist_referred_case(staff, patient, language: str) -> Case:
    from diagnosis.services import case_submit
    from tests.factories import image_bytes
    from tests.test_uploads import upload

    with translation.override(language):  # the language of the nurse's request
        return case_submit(
            actor=staff,
            patient=patient,
            body_site="back",
            images=[upload("a.jpg", image_bytes())],
            changed_size=True,
            abcde_colour=True,
            inflammation=True,
        )


def test_a_checklist_referrals_reason_reads_in_each_readers_language(client, staff, specialist, patient):
    case = _checklist_referred_case(staff, patient, "fr")
    referral = Referral.objects.get(case=case)
    assert referral.source == "checklist"
    client.force_login(specialist)
    url = reverse("triage:referral-detail", args=[referral.pk])

    english = _get(client, url, "en-gb")
    portuguese = _get(client, url, "pt")
    french = _get(client, url, "fr")

    assert "Scores 5 of 10: change in size (2), irregular colour (2), inflammation (1)." in english
    assert "changement" not in english
    assert "alteração do tamanho (2), cor irregular (2), inflamação (1)" in portuguese
    assert "changement" not in portuguese and "Scores" not in portuguese
    assert "changement de taille (2), couleur irrégulière (2), inflammation (1)" in french
    assert "Scores" not in french
    assert referral.reason == "Scores 5 of 10: change in size (2), irregular colour (2), inflammation (1)."
