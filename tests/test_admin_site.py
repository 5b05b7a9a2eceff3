"""The whole Django admin is for administrators: an account given ``is_staff`` and model
permissions by mistake still reads nothing there (the audit log, users, follow-ups included)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission

from accounts.forms import ThrottledAdminAuthenticationForm
from accounts.models import AuditEvent, User
from tests.factories import UserFactory

PAGES = [
    "/admin/",
    "/admin/accounts/auditevent/",
    "/admin/accounts/user/",
    "/admin/continuity/followup/",
]


@pytest.fixture
def staff_with_admin_permissions(clinic_a):
    user = UserFactory(username="flagged", role=User.Role.CLINIC_STAFF, clinics=[clinic_a], is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_auditevent", "view_user", "change_user", "view_followup"])
    )
    return user


@pytest.mark.parametrize("page", PAGES)
def test_clinic_staff_with_is_staff_and_permissions_is_sent_to_the_admin_sign_in(
    staff_with_admin_permissions, page, client
):
    AuditEvent.objects.create(actor_username="ada", action="patient.update", details={"name": "Ada Secret"})
    client.force_login(staff_with_admin_permissions)

    response = client.get(page)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_clinic_staff_cannot_add_themself_to_another_clinic_through_the_admin(
    staff_with_admin_permissions, clinic_b, client
):
    client.force_login(staff_with_admin_permissions)
    url = f"/admin/accounts/user/{staff_with_admin_permissions.pk}/change/"

    response = client.post(url, {"username": "flagged", "clinics": [clinic_b.pk], "role": "administrator"})

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    staff_with_admin_permissions.refresh_from_db()
    assert staff_with_admin_permissions.role == User.Role.CLINIC_STAFF
    assert not staff_with_admin_permissions.clinics.filter(pk=clinic_b.pk).exists()


@pytest.mark.parametrize("page", PAGES)
def test_an_administrator_who_is_not_a_superuser_reads_the_admin(page, client, db):
    administrator = UserFactory(username="amir", role=User.Role.ADMINISTRATOR, is_staff=True)
    administrator.user_permissions.add(*Permission.objects.all())
    client.force_login(administrator)

    assert client.get(page).status_code == 200


def test_admin_sign_in_keeps_the_throttled_form():
    assert admin.site.login_form is ThrottledAdminAuthenticationForm


def test_a_clinic_with_referrals_waiting_cannot_be_deactivated_in_the_admin(admin_user, clinic_a, staff, client):
    from diagnosis.models import Case
    from tests.factories import CaseFactory, PatientFactory
    from triage import services as triage_services

    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    referral = triage_services.referral_create(actor=staff, case=case, urgency="urgent", reason="Bleeding.")
    client.force_login(admin_user)
    url = f"/admin/accounts/clinic/{clinic_a.pk}/change/"
    form = {"name": clinic_a.name, "address": clinic_a.address or "", "is_active": ""}  # the box unticked

    refused = client.post(url, form)

    assert refused.status_code == 200 and b"would be stranded" in refused.content
    clinic_a.refresh_from_db()
    assert clinic_a.is_active

    referral.status = referral.Status.REVIEWED
    referral.save(update_fields=["status"])
    assert client.post(url, form).status_code == 302
    clinic_a.refresh_from_db()
    assert not clinic_a.is_active
