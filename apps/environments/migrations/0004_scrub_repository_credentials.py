"""Repository URLs with credentials are refused from now on
(apps/environments/repository_urls.py); the ones stored before lose them
here, so the admin and the API stop showing them. A deploy from such a
repository then fails to authenticate until it is reached over ssh with the
environment's deploy key."""

from urllib.parse import urlsplit, urlunsplit

from django.db import migrations

SSH_SCHEMES = {"ssh", "git+ssh", "ssh+git"}


def without_credentials(url: str) -> str:
    if "://" not in url:
        user, at, rest = url.partition("@")
        return f"{user.split(':', 1)[0]}@{rest}" if at and ":" in user else url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    scheme = parts.scheme.lower()
    if scheme in SSH_SCHEMES:
        netloc = f"{userinfo.split(':', 1)[0]}@{host}" if at else host
    else:
        netloc = host
    query = "" if scheme in {"http", "https"} else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def without_credentials_in_ref(source_ref: str) -> str:
    repository, hash_sign, ref = source_ref.rpartition("#")
    return f"{without_credentials(repository)}#{ref}" if hash_sign else source_ref


def scrub(apps, schema_editor):
    Environment = apps.get_model("environments", "Environment")
    Release = apps.get_model("environments", "Release")
    Job = apps.get_model("jobs", "Job")
    for environment in Environment.objects.exclude(git_repository="").filter(git_repository__contains="@"):
        cleaned = without_credentials(environment.git_repository)
        if cleaned != environment.git_repository:
            Environment.objects.filter(pk=environment.pk).update(git_repository=cleaned)
    for release in Release.objects.filter(source_type="git", source_ref__contains="@"):
        cleaned = without_credentials_in_ref(release.source_ref)
        if cleaned != release.source_ref:
            Release.objects.filter(pk=release.pk).update(source_ref=cleaned)
    for job in Job.objects.filter(job_type="env_deploy").iterator():
        payload = dict(job.payload or {})
        if isinstance(payload.get("repository"), str):
            payload["repository"] = without_credentials(payload["repository"])
        if isinstance(payload.get("source_ref"), str) and payload.get("source_type") == "git":
            payload["source_ref"] = without_credentials_in_ref(payload["source_ref"])
        if payload != job.payload:
            Job.objects.filter(pk=job.pk).update(payload=payload)


class Migration(migrations.Migration):
    dependencies = [
        ("environments", "0003_environment_action_permissions"),
        ("jobs", "0002_job_retry_of"),
    ]

    operations = [migrations.RunPython(scrub, migrations.RunPython.noop)]
