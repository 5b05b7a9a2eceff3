"""The model in the field: the figures from the specialists' answers, their page and API, the alerts.

Synthetic answers with a known sensitivity and an audit of half the cases the model did not
refer: the estimate's interval holds the true value; an empty history reads "not enough answers
yet", never 0%.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from analysis.safety_net import audit_draw
from diagnosis.models import Case, LesionImage
from monitoring import alerts, figures
from monitoring.models import FieldAlert
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory
from triage.models import Notification, Referral, Review

VERSION = "field-test-v1"
PAGE = "/model/field/"
ZERO_PERCENT = re.compile(r"(?<![\d,.])0(\.0)? ?%")
API = "/api/v1/triage/model-performance/"


def answered(
    clinic,
    reviewer,
    *,
    referred: bool,
    diagnosis: str,
    source: str | None = None,
    sample_rate: float | None = None,
    top_class: str = "nv",
    kind: str = LesionImage.Kind.DERMOSCOPIC,
    skin_type: str = "III",
    version: str = VERSION,
) -> Case:
    """A case the model scored, referred (by the model, or drawn for the audit), and answered."""
    now = timezone.now()
    patient = PatientFactory(clinic=clinic, skin_type=skin_type)
    case = CaseFactory(
        patient=patient,
        status=Case.Status.REVIEWED,
        risk="high" if referred else "low",
        referred_at=now,
        analysed_at=now,
    )
    image = LesionImageFactory(case=case, kind=kind, analysis_status=LesionImage.AnalysisStatus.DONE)
    PredictionFactory(image=image, model_version=version, top_class=top_class)
    source = source or (Referral.Source.MODEL if referred else Referral.Source.AUDIT)
    referral = Referral.objects.create(
        case=case,
        clinic=clinic,
        source=source,
        urgency="routine",
        referred_at=now,
        due_at=now + timedelta(days=3),
        status=Referral.Status.REVIEWED,
        reviewed_at=now,
        sample_rate=sample_rate if source == Referral.Source.AUDIT else None,
    )
    Review.objects.create(
        referral=referral,
        reviewer=reviewer,
        diagnosis=diagnosis,
        agrees_with_model=diagnosis == top_class,
        model_top_class=top_class,
        model_version=version,
        outcome=Review.Outcome.DISCHARGE,
        message="Seen.",
    )
    return case


# --- The arithmetic -----------------------------------------------------------------------------
def test_the_interval_holds_a_known_sensitivity_with_half_the_misses_audited():
    """1,000 malignant lesions, 85% referred; the misses are seen only through a 50% audit."""
    rng = random.Random(17)
    answers = []
    for case_id in range(1, 1001):
        referred = rng.random() < 0.85
        if referred:
            answers.append(figures.Answer(VERSION, True, True, True, 1.0))
        elif audit_draw(case_id) < 0.5:
            answers.append(figures.Answer(VERSION, False, True, False, 2.0, audited=True))
    true_sensitivity = 0.85

    estimate = figures.sensitivity(answers)

    assert estimate.enough and estimate.low <= true_sensitivity <= estimate.high
    assert estimate.high - estimate.low < 0.08  # an interval that says something
    # A naive share of the answers would overstate it: the audited misses count twice.
    naive = sum(a.referred for a in answers) / len(answers)
    assert naive > estimate.high


def test_the_interval_covers_the_true_sensitivity_in_most_simulated_audits():
    rng = random.Random(5)
    true_sensitivity, rate, covered = 0.9, 0.5, 0
    for _ in range(300):
        answers = []
        for _case in range(120):
            if rng.random() < true_sensitivity:
                answers.append(figures.Answer(VERSION, True, True, None, 1.0))
            elif rng.random() < rate:
                answers.append(figures.Answer(VERSION, False, True, None, 1 / rate, audited=True))
        estimate = figures.sensitivity(answers)
        covered += estimate.low <= true_sensitivity <= estimate.high
    assert covered / 300 >= 0.92


def test_no_audited_miss_at_a_low_audit_rate_does_not_read_as_certainty():
    referred = [figures.Answer(VERSION, True, True, None, 1.0) for _ in range(100)]
    benign_audited = [figures.Answer(VERSION, False, False, None, 20.0, audited=True) for _ in range(10)]

    estimate = figures.sensitivity(referred + benign_audited)

    assert estimate.value == 1.0 and estimate.low < 0.7  # 20 misses per audited one could hide here


def test_too_few_answers_read_not_enough_not_zero():
    estimate = figures.sensitivity([figures.Answer(VERSION, False, True, None, 1.0)] * 3)

    assert estimate.value is None and not estimate.enough and estimate.answers == 3


# --- The page and the API -----------------------------------------------------------------------
def test_an_empty_history_reads_not_enough_answers_yet(db, admin_user, client_for, web_client):
    body = client_for(admin_user).get(API).json()
    page = web_client(admin_user).get(PAGE)

    assert body["versions"] == [] and body["min_answers"] == figures.MIN_ANSWERS
    assert page.status_code == 200
    html = page.content.decode()
    assert "Not enough answers yet" in html and not ZERO_PERCENT.search(html)


def test_few_answers_read_not_enough_answers_yet_not_zero_percent(
    clinic_a, specialist, admin_user, client_for, web_client
):
    for _ in range(3):
        answered(clinic_a, specialist, referred=False, diagnosis="mel", sample_rate=0.5)

    body = client_for(admin_user).get(API).json()
    html = web_client(admin_user).get(PAGE).content.decode()

    sensitivity = body["versions"][0]["overall"]["sensitivity"]
    assert sensitivity == {"value": None, "low": None, "high": None, "answers": 3, "weighted": 6.0, "enough": False}
    figures_part = html.split("<table")[1].split("</table>")[0]  # the version's figures
    assert "not enough answers yet" in html and not ZERO_PERCENT.search(figures_part)


def test_the_api_estimates_a_known_sensitivity_from_answers_with_an_audit_rate_of_half(
    clinic_a, specialist, admin_user, client_for
):
    """40 malignant lesions, 34 referred (0.85); of the 6 missed, those the audit drew are answered."""
    true_sensitivity = 34 / 40
    for _ in range(34):
        answered(clinic_a, specialist, referred=True, diagnosis="bcc", top_class="bcc")
    drawn = 0
    for _ in range(6):
        case = CaseFactory(patient=PatientFactory(clinic=clinic_a), status=Case.Status.ANALYSED, risk="low")
        if audit_draw(case.pk) < 0.5:
            answered(clinic_a, specialist, referred=False, diagnosis="mel", sample_rate=0.5)
            drawn += 1
    for _ in range(20):
        answered(clinic_a, specialist, referred=False, diagnosis="nv", sample_rate=0.5)

    body = client_for(admin_user).get(API).json()

    overall = body["versions"][0]["overall"]
    sensitivity = overall["sensitivity"]
    assert overall["malignant_answers"] == 34 + drawn and overall["audited_answers"] == 20 + drawn
    assert sensitivity["enough"] and sensitivity["value"] == pytest.approx(34 / (34 + 2 * drawn), abs=1e-4)
    assert sensitivity["low"] <= true_sensitivity <= sensitivity["high"]
    assert overall["specificity"]["value"] == 1.0 and overall["specificity"]["weighted"] == 40.0
    assert body["versions"][0]["audit_rate"] == 0.5
    kinds = {row["group"]: row for row in body["versions"][0]["by_photo_kind"]}
    assert set(kinds) == {"dermoscopic"}
    assert {row["group"] for row in body["versions"][0]["by_skin_type"]} == {"III"}


def test_breakdowns_by_photo_kind_skin_type_and_clinic(clinic_a, clinic_b, specialist, admin_user, client_for):
    answered(clinic_a, specialist, referred=True, diagnosis="mel", kind="close_up", skin_type="V")
    answered(clinic_b, specialist, referred=True, diagnosis="mel", skin_type="")

    version = client_for(admin_user).get(API).json()["versions"][0]

    assert {row["group"] for row in version["by_photo_kind"]} == {"dermoscopic", "not_dermoscopic"}
    assert {row["group"] for row in version["by_skin_type"]} == {"V", "unknown"}
    assert {row["label"] for row in version["by_clinic"]} == {"Clinic A", "Clinic B"}


def test_the_weekly_turned_back_share_by_reason(clinic_a, admin_user, client_for):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a))
    for gate in ["ok"] * 7 + ["blurred", "blurred", "not_skin"]:
        PredictionFactory(image=LesionImageFactory(case=case), model_version=VERSION, gate=gate)

    (week,) = client_for(admin_user).get(API).json()["turned_back"][0]["weeks"]

    assert week["photos"] == 10 and week["turned_back"] == 3 and week["share"] == pytest.approx(0.3)
    assert week["by_reason"]["blurred"] == 2 and week["by_reason"]["not_skin"] == 1


def test_the_page_draws_its_charts_as_inline_svg(clinic_a, specialist, admin_user, web_client):
    for _ in range(12):
        answered(clinic_a, specialist, referred=True, diagnosis="mel")

    html = web_client(admin_user).get(PAGE).content.decode()

    main = html.split("<main")[1].split("</main>")[0]
    assert "<svg" in main and 'role="img"' in main and "<script" not in main and "style=" not in main
    assert "Model field-test-v1" in html and "Sensitivity" in html


# --- Who sees it --------------------------------------------------------------------------------
def test_clinic_staff_never_see_the_field_page_or_its_api(db, staff, client_for, web_client):
    assert web_client(staff).get(PAGE).status_code == 403
    assert client_for(staff).get(API).status_code == 403
    assert client_for(None).get(API).status_code == 401


def test_a_specialist_sees_only_the_clinics_they_serve(clinic_a, clinic_b, specialist, specialist_b, client_for):
    answered(clinic_a, specialist, referred=True, diagnosis="mel")
    answered(clinic_b, specialist_b, referred=True, diagnosis="mel")
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a))
    PredictionFactory(image=LesionImageFactory(case=case), model_version=VERSION, gate="blurred")

    serving_b = client_for(specialist_b).get(API).json()
    serving_both = client_for(specialist).get(API).json()

    assert [row["label"] for row in serving_b["versions"][0]["by_clinic"]] == ["Clinic B"]
    assert serving_b["versions"][0]["overall"]["answers"] == 1
    assert sum(week["turned_back"] for week in serving_b["turned_back"][0]["weeks"]) == 0
    assert {row["label"] for row in serving_both["versions"][0]["by_clinic"]} == {"Clinic A", "Clinic B"}
    assert sum(week["turned_back"] for week in serving_both["turned_back"][0]["weeks"]) == 1


# --- Alerts -------------------------------------------------------------------------------------
def _malignant_answers(clinic, reviewer, *, referred: int, missed_audited: int, rate: float = 0.5) -> None:
    for _ in range(referred):
        answered(clinic, reviewer, referred=True, diagnosis="mel", top_class="mel")
    for _ in range(missed_audited):
        answered(clinic, reviewer, referred=False, diagnosis="bcc", sample_rate=rate)


def test_the_sensitivity_alert_fires_at_thirty_malignant_answers_once_only(clinic_a, specialist, admin_user, staff):
    _malignant_answers(clinic_a, specialist, referred=26, missed_audited=4)  # 26 / 34: low end well under 0.90

    assert alerts.field_alerts_send() == 1
    assert alerts.field_alerts_send() == 0  # the same week: told once

    (notification,) = Notification.objects.filter(kind=Notification.Kind.FIELD_SENSITIVITY_LOW)
    assert notification.recipient == admin_user and notification.url == PAGE
    assert "may be missing cancers" in notification.display_title
    assert not Notification.objects.filter(recipient__in=[staff, specialist], kind__startswith="field_").exists()
    from django.core import mail

    from triage.notifications import notification_email_send

    assert notification_email_send(notification_id=notification.pk)
    (email,) = mail.outbox
    assert email.to == [admin_user.email] and "may be missing cancers" in email.subject
    assert "/model/field/" in email.body
    alert = FieldAlert.objects.get()
    assert alert.kind == "sensitivity_low" and alert.key.startswith(f"{VERSION}:") and alert.details["count"] == 30


def test_the_sensitivity_alert_waits_for_thirty_malignant_answers(clinic_a, specialist, admin_user):
    _malignant_answers(clinic_a, specialist, referred=25, missed_audited=4)  # 29 malignant answers

    assert alerts.field_alerts_send() == 0
    assert not FieldAlert.objects.exists()


def test_no_sensitivity_alert_when_the_lower_end_is_above_the_level(clinic_a, specialist, admin_user):
    _malignant_answers(clinic_a, specialist, referred=200, missed_audited=0, rate=1.0)

    assert alerts.field_alerts_send() == 0


def test_the_turned_back_alert_fires_when_a_week_passes_ten_percent_once_only(clinic_a, admin_user):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a))
    for gate in ["ok"] * 17 + ["too_dark"] * 3:  # 15% of 20
        PredictionFactory(image=LesionImageFactory(case=case), model_version=VERSION, gate=gate)

    assert alerts.field_alerts_send() == 1
    assert alerts.field_alerts_send() == 0

    (notification,) = Notification.objects.filter(kind=Notification.Kind.FIELD_TURNED_BACK_HIGH)
    assert notification.recipient == admin_user and "turned back" in notification.display_title


@pytest.mark.parametrize("gates", [["ok"] * 18 + ["blurred"] * 2, ["ok"] * 15 + ["blurred"] * 4])
def test_no_turned_back_alert_at_ten_percent_or_below_twenty_photos(clinic_a, admin_user, gates):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a))
    for gate in gates:
        PredictionFactory(image=LesionImageFactory(case=case), model_version=VERSION, gate=gate)

    assert alerts.field_alerts_send() == 0


def test_the_alert_task_is_thin_and_calls_the_service(clinic_a, specialist, admin_user):
    from monitoring.tasks import field_alerts

    _malignant_answers(clinic_a, specialist, referred=26, missed_audited=4)

    assert field_alerts.run() == 1
