"""Role checks for the referral API. Which referrals a user sees is decided by the selectors."""

from rest_framework.permissions import IsAuthenticated


class IsSpecialist(IsAuthenticated):
    message = "Only specialists can do this."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.is_specialist


class IsSpecialistOrAdministrator(IsAuthenticated):
    message = "Only specialists and administrators can see this."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and (request.user.is_specialist or request.user.is_administrator)


class IsClinicalSubmitter(IsAuthenticated):
    message = "Only clinic staff and administrators can do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return super().has_permission(request, view) and (user.is_clinic_staff or user.is_administrator)
