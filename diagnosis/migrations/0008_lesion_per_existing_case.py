"""Every case submitted before lesions existed gets a lesion of its own (its body site, its date)."""

from django.db import migrations


def lesions_for_existing_cases(apps, schema_editor):
    Case = apps.get_model("diagnosis", "Case")
    Lesion = apps.get_model("diagnosis", "Lesion")
    for case in Case.objects.filter(lesion__isnull=True).order_by("pk").iterator():
        lesion = Lesion.objects.create(
            patient_id=case.patient_id,
            body_site=case.body_site,
            label="",
            created_by_id=case.submitted_by_id,
            created_at=case.created_at,
        )
        Case.objects.filter(pk=case.pk).update(lesion=lesion)


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0007_lesion")]

    operations = [migrations.RunPython(lesions_for_existing_cases, migrations.RunPython.noop)]
