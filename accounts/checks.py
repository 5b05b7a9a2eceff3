"""Production guard rails: demo accounts must never exist in a production database."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

DEMO_USERNAME_PREFIX = "demo-"


def demo_usernames() -> list[str]:
    """Usernames of demo accounts (seed_demo), or [] when the table does not exist yet."""
    from .models import User

    try:
        return list(
            User.objects.filter(username__startswith=DEMO_USERNAME_PREFIX).values_list("username", flat=True)[:10]
        )
    except DatabaseError:  # before the first migrate
        return []


def refuse_demo_users() -> None:
    """Raise ImproperlyConfigured when production settings meet demo accounts."""
    if not getattr(settings, "SKINPORTAL_REFUSE_DEMO_USERS", False):
        return
    found = demo_usernames()
    if found:
        raise ImproperlyConfigured(
            f"Demo accounts exist in a production database ({', '.join(found)}); delete them before starting."
        )


@checks.register("skinportal", checks.Tags.security)
def check_no_demo_users(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    try:
        refuse_demo_users()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="skinportal.E001")]
    return []
