"""Audit events for authentication, and API token revocation when a password or status changes.

Sign-ins, sign-outs and failed sign-ins come from Django's auth signals (web, admin and
API); lockouts from django-axes; a changed password or a deactivated account revokes every
API token of the user.
"""

from __future__ import annotations

from contextvars import ContextVar

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal, receiver

from .lockout import normalised_username
from .services import audit_record, user_tokens_revoke

# Sent before a clinic is deactivated (accounts.admin.ClinicAdmin). Arguments: clinic. A receiver
# in an app built on top answers with a sentence saying why the clinic may not be deactivated yet
# (work of the clinic that would be stranded), or None; any sentence refuses the change.
clinic_deactivation_checked = Signal()


def clinic_deactivation_refusals(clinic) -> list[str]:
    """What stands in the way of deactivating ``clinic`` (clinic_deactivation_checked's answers)."""
    return [str(answer) for _, answer in clinic_deactivation_checked.send(sender=type(clinic), clinic=clinic) if answer]


def _channel(request) -> str:
    path = getattr(request, "path", "") or ""
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/api/"):
        return "api"
    return "web"


def _django_request(request):
    return getattr(request, "_request", request)


@receiver(user_logged_in, dispatch_uid="skinportal-audit-login")
def audit_login(sender, request, user, **kwargs) -> None:
    if request is None or _channel(request) == "api":  # the token endpoint audits "auth.token"
        return
    audit_record(actor=user, action="auth.login", request=_django_request(request), details={"via": _channel(request)})


@receiver(user_logged_out, dispatch_uid="skinportal-audit-logout")
def audit_logout(sender, request, user, **kwargs) -> None:
    if request is None or user is None:
        return
    audit_record(actor=user, action="auth.logout", request=_django_request(request), details={"via": _channel(request)})


@receiver(user_login_failed, dispatch_uid="skinportal-audit-login-failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if request is None:
        return
    channel = _channel(request)
    audit_record(
        actor=None,
        action="auth.token_failed" if channel == "api" else "auth.login_failed",
        request=_django_request(request),
        details={"username": normalised_username(credentials.get("username")), "via": channel},
    )


@receiver(user_locked_out, dispatch_uid="skinportal-audit-lockout")
def audit_lockout(sender, request, username, ip_address, **kwargs) -> None:
    audit_record(
        actor=None,
        action="auth.lockout",
        request=_django_request(request) if request is not None else None,
        details={"username": username or "", "address": ip_address or "", "via": _channel(request)},
    )


# The admin request in progress (set by accounts/admin.py around its writes), so that a
# password or status an administrator sets is audited with that administrator as the actor.
ADMIN_REQUEST: ContextVar = ContextVar("skinportal_admin_request", default=None)


@receiver(pre_save, sender=get_user_model(), dispatch_uid="skinportal-user-credentials-changed")
def remember_credentials(sender, instance, raw=False, **kwargs) -> None:
    instance._credentials_changed = None
    if raw or instance.pk is None:
        return
    previous = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if previous is None:
        return
    if previous["password"] != instance.password:
        instance._credentials_changed = "password_change"
    elif previous["is_active"] and not instance.is_active:
        instance._credentials_changed = "deactivation"


@receiver(post_save, sender=get_user_model(), dispatch_uid="skinportal-user-revoke-tokens")
def revoke_tokens_on_credentials_change(sender, instance, created, raw=False, **kwargs) -> None:
    reason = getattr(instance, "_credentials_changed", None)
    instance._credentials_changed = None
    if raw or created or reason is None:
        return
    request = getattr(instance, "_audit_request", None)
    actor = instance if request is not None else None  # the user's own change, else an admin or a command
    if request is None and (admin_request := ADMIN_REQUEST.get()) is not None:
        request, actor = admin_request, admin_request.user  # an administrator, in the admin
    if reason == "password_change":
        audit_record(actor=actor, action="user.password_change", obj=instance, request=request)
    user_tokens_revoke(user=instance, reason=reason, request=request, actor=actor)
