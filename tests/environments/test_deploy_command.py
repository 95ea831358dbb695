"""manage.py deploy_environment: the same checks as the API, then a queued deploy."""

import pytest
from django.core.management import CommandError, call_command

from apps.environments.models import DeployArchive
from apps.jobs.models import Job
from tests.api.test_deploy_sources import THEME, archive_dir, site_with_production  # noqa: F401 (fixtures)
from tests.environments.archives import make_tar

pytestmark = pytest.mark.django_db


def test_an_archive_is_checked_stored_and_deployed(site_with_production, tmp_path, capsys):
    site, production = site_with_production
    call_command("deploy_environment", site.slug, production.slug, "--archive", make_tar(tmp_path / "a.tar.gz", THEME))
    job = Job.objects.get(pk=capsys.readouterr().out.strip())
    archive = DeployArchive.objects.get()
    assert (job.job_type, job.payload["archive_id"], archive.environment_id) == ("env_deploy", str(archive.pk), production.pk)


def test_bad_sources_are_refused_with_the_reason(site_with_production, tmp_path):
    site, production = site_with_production
    evil = make_tar(tmp_path / "evil.tar.gz", THEME + [("site/themes/lark/x", "symlink", "/etc")])
    with pytest.raises(CommandError, match="archive_invalid: .*leads outside"):
        call_command("deploy_environment", site.slug, production.slug, "--archive", evil)
    with pytest.raises(CommandError, match="no git repository"):
        call_command("deploy_environment", site.slug, production.slug, "--ref", "main")
    with pytest.raises(CommandError, match="no environment"):
        call_command("deploy_environment", site.slug, "nope", "--ref", "main")
    assert not Job.objects.exists() and not DeployArchive.objects.exists()


def test_a_ref_of_a_given_repository(site_with_production):
    site, production = site_with_production
    call_command("deploy_environment", site.slug, production.slug, "--ref", "v1", "--repository",
                 "https://git.example.test/shop.git")
    job = Job.objects.get()
    assert (job.payload["repository"], job.payload["ref"]) == ("https://git.example.test/shop.git", "v1")
