from django.apps import AppConfig


class PatientsConfig(AppConfig):
    """Patients: registration, consent, corrections, and who may see which details.

    Below ``diagnosis`` (a case belongs to a patient): it knows nothing of cases.
    """

    name = "patients"
    verbose_name = "Patients"
