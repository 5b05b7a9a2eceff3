from importlib.util import find_spec

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.language import set_language
from accounts.views import LoginView, PasswordChangeView

from . import health, offline, readiness

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("sw.js", offline.service_worker, name="service-worker"),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/language/", set_language, name="set-language"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        # Swagger UI from the portal's own static files, its set-up script a separate file
        # (the Content-Security-Policy allows no inline script).
        SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    # REST API v1: sign-in tokens (namespace "accounts"), patients (namespace "patients"), cases
    # and the access-checked image files (namespace "diagnosis").
    path("", include("accounts.urls")),
    path("", include("patients.urls")),
    path("", include("diagnosis.urls")),
    # The referral workflow: its API (namespace "triage-api") and pages (namespace "triage").
    path("", include("triage.api_urls")),
    path("", include("triage.urls")),
    # The user's clinics and today's UV index there (namespace "clinics").
    path("", include("clinics.urls")),
    # Continuity of care: lesions over time, follow-ups, the referral letter, FHIR export.
    path("", include("continuity.api_urls")),
    path("", include("continuity.urls")),
    # The model in the field: figures from the specialists' answers, and its API endpoint.
    path("", include("monitoring.urls")),
]

# /readyz: database, broker and an inference worker with its model loaded.
urlpatterns.insert(1, path("readyz", readiness.readyz, name="readyz"))

# The server-rendered web UI (diagnosis/web_urls.py, namespace "web") once it exists.
if find_spec("diagnosis.web_urls") is not None:
    urlpatterns.append(path("", include("diagnosis.web_urls")))
    # "Analyse again" on the case page (analysis/urls.py, namespace "analysis").
    urlpatterns.append(path("", include("analysis.urls")))

handler400 = "skinportal.errors.bad_request"
handler403 = "skinportal.errors.permission_denied"
handler404 = "skinportal.errors.not_found"
handler500 = "skinportal.errors.server_error"
