"""REST API v1 sign-in routes (namespace "accounts")."""

from django.urls import path

from . import apis

app_name = "accounts"

urlpatterns = [
    path("api/v1/auth/token/", apis.TokenObtainApi.as_view(), name="api-token"),
    path("api/v1/auth/logout/", apis.TokenLogoutApi.as_view(), name="api-logout"),
]
