from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and audit"

    def ready(self) -> None:
        # Registers the production system checks, the authentication audit and token revocation.
        from . import checks, signals  # noqa: F401
