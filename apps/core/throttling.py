from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from apps.core.client_address import client_address


class ClientAddressScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, keyed on the real client address
    (apps.core.client_address) instead of DRF's own reading of
    X-Forwarded-For, which believes any client."""

    def get_ident(self, request):
        return client_address(request) or "unknown"

    def get_rate(self):
        # Read at each request (not frozen at import like THROTTLE_RATES), so
        # a changed setting applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
