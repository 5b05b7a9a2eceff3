"""Patients became an app of their own: the table, its rows and the content type (with the
permissions granted on it and the admin's history) stay; only Django's state moves."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("diagnosis", "0013_lesionimage_withdrawn"), ("patients", None)]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    return executor.migrate(targets).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_upgrading_keeps_the_patient_rows_and_their_content_type_with_its_permissions(clinic_a):
    from tests.factories import UserFactory

    staff = UserFactory(clinics=[clinic_a])
    try:
        old = _migrate(BEFORE)
        content_type = old.get_model("contenttypes", "ContentType")
        permission = old.get_model("auth", "Permission")
        patient_type, _ = content_type.objects.get_or_create(app_label="diagnosis", model="patient")
        content_type.objects.filter(app_label="patients", model="patient").delete()  # as before the move
        grant = permission.objects.create(name="Can view patient", codename="view_patient_x", content_type=patient_type)
        old_patient = old.get_model("diagnosis", "Patient")
        row = old_patient.objects.create(
            clinic_id=clinic_a.pk,
            identifier="UP-1",
            full_name="Up Grade",
            date_of_birth="1970-01-01",
            created_by_id=staff.pk,
        )

        new = _migrate(_latest())

        moved = new.get_model("patients", "Patient").objects.get(pk=row.pk)
        assert moved.identifier == "UP-1" and moved.clinic_id == clinic_a.pk
        kept = new.get_model("contenttypes", "ContentType").objects.get(pk=patient_type.pk)
        assert (kept.app_label, kept.model) == ("patients", "patient")
        assert new.get_model("auth", "Permission").objects.get(pk=grant.pk).content_type_id == patient_type.pk
    finally:
        _migrate(_latest())
