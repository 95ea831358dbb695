"""The panel itself over HTTPS on its control plane domain.

The domain is the Panel setting ``control_plane_domain``, or
PRESSLUFT_CONTROL_PLANE_DOMAIN, which wins. The machine that runs the panel is
its local node (scripts/run): there, job ``panel_https`` (node program
``remote/panel_https.py``) writes an Nginx server block for the domain that
proxies to the panel's web server on loopback, gets the certificate by
HTTP-01 as a custom domain's, and answers HTTP with 301 to HTTPS. Renewal is
the node's certificate schedule like every other certificate; node health
lists the certificate with the others.

Nginx adds ``X-Pressluft-Proxy: <token>`` to what it forwards; the token is
derived from the panel's secret key and the domain (apps/core/panel_proxy.py),
and the block holding it is root's alone. apps/core/middleware.PanelProxyMiddleware believes the
forwarded scheme and client address only from a loopback peer with that
token, so a site's PHP on the same machine cannot pose as the proxy.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path

from django.conf import settings
from django.template import Context, Engine

from apps.core.errors import ApiError
from apps.core.models import PanelSettings
from apps.core.panel_proxy import proxy_token
from apps.domains import hostnames
from apps.jobs.errors import JobError

TEMPLATE_DIR = Path(__file__).resolve().parent / "node_config"
LIVE = "/etc/letsencrypt/live"
ACME_WEBROOT = "/var/lib/pressluft/acme"
JOB_TYPE = "panel_https"
# Room for the multipart form around a deploy archive.
UPLOAD_MARGIN_BYTES = 1024 * 1024


@functools.cache
def _engine() -> Engine:
    return Engine(dirs=[str(TEMPLATE_DIR)], autoescape=False)


def from_environment() -> str:
    return (settings.CONTROL_PLANE_DOMAIN_FROM_ENVIRONMENT or "").strip()


def effective_domain(panel: PanelSettings | None = None) -> str:
    """The control plane domain in force ("" when none): the variable, else the setting."""
    variable = from_environment()
    if variable:
        try:
            return hostnames.normalize(variable)
        except ApiError as exc:
            raise JobError("bad_parameters", f"PRESSLUFT_CONTROL_PLANE_DOMAIN: {exc.message}") from None
    panel = panel or PanelSettings.load()
    return (panel.control_plane_domain or "").strip()


def upstream(listen: str | None = None) -> str:
    """Where Nginx reaches the panel's web server: PRESSLUFT_LISTEN, on loopback."""
    from pressluft.allowed_hosts import listen_host

    listen = (listen or settings.LISTEN).strip()
    port = "8000"
    if listen.isdigit():
        port = listen
    elif ":" in listen:
        port = listen.rsplit(":", 1)[1]
    host = listen_host(listen)
    if host in ("", "0.0.0.0", "127.0.0.1", "localhost") or host.startswith("127."):
        return f"127.0.0.1:{port}"
    if host in ("::", "::1"):
        return f"[::1]:{port}"
    raise JobError("panel_not_on_loopback", f"The panel listens on {listen} (PRESSLUFT_LISTEN), which its Nginx "
                                            "cannot reach on loopback: listen on 127.0.0.1 (or all addresses).")


def render(hostname: str, *, certified: bool) -> str:
    listen = f"{settings.NODE_LISTEN_ADDRESS}:" if settings.NODE_LISTEN_ADDRESS else ""
    context = {
        "hostname": hostname, "listen": listen, "acme_webroot": ACME_WEBROOT, "marker": secrets.token_hex(8),
        "certificate": f"{LIVE}/{hostname}/fullchain.pem" if certified else "",
        "certificate_key": f"{LIVE}/{hostname}/privkey.pem",
        "client_max_body_size": settings.DEPLOY_ARCHIVE_MAX_BYTES + UPLOAD_MARGIN_BYTES,
        "upstream": upstream() if certified else "", "proxy_token": proxy_token(hostname),
    }
    return _engine().get_template("nginx-panel.conf.tmpl").render(Context(context, autoescape=False))


def status() -> dict:
    """For the settings page and /api/settings: the domain and whether the panel is served on it."""
    from apps.jobs.models import Job
    from apps.nodes.models import Node

    try:
        hostname = effective_domain()
    except JobError as exc:
        return {"hostname": "", "state": "failed", "job_id": None, "expires_at": None, "error": exc.message}
    job = Job.objects.filter(job_type=JOB_TYPE).order_by("-created_at").first()
    shown = {"hostname": hostname, "state": "off", "job_id": str(job.pk) if job else None, "expires_at": None,
             "error": ""}
    if job is not None and job.status in ("queued", "running"):
        shown["state"] = "pending"
    elif job is not None and job.status == "failed":
        shown.update(state="failed", error=job.error_message or job.error_code or "")
    elif job is not None and job.status == "succeeded" and (job.result or {}).get("hostname") == hostname and hostname:
        shown.update(state="active", expires_at=_renewed_expiry(job.node, hostname) or (job.result or {}).get("expires_at"))
    elif hostname and not Node.objects.filter(is_local=True).exists():
        shown.update(state="not_managed", error="No local node: the panel's machine is not managed as a node, so "
                                                "serving the panel on its domain is left to your own proxy.")
    elif hostname:
        shown["state"] = "pending"
    return shown


def _renewed_expiry(node, hostname: str) -> str | None:
    """The expiry the node's last health report gives (it follows renewals), if any."""
    report = ((node.health if node is not None else None) or {}).get("certificates") or {}
    found = report.get("certificates") if isinstance(report, dict) else None
    value = found.get(hostname) if isinstance(found, dict) else None
    return value if isinstance(value, str) else None
