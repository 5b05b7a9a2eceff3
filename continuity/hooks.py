"""How continuity hears from diagnosis and triage (neither imports it) and adds to their pages."""

from __future__ import annotations


def connect() -> None:
    from diagnosis import extensions
    from diagnosis.signals import case_submitted
    from triage.signals import review_submitted

    from . import panels, services

    def on_review_submitted(sender, *, review, actor=None, request=None, **kwargs):
        services.follow_up_from_review(review=review, actor=actor, request=request)

    def on_case_submitted(sender, *, case, actor=None, new_lesion=False, **kwargs):
        if not new_lesion:  # a lesion this case has just started has no follow-up to complete
            services.follow_up_complete(case=case, actor=actor)

    review_submitted.connect(on_review_submitted, dispatch_uid="continuity.follow_up_from_review", weak=False)
    case_submitted.connect(on_case_submitted, dispatch_uid="continuity.follow_up_complete", weak=False)
    extensions.case_page_panel_register(panels.case_continuity_panel)
    extensions.dashboard_panel_register(panels.dashboard_follow_ups_panel)
    extensions.patient_page_panel_register(panels.patient_lesions_panel)
