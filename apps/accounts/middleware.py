from django.conf import settings


class SecureSessionCookieMiddleware:
    """Mark the session and CSRF cookies Secure when the request came over HTTPS.

    Django's SESSION_COOKIE_SECURE is fixed at start-up; the panel may be reached
    both ways (plain HTTP on a fresh install, HTTPS behind a proxy later).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.is_secure():
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                if name in response.cookies:
                    response.cookies[name]["secure"] = True
        return response
