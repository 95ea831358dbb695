from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from apps.accounts import services
from apps.accounts.lockout import ACCOUNT_LOCK_ATTRIBUTE


class AccountLockBackend(ModelBackend):
    """Email and password, as ModelBackend, behind the per-account lock.

    Every password check of the panel (POST /api/login and the admin's login
    form) passes through here, so the lock counts both. A locked email is
    refused before its password is looked at, so the right password does not
    get through either.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = username if username is not None else kwargs.get(get_user_model().USERNAME_FIELD)
        locked_for = services.account_lock_seconds(email)
        if locked_for:
            self._refuse(request, locked_for)
            raise PermissionDenied  # stops authenticate() at this backend
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            locked_for = services.record_login_failure(email)
            if locked_for:
                # The failure that reaches the limit is answered with the lock already.
                self._refuse(request, locked_for)
        else:
            services.forget_login_failures(email)
        return user

    @staticmethod
    def _refuse(request, locked_for: int) -> None:
        if request is None:
            return
        setattr(request, ACCOUNT_LOCK_ATTRIBUTE, locked_for)
        # django-axes' flag: AxesMiddleware then answers with the same lockout
        # response as for its own lock (apps.accounts.lockout).
        request.axes_locked_out = True
