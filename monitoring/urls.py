"""The served model's page, the model in the field (namespace "monitoring") and its API endpoint."""

from django.urls import path

from . import apis, model_page, views

app_name = "monitoring"

urlpatterns = [
    path("model/", model_page.model_report, name="model-report"),
    path("model/report/<str:name>", model_page.model_report_file, name="model-report-file"),
    path("model/field/", views.field_page, name="field"),
    path("api/v1/triage/model-performance/", apis.ModelPerformanceApi.as_view(), name="api-model-performance"),
]
