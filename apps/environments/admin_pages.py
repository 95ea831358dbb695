"""What an operator does to an environment in the admin: the declared actions
and pages that ``EnvironmentAdmin.object_actions`` lists (see
apps/core/admin_pages.py for how they become URLs, changelist actions and
buttons). Every one calls the same service as the API and is audited once."""

import uuid

from django.contrib import messages
from django.http import HttpResponseRedirect

from apps.accounts.permissions import (
    MANAGE_PRODUCTION,
    guarded,
    is_production,
    may_act_on_environment,
    require_for_environment,
)
from apps.audit import services as audit
from apps.core.admin_actions import (
    ObjectAction,
    ResetFailedState,
    run_job_action,
    run_service_action,
)
from apps.core.admin_helpers import admin_url
from apps.core.admin_pages import FormPage, ObjectPage
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.environments import held_mail, services, staging_holds
from apps.environments.admin_forms import (
    CacheForm,
    CloneEnvironmentForm,
    DeployForm,
    GitRepositoryForm,
    OutgoingAllowListForm,
    PromoteForm,
    RestoreForm,
)
from apps.environments.choices import ReleaseHealth

RELEASES_SHOWN = 20


class OnEnvironment:
    """Where an environment's button is offered, and the production guard.

    ``when_active``: only on an active environment. ``on_production``: "never"
    (not offered there), "guarded" (offered to holders of manage_production) or
    "open". Whatever the button shows, ``check`` refuses (audited) an action on
    production without manage_production, as the API does.
    """

    when_active = False
    on_production = "guarded"

    def shown(self, request, environment):
        if self.when_active and environment.status != LifecycleStatus.ACTIVE:
            return False
        if is_production(environment) and (
            self.on_production == "never"
            or (self.on_production == "guarded" and not request.user.has_perm(MANAGE_PRODUCTION))
        ):
            return False
        return super().shown(request, environment)

    def check(self, request, environment):
        require_for_environment(request.user, environment, self.permission)

    def label_of(self, environment):
        return f"Environment {environment}"


class ResetEnvironment(OnEnvironment, ResetFailedState):
    permission = "environments.change_environment"
    audit = "environment.reset"

    def call(self, request, environment):
        return services.reset_environment(environment.pk)


class RunHealthCheck(OnEnvironment, ObjectAction):
    name = "run_health_check"
    label = "Run health check"
    permission = "environments.change_environment"
    audit = "environment.health_check"

    def call(self, request, environment):
        return services.request_health_check(environment.pk, user=request.user)


class CheckDrift(OnEnvironment, ObjectAction):
    """Production measured now against this copy's baseline (drift_check)."""

    name = "check_drift"
    label = "Check drift"
    description = "Check drift (has production changed what a promotion would overwrite?)"
    permission = "environments.change_environment"
    audit = "environment.drift_check"
    when_active = True
    on_production = "never"  # production is what is measured, against a copy's baseline
    done = "drift check queued as"

    def call(self, request, environment):
        return services.request_drift_check(environment.pk, user=request.user)


class RefreshFromProduction(OnEnvironment, ObjectAction):
    """Production's protected tables and uploads into this copy; a new drift baseline (env_refresh)."""

    name = "refresh_from_production"
    label = "Refresh from production"
    description = "Refresh from production (protected tables and uploads; code and settings stay)"
    permission = "environments.change_environment"
    audit = "environment.refresh"
    when_active = True
    on_production = "never"
    done = "refresh from production queued as"

    def confirmation(self, objects):
        return dict(
            title="Refresh from production",
            question="Copy production's protected tables (by each environment's promotion preset: posts, comments, "
                     "orders...) and its uploads into these environments, replacing theirs? Their code, settings "
                     "and other tables stay, and production's checksums now become their drift baseline: a later "
                     "promotion then replaces production's settings and code with theirs, including changes made "
                     "in production since they were copied.",
            button="Yes, refresh",
        )

    def call(self, request, environment):
        return services.refresh_from_production(environment.pk, user=request.user)


class PromotePage(OnEnvironment, FormPage):
    """The promotion plan (asked of the node) and the drift state, with the
    Promote button under them -> services.request_promote (env_promote)."""

    name = path = "promote"
    label = "Promote"
    action_name = "promote_environment"
    description = "Promote to production (one selected staging or clone environment)"
    permission = "environments.promote_environment"
    when_active = True
    on_production = "never"  # production is what is promoted into
    form_class = PromoteForm
    submit = "Promote"
    template = "admin/pressluft/promote_form.html"

    def allowed_on(self, request, environment):
        # It writes production: the production guard applies whatever the source is.
        return (may_act_on_environment(request.user, environment, self.permission)
                and request.user.has_perm(MANAGE_PRODUCTION))

    def title(self, environment):
        return f"Promote {environment} to production"

    def intro(self, environment):
        return ("What the promotion would do now, read from both environments on the node. Production's protected "
                "tables (by this environment's promotion preset) and uploads are never written; the job checks "
                "drift again, backs production up in full, switches in one step and swaps back by itself if "
                "production is then unhealthy. You are taken to the job to follow it.")

    def _production(self, environment):
        from apps.environments import drift

        return drift.production_of(environment)

    def extra(self, environment):
        production = self._production(environment)
        plan, problem = None, None
        try:
            plan = services.promotion_plan(environment.pk, production.pk if production else environment.pk)
        except ApiError as exc:
            problem = exc.message
        blocker = plan["drift"]["blocker"] if plan else None
        return {"plan": plan, "plan_problem": problem, "production": production,
                "drift_status": environment.drift_status, "drift_checked_at": environment.drift_checked_at,
                "blocked": problem or blocker}

    def show(self, request, environment, form):
        from apps.core.admin_helpers import render_service_form

        return render_service_form(self.modeladmin, request, form, title=self.title(environment), submit=self.submit,
                                   intro=self.intro(environment), template=self.template, **self.extra(environment))

    def perform(self, request, environment, data):
        production = self._production(environment)
        return run_job_action(
            self.modeladmin, request, [environment], action="environment.promote",
            call=lambda source: services.request_promote(source.pk, production.pk if production else source.pk,
                                                         user=request.user),
            label=lambda source: f"Promotion of {source}", done="promotion queued as",
        )


class BackUpNow(OnEnvironment, ObjectAction):
    name = "back_up_now"
    label = "Back up now"
    description = "Back up now (full: database and files)"
    permission = "backups.add_backup"
    audit = "environment.backup"
    when_active = True
    done = "full backup queued as"

    def call(self, request, environment):
        from apps.backups import services as backups

        return backups.request_backup(environment.pk, "full", user=request.user)


class RestorePage(OnEnvironment, FormPage):
    """One of the site's completed backups into this environment (confirmed on the form)."""

    name = path = "restore"
    label = "Restore a backup"
    action_name = "restore_environment"
    description = "Restore a backup (one selected environment)"
    permission = "environments.restore_environment"
    when_active = True
    form_class = RestoreForm
    submit = "Restore"

    def allowed_on(self, request, environment):
        return may_act_on_environment(request.user, environment, self.permission)

    def title(self, environment):
        return f"Restore a backup into {environment}"

    def intro(self, environment):
        return ("The backup is read back and checked against its checksum before anything changes; then a full "
                "pre-restore backup is taken, the backup's files (as a new release: the current one stays for a "
                "rollback) and/or database (loaded beside the live one, then swapped in) are put back, URLs "
                "rewritten if it came from another environment, caches purged and the health checked. You are "
                "taken to the job to follow it.")

    def initial(self, environment):
        return {"environment": environment}

    def perform(self, request, environment, data):
        from apps.backups import services as backups

        return run_job_action(
            self.modeladmin, request, [environment], action="environment.restore",
            call=lambda target: backups.request_restore(target.pk, data["backup"], user=request.user),
            label=lambda target: f"Restore of backup {data['backup']} into {target}", done="restore queued as",
        )


class DeleteEnvironment(OnEnvironment, ObjectAction):
    name = "delete_environments"
    label = "Delete environment"
    description = "Delete selected staging/clone environments (from their nodes too)"
    permission = "environments.delete_environment"
    audit = "environment.delete"
    on_production = "never"  # goes only with its site
    done = "being deleted by"

    def confirmation(self, objects):
        from apps.backups import services as backups

        return dict(
            title="Delete environment",
            question="Delete these environments? Each one is removed from its node: Linux user, PHP-FPM pool, "
                     "database, server block and files, then its records in the panel. A production environment "
                     "goes only with its site.",
            button="Yes, delete",
            details=lambda environment: [
                ("type", environment.get_environment_type_display()),
                ("node", environment.node.name),
                ("preview URL", environment.preview_url),
            ],
            **backups.final_backup_confirmation(),
        )

    def call(self, request, environment):
        from apps.backups import services as backups

        skip = request.POST.get(backups.SKIP_FINAL_BACKUP_OPTION) == "on"
        return services.delete_environment(environment.pk, user=request.user, final_backup=not skip)


class PurgeCaches(OnEnvironment, ObjectAction):
    name = "purge_caches"
    label = "Purge caches"
    description = "Purge caches (page cache and object cache)"
    permission = "environments.change_environment"
    audit = "environment.cache_purge"
    when_active = True
    done = "cache purge queued as"

    def call(self, request, environment):
        return services.purge_cache(environment.pk, user=request.user)


class CachePage(OnEnvironment, FormPage):
    """The two cache switches -> services.set_cache (queues env_cache_toggle)."""

    name = "caching"
    path = "caching"
    label = "Caching"
    action_name = "edit_caching"
    description = "Caching (one selected environment)"
    permission = "environments.change_environment"
    when_active = True
    form_class = CacheForm
    submit = "Apply"

    def allowed_on(self, request, environment):
        return may_act_on_environment(request.user, environment, self.permission)

    def title(self, environment):
        return f"Caching of {environment}"

    def intro(self, environment):
        return ("Turning a cache on or off renders the environment's server block again (checked by nginx -t "
                "before it replaces the old one) or installs or removes the object cache drop-in; the "
                "environment's caches are purged either way. You are taken to the job to follow it.")

    def initial(self, environment):
        return {"fastcgi_cache_enabled": environment.fastcgi_cache_enabled,
                "redis_cache_enabled": environment.redis_cache_enabled}

    def perform(self, request, environment, data):
        return run_job_action(
            self.modeladmin, request, [environment], action="environment.cache_toggle",
            call=lambda target: services.set_cache(target.pk, user=request.user, **data),
            label=lambda target: f"Caching of {target}", done="cache change queued as",
        )


def magic_login_redirect(modeladmin, request, environment, back=None):
    """Ask the node for a one-time login link and send the browser there;
    on failure say why and return to the environment (or ``back``)."""
    try:
        with audit.action(audit.Actor.of_request(request), "environment.magic_login", resource=environment,
                          details={"via": "admin"}):
            require_for_environment(request.user, environment, "environments.magic_login_environment")
            answer = services.magic_login(environment.pk)
    except ApiError as exc:
        modeladmin.message_user(request, f"Environment {environment}: {exc.message}", messages.ERROR)
        return HttpResponseRedirect(back or admin_url(environment))
    # The link is a one-time secret: it goes only into this redirect, never into the audit log.
    return HttpResponseRedirect(answer["login_url"])


class OpenWordPressAdmin(OnEnvironment, ObjectAction):
    name = "open_wordpress_admin"
    label = "Open WordPress admin"
    description = "Open WordPress admin (one selected environment)"
    permission = "environments.magic_login_environment"
    when_active = True
    one_only = True

    def run(self, request, objects):
        return magic_login_redirect(self.modeladmin, request, objects[0])


class WordPressAdminFromList(ObjectPage):
    """The list's "Open" button: POST only (it creates a login link), CSRF-checked."""

    name = "wp_admin"
    path = "wp-admin"
    permission = "environments.magic_login_environment"
    methods = ("POST",)

    def post(self, request, environment):
        return magic_login_redirect(self.modeladmin, request, environment,
                                    back=admin_url(self.modeladmin.model, "changelist"))


class CloneEnvironment(OnEnvironment, FormPage):
    """A form that calls services.create_environment with this environment as source."""

    name = path = "clone"
    label = "Clone environment"
    action_name = "clone_environment"
    description = "Clone environment (one selected environment)"
    permission = "environments.add_environment"
    when_active = True
    on_production = "open"
    form_class = CloneEnvironmentForm
    submit = "Clone"

    def title(self, source):
        return f"Clone environment {source}"

    def intro(self, source):
        return (f"Copies {source} (code, uploads and database) into a new environment of site {source.site.slug} "
                f"on node {source.node.name}, with its own preview URL. Mail from the copy is held and search "
                "engines are kept away. You are taken to the job to follow it.")

    def perform(self, request, source, data):
        # Refused by the service: its message is shown above the form, kept as typed.
        return run_job_action(
            self.modeladmin, request, [source], action="environment.create",
            call=lambda environment: services.create_environment(
                site_id=environment.site_id, source_environment_id=environment.pk, name=data["name"],
                slug=data["slug"], environment_type=data["type"], promotion_preset=data["promotion_preset"],
                user=request.user,
            ),
            label=lambda environment: f"Clone of {environment} as {data['slug']}",
            done="copy queued as",
        )


class DeployPage(OnEnvironment, FormPage):
    """A git ref or an uploaded archive -> services (store the archive, queue env_deploy)."""

    name = path = "deploy"
    label = "Deploy"
    action_name = "deploy_environment"
    description = "Deploy (one selected environment)"
    permission = "environments.deploy_environment"
    when_active = True
    form_class = DeployForm
    submit = "Deploy"

    def allowed_on(self, request, environment):
        return may_act_on_environment(request.user, environment, self.permission)

    def title(self, environment):
        return f"Deploy to {environment}"

    def intro(self, environment):
        repository = environment.git_repository or "none set (give <repository>#<ref>)"
        return (f"Builds a new release from a git ref (repository: {repository}) or from an archive, checks that "
                "WordPress loads from it, switches to it and checks its health; an unhealthy release is rolled "
                "back by itself. You are taken to the job to follow it.")

    def perform(self, request, environment, data):
        def queue(target):
            if data["archive"]:
                stored = services.store_deploy_archive(target.pk, data["archive"], filename=data["archive"].name,
                                                       user=request.user)
                return services.deploy(target.pk, source_type="upload", source_ref=str(stored.pk), user=request.user)
            return services.deploy(target.pk, source_type="git", source_ref=data["git_ref"].strip(),
                                   user=request.user)

        return run_job_action(self.modeladmin, request, [environment], action="environment.deploy", call=queue,
                              label=lambda target: f"Deploy to {target}", done="deploy queued as")


class GitRepositoryPage(OnEnvironment, FormPage):
    """Set the repository git deploys fetch from; shows the environment's deploy key."""

    name = "git_repository"
    path = "git-repository"
    label = "Git repository"
    action_name = "edit_git_repository"
    description = "Git repository and deploy key (one selected environment)"
    permission = "environments.deploy_environment"
    form_class = GitRepositoryForm

    def allowed_on(self, request, environment):
        return may_act_on_environment(request.user, environment, self.permission)

    def title(self, environment):
        return f"Git repository of {environment}"

    def intro(self, environment):
        return ("Git deploys fetch from this repository. For an ssh repository, add the deploy key below to the "
                "repository host as a read-only deploy key (it is made when a repository is first set).")

    def initial(self, environment):
        return {"repository_url": environment.git_repository}

    def extra(self, environment):
        return {"public_key": environment.deploy_key_public, "public_key_intro": "This environment's deploy key:"}

    def perform(self, request, environment, data):
        url, new_key = data["repository_url"], data["new_deploy_key"]
        return run_service_action(
            self.modeladmin, request, [environment], action="environment.set_git_repository",
            call=lambda target: services.set_git_repository(target.pk, url, new_deploy_key=new_key, user=request.user),
            done=lambda changed: f"repository set to {changed.git_repository or '(none)'}.",
        )


class HeldMailPage(OnEnvironment, ObjectPage):
    """The latest mails the environment held back, read from its node on each visit."""

    name = "held_mail"
    path = "held-mail"
    label = "Held mail"
    action_name = "show_held_mail"
    description = "Show held mail (one selected environment)"
    # Held mail is production's customers' mail (addresses, order texts):
    # the same permission as logging in to the environment's WordPress.
    permission = "environments.magic_login_environment"
    when_active = True
    on_production = "never"  # production sends its mail; there is never any to read
    template = "admin/environments/held_mail.html"

    def title(self, environment):
        return f"Held mail of {environment}"

    def context(self, request, environment):
        mails, error = [], ""
        try:
            mails = held_mail.held_mail(environment.pk, limit=held_mail.HELD_MAIL_MAX)
        except ApiError as exc:
            error = exc.message
        return {"mails": mails, "error": error, "limit": held_mail.HELD_MAIL_MAX,
                "is_production": is_production(environment)}


def queue_run_scheduled(modeladmin, request, environments):
    """The admin's doors to running held scheduled work once (the action, the
    holds page's button): services.run_scheduled decides, audited like the API."""
    return run_job_action(
        modeladmin, request, environments, action="environment.run_scheduled",
        call=guarded(request.user, "environments.change_environment",
                     lambda environment: services.run_scheduled(environment.pk, user=request.user)),
        label=lambda environment: f"Environment {environment}",
        done="held scheduled work queued to run once as",
    )


class RunScheduledWork(OnEnvironment, ObjectAction):
    name = "run_scheduled_work"
    label = "Run held scheduled work once"
    description = "Run held scheduled work once (WP-Cron and Action Scheduler)"
    permission = "environments.change_environment"
    audit = "environment.run_scheduled"
    when_active = True
    on_production = "never"  # production runs its own
    done = "held scheduled work queued to run once as"

    def call(self, request, environment):
        return services.run_scheduled(environment.pk, user=request.user)


class StagingHoldsPage(OnEnvironment, ObjectPage):
    """Which holds are on, the due work held back, the latest outgoing requests;
    a button runs the held scheduled work once (POST)."""

    name = "staging_holds"
    path = "holds"
    label = "Holds and outgoing requests"
    action_name = "show_staging_holds"
    description = "Holds and outgoing requests (one selected environment)"
    # The copy's shop: its scheduled orders, the hosts it calls. As private as its held mail.
    permission = "environments.magic_login_environment"
    when_active = True
    on_production = "never"  # production holds nothing back
    methods = ("GET", "POST")
    template = "admin/environments/staging_holds.html"

    def title(self, environment):
        return f"Holds and outgoing requests of {environment}"

    def context(self, request, environment):
        holds, requests, error = None, [], ""
        try:
            holds, requests = staging_holds.overview(environment.pk, limit=staging_holds.REQUESTS_MAX)
        except ApiError as exc:
            error = exc.message
        return {"holds": holds, "requests": requests, "error": error, "limit": staging_holds.REQUESTS_MAX,
                "can_run": may_act_on_environment(request.user, environment, "environments.change_environment")}

    def post(self, request, environment):
        outcome = queue_run_scheduled(self.modeladmin, request, [environment])
        return HttpResponseRedirect(admin_url(outcome.jobs[0]) if outcome.jobs else self.url_for(environment))


class OutgoingAllowListPage(OnEnvironment, FormPage):
    """The hosts a staging or clone environment's WordPress may reach."""

    name = "outgoing_allow_list"
    path = "outgoing-allow-list"
    label = "Outgoing allow-list"
    action_name = "edit_outgoing_allow_list"
    description = "Outgoing allow-list (one selected environment)"
    permission = "environments.change_environment"
    when_active = True
    on_production = "never"
    form_class = OutgoingAllowListForm

    def title(self, environment):
        return f"Outgoing allow-list of {environment}"

    def intro(self, environment):
        return ("WordPress on this copy reaches no other host than its own and those listed here: payment "
                "processors and every other host are refused, and each attempt is listed under Holds and "
                "outgoing requests. The list is written to the environment's wp-config.php at once.")

    def initial(self, environment):
        return {"hosts": "\n".join(environment.outgoing_allowed_hosts or [])}

    def perform(self, request, environment, data):
        hosts = [line.strip() for line in data["hosts"].replace(",", "\n").splitlines() if line.strip()]
        return run_service_action(
            self.modeladmin, request, [environment], action="environment.set_outgoing_allow_list",
            call=lambda target: services.set_outgoing_allowed_hosts(target.pk, hosts, user=request.user),
            done=lambda changed: f"outgoing allow-list set to {', '.join(changed.outgoing_allowed_hosts) or '(none)'}.",
        )


def queue_rollback(modeladmin, request, release):
    """Both admin doors to a rollback (the release's action, the environment's
    release list) go through here: services.rollback decides, the attempt is
    audited on the environment like the API's, and a queued job is in the outcome."""
    return run_job_action(
        modeladmin, request, [release.environment],
        action="environment.rollback",
        call=guarded(request.user, "environments.deploy_environment",
                     lambda environment: services.rollback(environment.pk, release.pk, user=request.user)),
        label=lambda environment: f"Environment {environment}, release {release.directory}",
        done="rollback queued as",
    )


class ReleasesPage(OnEnvironment, ObjectPage):
    """The environment's releases, newest first, each healthy one with a button
    that rolls the environment back to it (POST release_id)."""

    name = path = "releases"
    label = "Releases and rollback"
    action_name = "show_releases"
    description = "Releases and rollback (one selected environment)"
    permission = "environments.deploy_environment"
    on_production = "open"
    methods = ("GET", "POST")
    template = "admin/environments/releases.html"

    def title(self, environment):
        return f"Releases of {environment}"

    def context(self, request, environment):
        return {
            "releases": list(environment.releases.order_by("-created_at")[:RELEASES_SHOWN]),
            "shown": RELEASES_SHOWN,
            "can_roll_back": environment.status == LifecycleStatus.ACTIVE
            and may_act_on_environment(request.user, environment, self.permission),
        }

    def post(self, request, environment):
        here = self.url_for(environment)
        release = environment.releases.filter(pk=_uuid_or_none(request.POST.get("release_id"))).first()
        if release is None:
            self.modeladmin.message_user(request, "That release no longer exists; pick one from the list.",
                                         messages.ERROR)
            return HttpResponseRedirect(here)
        outcome = queue_rollback(self.modeladmin, request, release)
        # Refused (unhealthy release, environment busy): the message shows on this page again.
        return HttpResponseRedirect(admin_url(outcome.jobs[0]) if outcome.jobs else here)


class RollBackToRelease(ObjectAction):
    """The release page's button (and the releases changelist's action)."""

    name = "rollback_to_release"
    label = "Roll back to this release"
    description = "Roll back to this release (one selected release)"
    permission = "environments.deploy_environment"
    one_only = True

    def shown(self, request, release):
        # Offered where it can work; the action still lets the service refuse
        # anything else, with its reason.
        return (release.health == ReleaseHealth.HEALTHY and release.environment.current_release_id != release.pk
                and may_act_on_environment(request.user, release.environment))

    def confirmation(self, objects):
        environment = objects[0].environment
        live = environment.current_release
        return dict(
            title="Roll back to this release",
            question=f"Make this release the live code of environment {environment} again? The environment's "
                     "current code is switched to it, PHP-FPM reloaded and its page cache purged; the database "
                     "and uploads are not changed.",
            button="Yes, roll back",
            details=lambda release: [
                ("environment", str(environment)),
                ("live release now", live.directory if live else "none"),
                ("source", f"{release.get_source_type_display()} {release.source_ref}"),
                ("health", release.get_health_display()),
            ],
        )

    def run(self, request, objects):
        release = objects[0]
        outcome = queue_rollback(self.modeladmin, request, release)
        if outcome.jobs:
            return HttpResponseRedirect(admin_url(outcome.jobs[0]))
        if request.POST.get("_return_to_object"):
            # Refused from the release's own page: back there, not to the environment's.
            return HttpResponseRedirect(admin_url(release))
        return None


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class UpdatesPage(OnEnvironment, ObjectPage):
    """What WordPress's update check offers the environment (asked on the node
    at each visit): core, each plugin and theme with installed -> available,
    and "Update all" and per-scope buttons (POST scope) that queue env_update."""

    name = path = "updates"
    label = "Updates"
    action_name = "show_updates"
    description = "Updates (one selected environment)"
    permission = "environments.deploy_environment"
    when_active = True
    methods = ("GET", "POST")
    template = "admin/environments/updates.html"

    def allowed_on(self, request, environment):
        return may_act_on_environment(request.user, environment, self.permission)

    def title(self, environment):
        return f"Updates of {environment}"

    def context(self, request, environment):
        from apps.backups import storage
        from apps.environments import updates

        offer, error = None, ""
        try:
            offer = services.available_updates(environment.pk)
        except ApiError as exc:
            error = exc.message
        rows = []
        if offer:
            core = offer.get("core") or {}
            rows.append({"kind": "core", "name": "WordPress", "installed": core.get("installed"),
                         "available": core.get("available"), "active": False})
            for kind, key in (("plugin", "plugins"), ("theme", "themes")):
                rows += [dict(row, kind=kind) for row in offer.get(key) or []]
        counts = {scope: len(updates.available_updates(offer or {}, scope)) for scope in updates.SCOPES}
        buttons = [("all", "Update all", counts["all"]), ("core", "Update core", counts["core"]),
                   ("plugins", "Update plugins", counts["plugins"]), ("themes", "Update themes", counts["themes"])]
        return {"offer": offer, "rows": rows, "error": error, "buttons": buttons,
                "backups_on": storage.configured_storage() is not None, "backups_hint": storage.NOT_CONFIGURED_HINT,
                "can_update": environment.status == LifecycleStatus.ACTIVE}

    def post(self, request, environment):
        scope = request.POST.get("scope", "")
        outcome = run_job_action(
            self.modeladmin, request, [environment], action="environment.update",
            call=lambda target: services.request_update(target.pk, scope, user=request.user),
            label=lambda target: f"Environment {target}, {scope} updates",
            done="update queued as",
        )
        return HttpResponseRedirect(admin_url(outcome.jobs[0]) if outcome.jobs else self.url_for(environment))
