from rest_framework.permissions import BasePermission


class IsStaff(BasePermission):
    """Only active hosting staff use the panel's API."""

    message = "Your account is not allowed to use the panel."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)
