"""seed_demo: demo clinics and accounts, idempotent, never under production settings."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Clinic, User


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_creates_clinics_and_personas():
    seed("--password", "a-long-demo-password")

    assert set(Clinic.objects.values_list("name", flat=True)) == {"Demo Clinic", "Second Clinic"}
    users = {user.username: user for user in User.objects.prefetch_related("clinics")}
    assert [c.name for c in users["demo-staff"].clinics.all()] == ["Demo Clinic"]
    assert [c.name for c in users["demo-staff-2"].clinics.all()] == ["Second Clinic"]
    assert users["demo-staff"].is_clinic_staff
    assert users["demo-specialist"].is_specialist
    assert sorted(c.name for c in users["demo-specialist"].clinics.all()) == ["Demo Clinic", "Second Clinic"]
    assert [c.name for c in users["demo-specialist-2"].clinics.all()] == ["Second Clinic"]
    assert users["demo-admin"].is_superuser and users["demo-admin"].is_administrator
    assert all(user.check_password("a-long-demo-password") for user in users.values())
    # Every demo user has an address, so the demo's notifications are emailed (to the console).
    assert {user.email for user in users.values()} == {f"{name}@example.org" for name in users}


@pytest.mark.django_db
def test_seed_demo_keeps_an_address_set_in_admin():
    seed("--password", "a-long-demo-password")
    User.objects.filter(username="demo-staff").update(email="nurse@clinic.example")
    seed("--password", "a-long-demo-password")
    assert User.objects.get(username="demo-staff").email == "nurse@clinic.example"


@pytest.mark.django_db
def test_seed_demo_twice_is_harmless():
    seed("--password", "a-long-demo-password")
    seed("--password", "a-long-demo-password")
    output = seed()

    assert Clinic.objects.count() == 2
    assert User.objects.count() == 5
    assert "passwords unchanged" in output
    assert User.objects.get(username="demo-staff").check_password("a-long-demo-password")


@pytest.mark.django_db
def test_seed_demo_without_password_prints_a_generated_one_once():
    output = seed()

    password = output.splitlines()[1].strip()
    assert len(password) >= 16
    assert User.objects.get(username="demo-specialist").check_password(password)
    assert password not in seed()


@pytest.mark.django_db
def test_seed_demo_is_refused_under_production_settings(settings):
    settings.SKINPORTAL_REFUSE_DEMO_USERS = True

    with pytest.raises(CommandError, match="production"):
        seed("--password", "whatever-password")
    assert not User.objects.exists()
