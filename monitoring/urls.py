"""The model in the field: its page (namespace "monitoring") and its API endpoint."""

from django.urls import path

from . import apis, views

app_name = "monitoring"

urlpatterns = [
    path("model/field/", views.field_page, name="field"),
    path("api/v1/triage/model-performance/", apis.ModelPerformanceApi.as_view(), name="api-model-performance"),
]
