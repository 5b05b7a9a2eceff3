from django.apps import AppConfig


class ContinuityConfig(AppConfig):
    """Continuity of care: a lesion over visits, follow-ups that come due, the referral letter, FHIR export."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "continuity"
    verbose_name = "Continuity of care"

    def ready(self) -> None:
        from . import hooks

        hooks.connect()
