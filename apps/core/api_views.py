"""Shapes every API view shares."""

from django.shortcuts import get_object_or_404
from rest_framework import generics
from rest_framework.response import Response

from apps.audit import services as audit


def job_accepted(request, job, **audit_details) -> Response:
    """202 with the job that carries the request out; the request's audit
    entry learns the job (and any ``audit_details``) and stays open until the job ends."""
    audit.annotate(request, job=job, **audit_details)
    return Response({"job_id": str(job.pk)}, status=202)


class ChildListView(generics.ListAPIView):
    """The children of one object named by the route's ``id`` (404 when it does
    not exist): ``queryset`` is ``Model.objects.none()`` (what the schema sees),
    ``parent_model`` the parent, ``parent_field`` the children's link to it."""

    parent_model = None
    parent_field = ""
    ordering: tuple = ()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        parent = get_object_or_404(self.parent_model, pk=self.kwargs["id"])
        return self.queryset.model.objects.filter(**{self.parent_field: parent}).order_by(*self.ordering)
