"""Routes of the server-rendered web UI (namespace "web"): the patient pages (``patients.views``;
the patient's own page, with their cases, is here) and the case pages."""

from django.urls import path

from patients import views as patient_views

from . import views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("patients/", views.patient_list, name="patient-list"),
    path("patients/new/", patient_views.patient_create_view, name="patient-create"),
    path("patients/<int:pk>/", views.patient_detail, name="patient-detail"),
    path("patients/<int:pk>/edit/", patient_views.patient_edit_view, name="patient-edit"),
    path("patients/<int:pk>/consent/", patient_views.patient_consent_view, name="patient-consent"),
    path("patients/<int:pk>/cases/new/", views.case_create_view, name="case-create"),
    path("cases/", views.case_list_view, name="case-list"),
    path("cases/<int:pk>/", views.case_detail, name="case-detail"),
    path("cases/<int:pk>/result/", views.case_result, name="case-result"),
    path("cases/<int:pk>/photos/", views.case_photos_add_view, name="case-photos-add"),
    path("cases/<int:pk>/close/", views.case_close_view, name="case-close"),
    path("images/<int:pk>/preview/<int:size>/", views.image_preview, name="image-preview"),
]
