import json

from django.contrib import admin
from django.db.models import Max
from django.forms.models import BaseInlineFormSet
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.utils.html import format_html

from apps.core.admin_actions import ObjectAction
from apps.core.admin_helpers import (
    CappedCountPaginator,
    ReadOnlyAdminMixin,
    change_link,
    changelist_link,
    status_badge,
)
from apps.core.admin_pages import ObjectPage, PanelModelAdmin
from apps.jobs import services
from apps.jobs.choices import CAN_CANCEL, JobStatus
from apps.jobs.models import Job, JobLogLine
from apps.jobs.registry import registered_job_types

LOG_TAIL_LINES = 500


class LogTailFormSet(BaseInlineFormSet):
    """Only the last lines of a long log: the full log is one click away, paginated."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        last = self.queryset.aggregate(last=Max("seq"))["last"]
        if last is not None and last > LOG_TAIL_LINES:
            self.queryset = self.queryset.filter(seq__gt=last - LOG_TAIL_LINES)


class JobLogLineInline(admin.TabularInline):
    model = JobLogLine
    formset = LogTailFormSet
    classes = ("pressluft-log",)
    fields = ("seq", "created_at", "level_column", "message")
    readonly_fields = fields
    ordering = ("seq",)
    extra = 0
    can_delete = False
    verbose_name = "log line"
    verbose_name_plural = f"Log (last {LOG_TAIL_LINES} lines)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Level")
    def level_column(self, obj):
        return _level_badge(obj.level)


def _level_badge(level):
    mapping = {"error": "failed", "warning": "running", "step": "queued"}
    return status_badge(mapping.get(level, "cancelled"), level)


class JobTypeFilter(admin.SimpleListFilter):
    """Choices from the handler registry: a DISTINCT over the jobs table would scan all of it."""

    title = "job type"
    parameter_name = "job_type"

    def lookups(self, request, model_admin):
        return [(job_type, job_type) for job_type in registered_job_types()]

    def queryset(self, request, queryset):
        return queryset.filter(job_type=self.value()) if self.value() else queryset


class JobAction(ObjectAction):
    permission = "jobs.change_job"

    def label_of(self, job):
        return f"Job {job.job_type} {str(job.pk)[:8]}"


class CancelJob(JobAction):
    name = "cancel_jobs"
    label = "Cancel job"
    description = "Cancel selected jobs"
    audit = "job.cancel"
    queues_job = False

    def shown(self, request, job):
        return job.status in CAN_CANCEL

    def call(self, request, job):
        return services.cancel_job(job.pk, user=request.user)

    @staticmethod
    def done(job):
        return "cancelled." if job.status == JobStatus.CANCELLED else "asked to stop; it ends at its next safe point."


class RetryJob(JobAction):
    name = "retry_jobs"
    label = "Retry job"
    description = "Retry selected failed jobs"
    audit = "job.retry"
    done = "queued a new run as"

    def shown(self, request, job):
        return job.status in services.RETRYABLE_BY_OPERATOR

    def call(self, request, job):
        return services.retry_job(job.pk, user=request.user)


class LogTail(ObjectPage):
    """Log lines after ``?after=<seq>`` and the job's status, for live-log.js."""

    name = "log_tail"
    path = "log-tail"

    # A script reads this URL: a job it may not see is as missing as one that
    # does not exist, and neither answer is a redirect to the index.
    def allowed(self, request):
        return True

    def allowed_on(self, request, job):
        if not self.modeladmin.has_view_permission(request, job):
            raise Http404("No such job.")
        return True

    def not_found(self, request, object_id):
        raise Http404("No such job.")

    def get(self, request, job):
        try:
            after = int(request.GET.get("after", "0"))
        except ValueError:
            after = 0
        lines = job.log_lines.filter(seq__gt=after).order_by("seq")[:LOG_TAIL_LINES]
        return JsonResponse({
            "status": job.status,
            "finished": job.status not in CAN_CANCEL,
            "lines": [{"seq": line.seq, "level": line.level, "message": line.message} for line in lines],
        })


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Jobs are created by services and moved by workers; the operator watches
    them and may cancel one."""

    list_display = (
        "short_id", "job_type", "status_column", "priority", "site_link", "environment_link", "node", "attempts",
        "created_at", "started_at", "finished_at", "error_code",
    )
    list_display_links = ("short_id",)
    list_filter = ("status", JobTypeFilter, "priority", "cancel_requested", "node", ("created_at", admin.DateFieldListFilter))
    search_fields = ("job_type", "error_code", "site__slug", "environment__slug", "node__name")
    list_select_related = ("site", "environment__site", "node")
    show_full_result_count = False
    paginator = CappedCountPaginator
    fieldsets = (
        (None, {"fields": ("id", "job_type", "status_column", "site_link", "environment_link", "node", "created_by", "log_link",
                           "live_log")}),
        ("Error", {"fields": ("error_code", "error_message")}),
        (
            "Progress",
            {"fields": ("priority", "attempts", "run_after", "timeout_seconds", "cancel_requested", "created_at", "started_at",
                        "finished_at")},
        ),
        (
            "Worker",
            {"classes": ("collapse",),
             "fields": ("locked_by", "locked_at", "heartbeat_at", "last_dispatched_at", "dedup_key", "state_version")},
        ),
        ("Data", {"classes": ("collapse",), "fields": ("payload_json", "result_json")}),
    )
    readonly_fields = (
        "id", "job_type", "status_column", "site_link", "environment_link", "node", "created_by", "log_link", "live_log",
        "error_code", "error_message", "priority", "attempts", "run_after", "timeout_seconds", "cancel_requested",
        "created_at", "started_at", "finished_at", "locked_by", "locked_at", "heartbeat_at", "last_dispatched_at",
        "dedup_key", "state_version", "payload_json", "result_json",
    )
    inlines = (JobLogLineInline,)
    object_actions = (CancelJob(), RetryJob(), LogTail())

    @admin.display(description="Job", ordering="created_at")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        label = obj.get_status_display()
        if obj.cancel_requested and obj.status == JobStatus.RUNNING:
            label = "running (cancel requested)"
        return status_badge(obj.status, label)

    @admin.display(description="Site", ordering="site__slug")
    def site_link(self, obj):
        return change_link(obj.site, obj.site.slug) if obj.site_id else "-"

    @admin.display(description="Environment")
    def environment_link(self, obj):
        return change_link(obj.environment) if obj.environment_id else "-"

    @admin.display(description="Attempts")
    def attempts(self, obj):
        return f"{obj.attempt_count}/{obj.max_attempts}"

    @admin.display(description="Full log")
    def log_link(self, obj):
        return changelist_link(JobLogLine, "all log lines", job=obj.pk)

    @admin.display(description="Live log")
    def live_log(self, obj):
        if obj.status not in CAN_CANCEL:
            return "-"
        last = obj.log_lines.aggregate(last=Max("seq"))["last"] or 0
        return format_html(
            '<div id="pressluft-live-log" data-url="{}" data-after="{}">'
            '<p>Following the job as it runs: <strong class="pressluft-live-state">{}</strong></p>'
            '<pre style="max-height: 24em; overflow: auto;"></pre></div>',
            reverse("admin:jobs_job_log_tail", args=[obj.pk]), last, obj.status,
        )

    class Media:
        js = ("pressluft/live-log.js",)

    @admin.display(description="Payload")
    def payload_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.display(description="Result")
    def result_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.result, indent=2, sort_keys=True))


@admin.register(JobLogLine)
class JobLogLineAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    list_display = ("job_link", "seq", "created_at", "level_column", "message")
    list_display_links = None
    list_filter = ("level",)
    search_fields = ("message",)
    list_select_related = ("job",)
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 200
    fields = ("job_link", "seq", "created_at", "level_column", "message")
    readonly_fields = fields

    @admin.display(description="Job", ordering="job")
    def job_link(self, obj):
        return change_link(obj.job, f"{obj.job.job_type} {str(obj.job_id)[:8]}")

    @admin.display(description="Level", ordering="level")
    def level_column(self, obj):
        return _level_badge(obj.level)
