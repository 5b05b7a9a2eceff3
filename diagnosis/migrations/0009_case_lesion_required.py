import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0008_lesion_per_existing_case")]

    operations = [
        migrations.AlterField(
            model_name="case",
            name="lesion",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="cases", to="diagnosis.lesion"
            ),
        ),
    ]
