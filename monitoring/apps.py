from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """The model watched in the field: figures from the specialists' answers, and alerts."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"
    verbose_name = "The model in the field"
