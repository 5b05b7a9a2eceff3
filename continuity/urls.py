"""Pages of continuity of care (namespace "continuity"); the REST API is in api_urls."""

from django.urls import path

from . import views

app_name = "continuity"

urlpatterns = [
    path("lesions/<int:pk>/", views.lesion_detail, name="lesion-detail"),
    path("lesions/<int:pk>/compare/", views.lesion_compare, name="lesion-compare"),
    path("follow-ups/", views.follow_up_list, name="follow-up-list"),
    path("cases/<int:pk>/letter/", views.case_letter, name="case-letter"),
]
