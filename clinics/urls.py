from django.urls import path

from . import apis

app_name = "clinics"

urlpatterns = [
    path("api/v1/clinics/", apis.ClinicListApi.as_view(), name="api-clinic-list"),
    path("api/v1/clinics/<int:pk>/uv/", apis.ClinicUVApi.as_view(), name="api-clinic-uv"),
]
