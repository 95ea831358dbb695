from django.contrib import admin
from django.urls import include, path

# Each app lists its own API routes; they all live under /api/.
API_URLCONFS = (
    "apps.accounts.urls",
    "apps.sites.urls",
    "apps.environments.urls",
    "apps.backups.urls",
    "apps.domains.urls",
    "apps.jobs.urls",
    "apps.nodes.urls",
    "apps.core.api_urls",
)

api_patterns = [path("", include(urlconf)) for urlconf in API_URLCONFS]

urlpatterns = [
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
    path("", include("apps.core.urls")),
]

handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.internal_error"
