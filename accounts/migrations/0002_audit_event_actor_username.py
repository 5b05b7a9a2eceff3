from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_actor_username(apps, schema_editor):
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    User = apps.get_model("accounts", "User")
    AuditEvent.objects.filter(actor__isnull=False).update(
        actor_username=Subquery(User.objects.filter(pk=OuterRef("actor_id")).values("username")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="actor_username",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.RunPython(fill_actor_username, migrations.RunPython.noop),
    ]
