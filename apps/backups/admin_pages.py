"""The environment admin's "Backup schedule" page: the same service as
``PUT /api/environments/{id}/backup-schedule``, audited once."""

from django import forms
from django.utils import timezone

from apps.backups import schedules
from apps.backups.choices import BackupScope
from apps.core.admin_actions import run_service_action
from apps.core.admin_pages import FormPage
from apps.environments.admin_pages import OnEnvironment


class BackupScheduleForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Back up daily")
    backup_scope = forms.ChoiceField(choices=BackupScope.choices, label="What")
    window_start = forms.TimeField(input_formats=["%H:%M"], label="Window opens (UTC, HH:MM)",
                                   widget=forms.TimeInput(format="%H:%M"))
    window_hours = forms.IntegerField(min_value=1, max_value=24, label="Window length (hours)")
    retention_days = forms.IntegerField(min_value=1, max_value=3650, label="Keep backups (days)",
                                        help_text="Applies to this environment's backups taken from now on.")


class BackupSchedulePage(OnEnvironment, FormPage):
    name = "backup_schedule"
    path = "backup-schedule"
    label = "Backup schedule"
    action_name = "edit_backup_schedule"
    description = "Backup schedule and retention (one selected environment)"
    permission = "backups.change_backupschedule"
    form_class = BackupScheduleForm

    def title(self, environment):
        return f"Backup schedule of {environment}"

    def intro(self, environment):
        schedule = schedules.effective(environment)
        state = "the defaults (production backs up daily, other environments do not)" \
            if schedule._state.adding else "stored"
        when = (f"The next window opens {schedules.next_window_start(schedule, timezone.now()):%Y-%m-%d %H:%M} UTC."
                if schedule.enabled else "It does not back up by itself now.")
        return (f"One backup per daily window, queued after operators' jobs; this schedule is {state}. {when} "
                "Backups are kept for the retention below, then removed from the storage by backup_cleanup.")

    def initial(self, environment):
        schedule = schedules.effective(environment)
        return {"enabled": schedule.enabled, "backup_scope": schedule.backup_scope,
                "window_start": schedule.window_start, "window_hours": schedule.window_hours,
                "retention_days": schedule.retention_days}

    def perform(self, request, environment, data):
        return run_service_action(
            self.modeladmin, request, [environment], action="environment.backup_schedule",
            call=lambda target: schedules.set_schedule(target.pk, **data),
            done=lambda schedule: "backup schedule saved.",
        )
