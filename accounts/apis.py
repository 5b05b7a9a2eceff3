"""REST API v1 sign-in: an API token for a username and password, and its revocation."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skinportal.api import ApiView, PrivateResponses

from .lockout import lockout_message
from .services import audit_record
from .throttling import LOGIN_THROTTLES


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as the header `Authorization: Token <token>`.")


class TokenObtainApi(PrivateResponses, APIView):
    """POST username and password, receive {"token": "..."} for the Authorization header.

    The token is stored as a digest only (django-rest-knox), expires after
    SKINPORTAL_TOKEN_IDLE_HOURS without use and SKINPORTAL_TOKEN_MAX_DAYS after issue, and is
    revoked by POST /api/v1/auth/logout/, a password change or deactivation. Attempts count
    against the per-address budget; failures per username and address lock out (django-axes,
    429). Failed attempts and lockouts are audited (accounts/signals.py).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = LOGIN_THROTTLES

    @extend_schema(
        request=AuthTokenSerializer,
        responses={200: TokenOutputSerializer},
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            if getattr(request, "axes_locked_out", False):
                return Response({"detail": lockout_message()}, status=status.HTTP_429_TOO_MANY_REQUESTS)
            raise exceptions.ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        _, token = AuthToken.objects.create(user=user)
        # As a sign-in does: django-axes resets this user's failure count, last_login is set.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        audit_record(actor=user, action="auth.token", request=request)
        return Response({"token": token})


class TokenLogoutApi(ApiView):
    """POST: revoke the API token this request is signed with; it answers 401 from then on."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, AuthToken):
            request.auth.delete()
        audit_record(actor=request.user, action="auth.token_revoke", request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
