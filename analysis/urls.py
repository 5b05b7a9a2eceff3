"""Routes of the analysis pages (namespace "analysis")."""

from django.urls import path

from . import views

app_name = "analysis"

urlpatterns = [
    path("cases/<int:pk>/reanalyse/", views.case_reanalyse_view, name="case-reanalyse"),
]
