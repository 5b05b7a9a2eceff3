from django.apps import AppConfig


class TriageConfig(AppConfig):
    """The specialist's side of a referral: queue, claim, review, information requests, notifications."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "triage"
    verbose_name = "Referrals and reviews"

    def ready(self) -> None:
        from . import hooks

        hooks.connect()
