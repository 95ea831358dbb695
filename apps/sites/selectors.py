from django.db.models import OuterRef, Subquery

from apps.environments.choices import EnvironmentType
from apps.environments.models import Environment
from apps.sites.models import Site


def sites_with_primary_environment():
    production = Environment.objects.filter(site=OuterRef("pk"), environment_type=EnvironmentType.PRODUCTION)
    return Site.objects.annotate(primary_environment_id=Subquery(production.values("pk")[:1]))
