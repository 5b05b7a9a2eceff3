"""Role checks for the REST API. Which objects a user sees is decided by the selectors."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


def can_submit_clinical_records(user) -> bool:
    """Clinic staff and administrators register patients and submit cases; specialists do not."""
    return bool(user and user.is_authenticated and user.is_active and (user.is_clinic_staff or user.is_administrator))


class ReadsOrClinicalSubmitter(BasePermission):
    """Reading is open to any signed-in user (scoped by selectors); writing needs a submitter."""

    message = "Only clinic staff and administrators can do this."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_submit_clinical_records(request.user)
