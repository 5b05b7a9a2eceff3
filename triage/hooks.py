"""How ``triage`` hears from ``diagnosis`` (which never imports it) and adds to its responses and pages."""

from __future__ import annotations


def connect() -> None:
    from accounts.signals import clinic_deactivation_checked
    from diagnosis import extensions
    from diagnosis.signals import case_referred, case_result_written, patient_moved

    from . import case_filters, panels, serializers, services, workflow

    def on_case_referred(
        sender, *, case, source, urgency, reason, actor=None, request=None, details=None, sample_rate=None, **kwargs
    ):
        services.referral_create(
            case=case,
            source=source,
            urgency=urgency,
            reason=reason,
            actor=actor,
            request=request,
            sample_rate=sample_rate,
            case_details=details,
        )

    case_referred.connect(on_case_referred, dispatch_uid="triage.referral_create", weak=False)
    extensions.case_status_reader_register(workflow.case_status_shown)

    def on_patient_moved(sender, *, patient, old_clinic, actor=None, request=None, **kwargs):
        services.referrals_follow_patient(patient=patient, old_clinic=old_clinic, actor=actor, request=request)

    patient_moved.connect(on_patient_moved, dispatch_uid="triage.referrals_follow_patient", weak=False)

    def on_case_result_written(sender, *, case, urgent=False, **kwargs):
        if urgent:
            services.referral_urgency_raise_for_result(case=case)

    case_result_written.connect(on_case_result_written, dispatch_uid="triage.referral_urgency_raise", weak=False)

    def on_clinic_deactivation_checked(sender, *, clinic, **kwargs):
        from django.utils.translation import ngettext

        from .models import Referral

        waiting = Referral.objects.filter(clinic=clinic, status__in=workflow.OPEN_STATUSES).count()
        if not waiting:
            return None
        return ngettext(
            "%(count)s referral of this clinic is waiting for a specialist or for the clinic's answer: "
            "it would be stranded. Have it answered first.",
            "%(count)s referrals of this clinic are waiting for a specialist or for the clinic's answer: "
            "they would be stranded. Have them answered first.",
            waiting,
        ) % {"count": waiting}

    clinic_deactivation_checked.connect(
        on_clinic_deactivation_checked, dispatch_uid="triage.clinic_deactivation_checked", weak=False
    )
    extensions.case_output_field_register("referral", serializers.case_referral_field)
    extensions.case_output_field_register("review", serializers.case_review_field)
    extensions.case_page_panel_register(panels.case_referral_panel)
    extensions.case_created_register(case_created_without_referral)
    extensions.case_list_filter_register(
        "urgency", case_filters.case_urgency_filter_field, case_filters.case_urgency_filter
    )
    extensions.case_prefetch_register(
        "referral__claimed_by", "referral__reviews__reviewer", "referral__information_requests"
    )


def case_created_without_referral(case) -> None:
    """A case just created has a referral only if its checklist referred it: say so in memory,
    so the case's response reads no referral from the database."""
    from diagnosis.models import Case

    if case.referred_at is None:
        Case.referral.related.set_cached_value(case, None)
