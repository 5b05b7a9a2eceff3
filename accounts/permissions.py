"""Role checks, for pages, the REST API and the selectors. Which objects a user sees is decided by the selectors."""

from rest_framework.permissions import SAFE_METHODS, IsAuthenticated


def can_read(user) -> bool:
    """A signed-in, active user: what every selector asks first."""
    return bool(user is not None and user.is_authenticated and user.is_active)


def can_submit_clinical_records(user) -> bool:
    """Clinic staff and administrators register patients and submit cases; specialists do not."""
    return bool(user and user.is_authenticated and user.is_active and (user.is_clinic_staff or user.is_administrator))


class ReadsOrClinicalSubmitter(IsAuthenticated):
    """Any signed-in user may read (the selectors scope what); writing needs a submitter."""

    message = "Only clinic staff and administrators can do this."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or can_submit_clinical_records(request.user)
