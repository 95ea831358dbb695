"""API routes of jobs (mounted under /api/ by pressluft/urls.py)."""

from django.urls import path

from apps.jobs.api import JobCancelView, JobDetailView, JobListView, JobLogView, JobRetryView

urlpatterns = [
    path("jobs", JobListView.as_view(), name="job-list"),
    path("jobs/<uuid:id>", JobDetailView.as_view(), name="job-detail"),
    path("jobs/<uuid:id>/cancel", JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<uuid:id>/log", JobLogView.as_view(), name="job-log"),
    path("jobs/<uuid:id>/retry", JobRetryView.as_view(), name="job-retry"),
]
