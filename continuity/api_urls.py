"""REST API v1 of continuity of care (namespace "continuity-api")."""

from django.urls import path

from . import apis

app_name = "continuity-api"

urlpatterns = [
    path("api/v1/patients/<int:pk>/lesions/", apis.PatientLesionListApi.as_view(), name="patient-lesion-list"),
    path("api/v1/lesions/<int:pk>/", apis.LesionDetailApi.as_view(), name="lesion-detail"),
    path("api/v1/follow-ups/", apis.FollowUpListApi.as_view(), name="follow-up-list"),
    path("api/v1/cases/<int:pk>/letter.pdf", apis.CaseLetterPdfApi.as_view(), name="case-letter-pdf"),
    path("api/v1/cases/<int:pk>/fhir/", apis.CaseFhirApi.as_view(), name="case-fhir"),
]
