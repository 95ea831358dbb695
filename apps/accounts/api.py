from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import services
from apps.accounts.serializers import LoginResponseSerializer, LoginSerializer, LogoutResponseSerializer
from apps.core.schema import error_responses, ok
from apps.core.throttling import ClientAddressScopedRateThrottle


class LoginView(APIView):
    """Start a session: sets the ``session_token`` cookie (and ``csrftoken``)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ClientAddressScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        operation_id="login",
        tags=["Auth"],
        summary="Log in with email and password",
        description=(
            "On success the response sets the HttpOnly `session_token` cookie (24 h) and the "
            "`csrftoken` cookie. Cookie-authenticated writes must echo `csrftoken` in the "
            "`X-CSRFToken` header. Repeated failures lock the email for a while (429): from one address "
            "after a few, from any addresses after more."
        ),
        request=LoginSerializer,
        responses={200: ok(LoginResponseSerializer, "Logged in; the session cookie is set."), **error_responses(400, 401, 429)},
        auth=[],
    )
    def post(self, request):
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.login(request._request, body.validated_data["email"], body.validated_data["password"])
        return Response({"success": True})


class LogoutView(APIView):
    """End the session; the cookie is cleared and the session revoked server-side."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="logout",
        tags=["Auth"],
        summary="Log out",
        request=None,
        responses={200: ok(LogoutResponseSerializer, "Logged out; the session is revoked."), **error_responses(401)},
    )
    def post(self, request):
        services.logout(request._request)
        return Response({"success": True})


