"""REST API v1 of the referral workflow (namespace "triage-api")."""

from django.urls import path

from . import apis

app_name = "triage-api"

urlpatterns = [
    path("api/v1/cases/<int:pk>/referral/", apis.CaseReferralApi.as_view(), name="case-referral"),
    path("api/v1/cases/<int:pk>/information/", apis.CaseInformationApi.as_view(), name="case-information"),
    path("api/v1/cases/<int:pk>/acknowledge/", apis.CaseAcknowledgeApi.as_view(), name="case-acknowledge"),
    path("api/v1/referrals/", apis.ReferralListApi.as_view(), name="referral-list"),
    path("api/v1/referrals/<int:pk>/", apis.ReferralDetailApi.as_view(), name="referral-detail"),
    path("api/v1/referrals/<int:pk>/claim/", apis.ReferralClaimApi.as_view(), name="referral-claim"),
    path("api/v1/referrals/<int:pk>/release/", apis.ReferralReleaseApi.as_view(), name="referral-release"),
    path("api/v1/referrals/<int:pk>/review/", apis.ReferralReviewApi.as_view(), name="referral-review"),
    path(
        "api/v1/referrals/<int:pk>/request-information/",
        apis.ReferralInformationRequestApi.as_view(),
        name="referral-request-information",
    ),
    path("api/v1/referrals/<int:pk>/urgency/", apis.ReferralUrgencyApi.as_view(), name="referral-urgency"),
    path("api/v1/notifications/", apis.NotificationListApi.as_view(), name="notification-list"),
    path("api/v1/notifications/<int:pk>/read/", apis.NotificationReadApi.as_view(), name="notification-read"),
    path("api/v1/triage/metrics/", apis.TriageMetricsApi.as_view(), name="metrics"),
]
