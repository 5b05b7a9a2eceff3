from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and audit"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the production system checks)
