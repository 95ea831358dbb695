"""A URLconf with an admin site of its own, for tests/test_admin_pages.py: one
model admin whose actions and pages are declared only here, so the base in
apps/core/admin_pages.py is tested apart from any real admin's declarations.
The services called are the real ones."""

from django import forms
from django.contrib.admin import AdminSite
from django.urls import path

from apps.core.admin_actions import ObjectAction, run_service_action
from apps.core.admin_pages import FormPage, ObjectPage, PanelModelAdmin
from apps.core.choices import LifecycleStatus
from apps.jobs.admin import JobAdmin
from apps.jobs.models import Job
from apps.sites import services
from apps.sites.models import Site

LOCKED_SLUG = "locked"


class ResetSite(ObjectAction):
    name = "reset_site"
    label = "Reset this site"
    permission = "sites.change_site"
    audit = "site.reset"
    queues_job = False
    done = "back to active."

    def shown(self, request, site):
        return site.status == LifecycleStatus.FAILED

    def call(self, request, site):
        return services.reset_site(site.pk)


class DeleteSite(ObjectAction):
    name = "delete_site"
    label = "Delete this site"
    permission = "sites.delete_site"
    audit = "site.delete"
    done = "deletion queued as"

    def call(self, request, site):
        return services.delete_site(site.pk, user=request.user)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=20)


class ResetWithReason(FormPage):
    name = "reset_with_reason"
    path = "reset-with-reason"
    label = "Reset with a reason"
    action_name = "open_reset_with_reason"
    permission = "sites.change_site"
    form_class = ReasonForm
    submit = "Reset"

    def allowed_on(self, request, site):
        return site.slug != LOCKED_SLUG

    def title(self, site):
        return f"Reset {site.slug}"

    def perform(self, request, site, data):
        return run_service_action(self.modeladmin, request, [site], action="site.reset",
                                  call=lambda target: services.reset_site(target.pk),
                                  done=f"reset because {data['reason']}.")


class Summary(ObjectPage):
    name = path = "summary"
    permission = "sites.view_site"
    template = "admin/environments/environment_page.html"


class DeclaredSiteAdmin(PanelModelAdmin):
    fields = ("name",)
    object_actions = (ResetSite(), DeleteSite(), ResetWithReason(), Summary())


site = AdminSite(name="admin")
site.register(Site, DeclaredSiteAdmin)
site.register(Job, JobAdmin)

urlpatterns = [path("admin/", site.urls)]
