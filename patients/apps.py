from django.apps import AppConfig


class PatientsConfig(AppConfig):
    """Patients: registration, consent, corrections, and who may see which details.

    Below ``diagnosis`` (a case belongs to a patient): it imports nothing of cases. The patient
    list (with case counts) and the patient's page (with their cases) are diagnosis's.
    """

    name = "patients"
    verbose_name = "Patients"
