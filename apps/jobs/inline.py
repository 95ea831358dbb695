"""Running a queued job in the current process, for management commands' --wait."""

from django.core.management.base import CommandError

from apps.jobs.models import Job, JobLogLine
from apps.jobs.runner import run_job


def run_and_report(job, write) -> Job | None:
    """Run ``job`` here and ``write`` its log lines. Returns the finished job,
    or None when a worker had claimed it first (it then goes on there).
    Raises CommandError if the job did not succeed."""
    # A worker may have been told about the job too; the claim lets only one run it.
    outcome = run_job(str(job.pk))
    for line in JobLogLine.objects.filter(job=job).order_by("seq"):
        write(f"[{line.level}] {line.message}")
    job = Job.objects.get(pk=job.pk)
    if outcome == "not-claimed":
        write(f"A worker took the job; follow it with GET /api/jobs/{job.pk}/log. Status: {job.status}")
        return None
    if job.status != "succeeded":
        raise CommandError(f"{job.job_type} {job.status}: {job.error_code} {job.error_message}".rstrip())
    return job
