import factory

from apps.nodes.choices import NodeStatus
from apps.nodes.models import Node


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node

    name = factory.Sequence(lambda n: f"node-{n}")
    hostname = "127.0.0.1"
    public_ipv4 = "127.0.0.1"
    status = NodeStatus.ACTIVE
