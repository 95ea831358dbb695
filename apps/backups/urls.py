"""API routes of backups (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.backups.api import EnvironmentBackupListView, EnvironmentBackupScheduleView

urlpatterns = [
    path("environments/<uuid:id>/backups", EnvironmentBackupListView.as_view(), name="environment-backups"),
    path("environments/<uuid:id>/backup-schedule", EnvironmentBackupScheduleView.as_view(),
         name="environment-backup-schedule"),
]
