from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from apps.core.query_params import integer_param


class LinkHeaderPagination(BasePagination):
    """Plain-array pages (the contract's list shape) with a ``Link: <...>; rel="next"``
    header while more rows follow, and the total in ``X-Total-Count``.

    ``?limit=`` (1..500, default 100) and ``?offset=`` (0..10^9) choose the page.
    """

    default_limit = 100
    max_limit = 500
    # Far beyond any table here, and far below where offset + limit would
    # overflow the database's 64-bit integers (a server error, not a page).
    max_offset = 1_000_000_000

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = integer_param(request, "limit", self.default_limit, 1, self.max_limit)
        self.offset = integer_param(request, "offset", 0, 0, self.max_offset)
        # One row more than asked tells whether a next page exists without a COUNT.
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_next = len(rows) > self.limit
        return rows[: self.limit]

    def get_paginated_response(self, data):
        response = Response(data)
        if self.has_next:
            url = self.request.build_absolute_uri()
            url = replace_query_param(url, "offset", self.offset + self.limit)
            url = replace_query_param(url, "limit", self.limit)
            response["Link"] = f'<{url}>; rel="next"'
        return response

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Page size (1-{self.max_limit}, default {self.default_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "description": f"Rows to skip (0-{self.max_offset}); follow the Link header instead of computing it.",
                "schema": {"type": "integer", "minimum": 0, "maximum": self.max_offset},
            },
        ]
