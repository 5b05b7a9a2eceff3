"""Routes of the referral workflow: REST API v1 (namespace "triage-api") lives in api_urls."""

from django.urls import path

from . import views

app_name = "triage"

urlpatterns = [
    path("referrals/", views.referral_queue, name="referral-queue"),
    path("referrals/<int:pk>/", views.referral_detail, name="referral-detail"),
    path("referrals/<int:pk>/claim/", views.referral_claim_view, name="referral-claim"),
    path("referrals/<int:pk>/release/", views.referral_release_view, name="referral-release"),
    path("referrals/<int:pk>/review/", views.review_view, name="referral-review"),
    path("referrals/<int:pk>/request-information/", views.information_request_view, name="referral-information"),
    path("referrals/<int:pk>/urgency/", views.referral_urgency_view, name="referral-urgency"),
    path("cases/<int:pk>/refer/", views.case_refer_view, name="case-refer"),
    path("cases/<int:pk>/information/", views.information_answer_view, name="case-information"),
    path("cases/<int:pk>/acknowledge/", views.case_acknowledge_view, name="case-acknowledge"),
    path("notifications/", views.notification_list, name="notification-list"),
    path("notifications/<int:pk>/read/", views.notification_read_view, name="notification-read"),
    path("notifications/read-all/", views.notifications_read_all_view, name="notifications-read-all"),
    path("service/", views.service_metrics_page, name="service-metrics"),
]
