"""A restore switches release and uploads without reloading PHP-FPM
(apps/nodes/remote/php_opcache.py): on the real local node, the first
request after it runs the restored release's code and the restored PHP file
in the uploads (shared/uploads: one real path whatever the release), even
though the opcache held the later version of that file a moment before."""

from pathlib import Path

import pytest

from apps.environments import naming
from apps.jobs import runner
from tests.backups.restore_support import as_site, back_up, restore
from tests.sites.test_deploy_e2e import deploy
from tests.sites.test_site_lifecycle_e2e import create_site, job_log
from tests.sites.test_switch_opcache_e2e import asked_the_pool, backdate, probe, repository  # noqa: F401  (its fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_restore_serves_the_restored_code_at_once_without_a_reload(api_client, local_node, backup_storage,
                                                                    repository):
    site, production = create_site(api_client, "Rho Restore", "rho")
    try:
        kept = Path(naming.root(production)) / "shared" / "uploads" / "pressluft-probe.php"
        job = deploy(api_client, production, f"{repository}#p1")
        assert job.status == "succeeded", job_log(job.pk)
        as_site(production, "tee", str(kept), input=b"<?php return 'then';\n")
        backup = back_up(api_client, production, "full")

        job = deploy(api_client, production, f"{repository}#p2")
        assert job.status == "succeeded", job_log(job.pk)
        as_site(production, "tee", str(kept), input=b"<?php return 'later';\n")
        backdate(kept)
        assert probe(production) == {"release": "v2", "config": "none", "uploads": "later"}
        assert probe(production)["uploads"] == "later"  # now cached

        job = restore(api_client, production, backup)
        assert job.status == "succeeded", job_log(job.pk)
        assert asked_the_pool(job.pk), job_log(job.pk)
        assert probe(production) == {"release": "v1", "config": "none", "uploads": "then"}
    finally:
        runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
