"""Who may do what: the API checks the same Django permissions as the admin.

Every API view declares, per HTTP method, what it needs::

    required_permissions = {
        "GET": needs("environments.view_environment"),
        "POST": needs("environments.deploy_environment", production_guard=True),
    }

``DeclaredPermissions``, the API's default permission class, refuses a method
the view declares nothing for: an endpoint that forgets is closed, not open.
Views that are open on purpose (login) set their own ``permission_classes``,
and tests/api/test_permissions.py lists them.

Acting on a production environment also needs ``environments.manage_production``
(``production_guard``); the admin's actions ask ``may_act_on_environment``.
"""

import logging
from dataclasses import dataclass

from rest_framework.permissions import BasePermission

from apps.core.errors import PermissionMissing

logger = logging.getLogger(__name__)

MANAGE_PRODUCTION = "environments.manage_production"


@dataclass(frozen=True)
class Requirement:
    permissions: tuple[str, ...]
    # The URL's ``id`` names an environment; a production one also needs MANAGE_PRODUCTION.
    production_guard: bool = False


def needs(*permissions: str, production_guard: bool = False) -> Requirement:
    return Requirement(tuple(permissions), production_guard)


def is_production(environment) -> bool:
    from apps.environments.choices import EnvironmentType

    return environment.environment_type == EnvironmentType.PRODUCTION


def require(user, *permissions: str) -> None:
    """Raise PermissionMissing unless the user has every one of the permissions."""
    missing = [permission for permission in permissions if not user.has_perm(permission)]
    if missing:
        raise PermissionMissing(missing)


def require_for_environment(user, environment, *permissions: str) -> None:
    """The permissions, plus MANAGE_PRODUCTION when the environment is production."""
    require(user, *permissions)
    if is_production(environment) and not user.has_perm(MANAGE_PRODUCTION):
        raise PermissionMissing(
            [MANAGE_PRODUCTION],
            f"{environment} is a production environment: acting on it needs the permission {MANAGE_PRODUCTION}.",
        )


def guarded(user, permission: str, call):
    """``call(environment)``, once the user may act on that environment with the
    permission; refused with PermissionMissing (an ApiError) before it otherwise."""

    def run(environment):
        require_for_environment(user, environment, permission)
        return call(environment)

    return run


def may_act_on_environment(user, environment, *permissions: str) -> bool:
    try:
        require_for_environment(user, environment, *permissions)
    except PermissionMissing:
        return False
    return True


class IsStaff(BasePermission):
    """Only active hosting staff use the panel's API."""

    message = "Your account is not allowed to use the panel."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


# HEAD and OPTIONS tell no more than GET.
_READ_ALIASES = {"HEAD": "GET", "OPTIONS": "GET"}


class DeclaredPermissions(IsStaff):
    """Active staff with every permission the view declares for the request's method."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False  # 401 without credentials, 403 `forbidden` for non-staff
        if not hasattr(view, request.method.lower()) and request.method not in _READ_ALIASES:
            return True  # the view does not take this method: DRF answers 405
        method = _READ_ALIASES.get(request.method, request.method)
        requirement = getattr(view, "required_permissions", {}).get(method)
        if requirement is None:
            logger.error("%s declares no permission for %s; refused", type(view).__name__, method)
            raise PermissionMissing([], f"This endpoint declares no permission for {method}, so it is refused.")
        require(request.user, *requirement.permissions)
        if requirement.production_guard:
            self._guard_production(request.user, view.kwargs["id"])
        return True

    @staticmethod
    def _guard_production(user, environment_id) -> None:
        from apps.environments.models import Environment

        environment = Environment.objects.select_related("site").filter(pk=environment_id).first()
        # An unknown id is the view's 404 to give.
        if environment is not None:
            require_for_environment(user, environment)
