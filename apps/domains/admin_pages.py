"""What an operator does to domains in the admin: "Add domain" on an
environment's page, "Make primary" and "Remove domain" on a domain's page
(linked from the environment's). Each calls the same service as the API and
is audited once."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.accounts.permissions import may_act_on_environment, require_for_environment
from apps.core.admin_actions import ObjectAction, run_job_action
from apps.core.admin_helpers import admin_url, status_badge
from apps.core.admin_pages import FormPage
from apps.core.errors import ApiError
from apps.domains import hostnames, services
from apps.domains.choices import TlsStatus
from apps.environments.admin_pages import OnEnvironment


class AddDomainForm(forms.Form):
    hostname = forms.CharField(max_length=300, help_text="e.g. www.example.com; an internationalized name is "
                                                         "stored in its ASCII form. No wildcards.")
    check_dns = forms.BooleanField(
        required=False, initial=True, label="Check DNS first",
        help_text="Refuse the domain (writing nothing) unless its A record already points at the node. Untick to "
                  "attach it before moving DNS: its certificate is asked for once DNS points at the node.",
    )

    def clean_hostname(self):
        try:
            return hostnames.normalize(self.cleaned_data["hostname"])
        except ApiError as exc:
            raise forms.ValidationError(exc.message) from None


class AddDomainPage(OnEnvironment, FormPage):
    """On an environment: attach a hostname (services.request_add, as the API)."""

    name = path = "add_domain"
    label = "Add domain"
    action_name = "add_domain"
    description = "Add domain (one selected environment)"
    permission = "domains.add_domain"
    when_active = True
    form_class = AddDomainForm
    submit = "Add domain"

    def allowed_on(self, request, environment):
        return may_act_on_environment(request.user, environment, self.permission)

    def title(self, environment):
        return f"Add a domain to {environment}"

    def intro(self, environment):
        return (f"Point the domain's A record at {environment.node.public_ipv4} (node {environment.node.name}) "
                "first. The job checks DNS, writes the domain's server block, gets its certificate (HTTP-01) and "
                "serves the site over HTTPS on it; the environment's first domain becomes primary, and the site's "
                "URLs are rewritten to it. You are taken to the job to follow it.")

    def perform(self, request, environment, data):
        return run_job_action(
            self.modeladmin, request, [environment], action="environment.domain_add",
            call=lambda target: services.request_add(target.pk, data["hostname"], check_dns=data["check_dns"],
                                                     user=request.user),
            label=lambda target: f"Domain {data['hostname']} for {target}", done="queued as",
        )


class OnDomain:
    def check(self, request, domain):
        require_for_environment(request.user, domain.environment, self.permission)

    def label_of(self, domain):
        return f"Domain {domain.hostname}"


class MakePrimary(OnDomain, ObjectAction):
    name = "make_primary"
    label = "Make primary"
    description = "Make primary (the site's URLs move to it)"
    permission = "domains.change_domain"
    audit = "domain.make_primary"
    one_only = True
    done = "URL change queued as"

    def shown(self, request, domain):
        return not domain.is_primary and domain.tls_status == TlsStatus.ACTIVE and super().shown(request, domain)

    def call(self, request, domain):
        return services.request_primary(domain.pk, user=request.user)


class RemoveDomain(OnDomain, ObjectAction):
    name = "remove_domains"
    label = "Remove domain"
    description = "Remove selected domains (server block and certificate too)"
    permission = "domains.delete_domain"
    audit = "domain.remove"
    done = "removal queued as"
    confirm = dict(
        title="Remove domain",
        question="Remove these domains? Each one's server block and certificate are removed from the node. If it "
                 "is the primary domain, the site's URLs are rewritten to the next domain with a certificate, or to "
                 "the preview URL.",
        button="Yes, remove",
        details=lambda domain: [
            ("environment", str(domain.environment)),
            ("primary", "yes: the site's URLs change" if domain.is_primary else "no"),
            ("TLS", domain.get_tls_status_display()),
        ],
    )

    def call(self, request, domain):
        return services.request_remove(domain.pk, user=request.user)


def certificate_warning(domain) -> str:
    """Why the domain's certificate needs an operator's eye ("" when it does not)."""
    if domain.tls_status == TlsStatus.FAILED:
        return f"certificate failed: {domain.tls_error}" if domain.tls_error else "certificate failed"
    if domain.tls_status == TlsStatus.ACTIVE and domain.tls_expires_at is not None:
        left = domain.tls_expires_at - timezone.now()
        if left < timedelta(days=settings.CERTIFICATE_WARN_DAYS):
            return f"certificate expires in {max(left.days, 0)} day(s) ({domain.tls_expires_at:%Y-%m-%d})"
    return ""


def environment_domains(environment):
    """The environment page's list of its domains: each links to its page
    (Make primary, Remove), with TLS state and any warning."""
    domains = list(environment.domains.order_by("-is_primary", "hostname"))
    if not domains:
        return "none"
    return format_html("<ul style='margin:0;padding-left:1em'>{}</ul>", format_html_join(
        "", "<li><a href='{}'>{}</a>{} {} <strong style='color:#ba2121'>{}</strong></li>",
        ((admin_url(domain), domain.hostname, " (primary)" if domain.is_primary else "",
          status_badge(domain.tls_status, domain.get_tls_status_display()), certificate_warning(domain))
         for domain in domains)))
