"""Cases referred before referrals had rows of their own get one, so they reach the queue."""

from datetime import timedelta

from django.db import migrations

ROUTINE_HOURS = 72
URGENT_HOURS = 24


def add_referrals(apps, schema_editor):
    Case = apps.get_model("diagnosis", "Case")
    Referral = apps.get_model("triage", "Referral")
    referred = Case.objects.filter(referred_at__isnull=False, referral__isnull=True).select_related("patient")
    for case in referred.iterator():
        urgent = case.risk == "high"
        Referral.objects.create(
            case=case,
            clinic_id=case.patient.clinic_id,
            source="model",
            urgency="urgent" if urgent else "routine",
            reason="Referred by the model's result.",
            referred_at=case.referred_at,
            due_at=case.referred_at + timedelta(hours=URGENT_HOURS if urgent else ROUTINE_HOURS),
            status="reviewed" if case.status in ("reviewed", "closed") else "open",
        )
    # Nobody holds these: a case "under review" without a claim goes back to the queue.
    Case.objects.filter(status="under_review").update(status="referred")


class Migration(migrations.Migration):
    dependencies = [
        ("triage", "0001_initial"),
        ("diagnosis", "0002_case_checklist_items_and_information_requested"),
    ]

    operations = [migrations.RunPython(add_referrals, migrations.RunPython.noop)]
