"""REST API v1 of cases (/api/v1/cases/) and the private, access-checked image files (/media/lesions/)."""

from django.urls import path

from . import apis

app_name = "diagnosis"

urlpatterns = [
    path("api/v1/cases/", apis.CaseListCreateApi.as_view(), name="api-case-list"),
    path("api/v1/cases/<int:pk>/", apis.CaseDetailApi.as_view(), name="api-case-detail"),
    path("api/v1/cases/<int:pk>/images/", apis.CasePhotosAddApi.as_view(), name="api-case-photos-add"),
    path("api/v1/cases/<int:pk>/close/", apis.CaseCloseApi.as_view(), name="api-case-close"),
    # No MEDIA_URL is served anywhere: these views check access, then stream the file.
    path("media/lesions/<int:image_id>/", apis.ImageFileApi.as_view(), name="image-file"),
    path(
        "media/lesions/<int:image_id>/heatmap/",
        apis.ImageHeatmapApi.as_view(),
        name="image-heatmap",
    ),
]
