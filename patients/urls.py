"""REST API v1 of patients (/api/v1/patients/, namespace "patients")."""

from django.urls import path

from . import apis

app_name = "patients"

urlpatterns = [
    path("api/v1/patients/", apis.PatientListCreateApi.as_view(), name="api-patient-list"),
    path("api/v1/patients/<int:pk>/", apis.PatientDetailApi.as_view(), name="api-patient-detail"),
    path("api/v1/patients/<int:pk>/consent/", apis.PatientConsentApi.as_view(), name="api-patient-consent"),
]
