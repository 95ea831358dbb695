"""Nodes API (beyond the reference contract): register, list, change job slots, provision, health."""

from django.http import QueryDict
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import needs, require
from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.core.api_views import job_accepted
from apps.core.schema import error_responses, ok
from apps.core.serializers import JobResponseSerializer, StrictSerializer
from apps.nodes import keys, services
from apps.nodes.health import check_health
from apps.nodes.models import Node
from apps.nodes.serializers import (
    NodeHealthSerializer,
    NodeSerializer,
    NodeUpdateSerializer,
    PublicKeySerializer,
    RegisterNodeSerializer,
)



@extend_schema_view(get=extend_schema(
    operation_id="listNodes", tags=["Nodes"], summary="List nodes",
    responses={200: ok(NodeSerializer(many=True), "All nodes."), **error_responses(401)},
))
class NodeListView(generics.ListAPIView):
    required_permissions = {"GET": needs("nodes.view_node"), "POST": needs("nodes.add_node")}
    serializer_class = NodeSerializer
    queryset = Node.objects.order_by("name")

    @extend_schema(
        operation_id="registerNode",
        tags=["Nodes"],
        summary="Register a node",
        description=(
            "Connects once over SSH with the panel's key and pins the node's host key. "
            "Install the key from `GET /api/nodes/public-key` on the node first."
        ),
        request=RegisterNodeSerializer,
        responses={201: ok(NodeSerializer, "The node, status provisioning."), **error_responses(400, 401, 409, 502)},
    )
    def post(self, request):
        body = RegisterNodeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        audit.annotate(request, action="node.register", resource_type="node")
        node = services.register_node(**body.validated_data)
        audit.annotate(request, resource=node)
        return Response(NodeSerializer(node).data, status=201)


@extend_schema_view(get=extend_schema(
    operation_id="getNode", tags=["Nodes"], summary="Get one node",
    responses={200: ok(NodeSerializer, "The node."), **error_responses(401, 404)},
))
class NodeDetailView(generics.RetrieveAPIView):
    required_permissions = {"GET": needs("nodes.view_node"), "PATCH": needs("nodes.manage_node")}
    serializer_class = NodeSerializer
    queryset = Node.objects.all()
    lookup_url_kwarg = "id"

    @extend_schema(
        operation_id="updateNode", tags=["Nodes"], summary="Change a node's settings",
        description="Fields left out stay as they are. `max_site_jobs`: how many site jobs run on the node at once. Raising it starts "
                    "waiting jobs at once; running jobs are not stopped by lowering it.",
        request=NodeUpdateSerializer,
        responses={200: ok(NodeSerializer, "The node."), **error_responses(400, 401, 404, 409)},
    )
    def patch(self, request, id):
        audit.annotate(request, action="node.update", resource_type="node", resource_id=id)
        body = NodeUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "max_site_jobs" in body.validated_data:
            node = services.set_max_site_jobs(id, body.validated_data["max_site_jobs"])
        else:  # nothing to change
            node = get_object_or_404(Node, pk=id)
        return Response(NodeSerializer(node).data)


class ProvisionOptionsSerializer(StrictSerializer):
    apply_firewall = serializers.BooleanField(
        required=False,
        help_text="Load the nftables rules (22/80/443). Default: yes, except on the local node, "
                  "where the panel's own port could be cut off. The rules file is written either way.",
    )
    listen_address = serializers.IPAddressField(
        protocol="IPv4", required=False, allow_blank=True,
        help_text="Address Nginx's default server listens on; empty for all addresses. "
                  "Default: the panel's NODE_LISTEN_ADDRESS setting (PRESSLUFT_NODE_LISTEN_ADDRESS).",
    )
    extra_tcp_ports = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=65535), required=False, max_length=20,
        help_text="More TCP ports the firewall lets in.",
    )


class NodeProvisionView(APIView):
    required_permissions = {"POST": needs("nodes.manage_node")}

    @extend_schema(operation_id="provisionNode", tags=["Nodes"], summary="Install and configure the node's stack",
                   description="Idempotent: provisioning a provisioned node changes nothing. The body is optional.",
                   request=ProvisionOptionsSerializer, responses={202: ok(JobResponseSerializer, "Provisioning job queued."),
                                                             **error_responses(400, 401, 404, 409)})
    def post(self, request, id):
        node = generics.get_object_or_404(Node, pk=id)
        # No body at all is the defaults; a body that is not an object (null, [], 0) is refused.
        no_body = isinstance(request.data, QueryDict) and not request.data
        body = ProvisionOptionsSerializer(data={} if no_body else request.data)
        body.is_valid(raise_exception=True)
        job = services.provision_node(node, user=request.user, options=body.validated_data)
        return job_accepted(request, job, action="node.provision", resource=node)


# The values ?refresh= takes, and whether each asks for a live check.
REFRESH_VALUES = {"1": True, "true": True, "0": False, "false": False}


class NodeHealthView(APIView):
    # A live check (refresh=1) is the admin's "Refresh health": nodes.manage_node, checked below.
    required_permissions = {"GET": needs("nodes.view_node")}

    @extend_schema(
        operation_id="getNodeHealth",
        tags=["Nodes"],
        summary="The node's health: services, disk, memory, versions",
        description="The last recorded report; with `refresh=1` a live check on the node first (at most 10 s), "
                    "which needs `nodes.manage_node` as well.",
        parameters=[OpenApiParameter(
            "refresh", {"type": "string", "enum": list(REFRESH_VALUES)},
            description="`1` or `true`: check the node now; `0` or `false` (the default): the last report.",
        )],
        responses={200: ok(NodeHealthSerializer, "Services, disk, memory, versions."),
                   **error_responses(401, 404, 502)},
    )
    def get(self, request, id):
        node = generics.get_object_or_404(Node, pk=id)
        refresh = request.query_params.get("refresh", "false")
        if refresh not in REFRESH_VALUES:
            raise ApiError("bad_request", "refresh must be 1, true, 0 or false.",
                           {"fields": {"refresh": ["expected 1, true, 0 or false"]}})
        if REFRESH_VALUES[refresh]:
            require(request.user, "nodes.manage_node")
            check_health(node)  # a failure is the API error already
            node.refresh_from_db()
        return Response({"checked_at": node.health_checked_at, "health": node.health})


class PanelPublicKeyView(APIView):
    required_permissions = {"GET": needs("nodes.view_node")}

    @extend_schema(operation_id="getPanelPublicKey", tags=["Nodes"], summary="The panel's SSH public key",
                   responses={200: ok(PublicKeySerializer, "Authorize this key on every node."),
                              **error_responses(401)})
    def get(self, request):
        return Response({"public_key": keys.public_key()})
