import factory
from django.contrib.auth.models import Group

from apps.accounts.models import User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"staff{n}@example.test")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        """``groups=["Developers"]``: names of groups (the role groups exist after migrate)."""
        if create and extracted:
            found = list(Group.objects.filter(name__in=extracted))
            if len(found) != len(set(extracted)):
                raise LookupError(f"no group named {sorted(set(extracted) - {g.name for g in found})}")
            obj.groups.set(found)
