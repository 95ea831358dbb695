"""Every error under /api/, from any layer, is JSON {code, message, details?}."""

import json

import pytest
from django.test import Client, RequestFactory

from apps.core.errors import API_ERROR_CODES, api_exception_handler
from apps.core.middleware import ApiErrorMiddleware

ERROR_KEYS = {"code", "message", "details"}


def assert_error_shape(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) <= ERROR_KEYS and {"code", "message"} <= set(body)
    assert body["code"] == code
    assert code in API_ERROR_CODES
    return body


def test_unknown_api_path_is_json_404(api_client):
    assert_error_shape(api_client.get("/api/no-such-thing"), 404, "not_found")


def test_malformed_uuid_in_path_is_json_404(api_client):
    assert_error_shape(api_client.get("/api/sites/not-a-uuid"), 404, "not_found")


def test_missing_resource_is_json_404(api_client):
    assert_error_shape(api_client.get("/api/sites/00000000-0000-4000-8000-000000000000"), 404, "not_found")


def test_wrong_method_is_json_405_with_allow(api_client):
    response = api_client.delete("/api/sites")
    assert_error_shape(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_not_yet_served_mutation_is_405_not_a_fake_job(api_client, site_with_production):
    _, production = site_with_production
    # The domain list takes GET and POST; a mutation it does not serve is 405, never a job.
    response = api_client.put(f"/api/environments/{production.id}/domains", {"hostname": "shop.example.test"},
                              format="json")
    assert_error_shape(response, 405, "method_not_allowed")


@pytest.mark.django_db
def test_non_json_body_is_415():
    response = Client().post("/api/login", "email=a@b.test", content_type="application/x-www-form-urlencoded")
    assert_error_shape(response, 415, "unsupported_media_type")


def test_unacceptable_accept_header_is_json_406(api_client):
    response = api_client.get("/api/sites", HTTP_ACCEPT="text/html")
    assert_error_shape(response, 406, "not_acceptable")


@pytest.mark.django_db
def test_unauthenticated_is_json_401():
    assert_error_shape(Client().get("/api/jobs"), 401, "unauthorized")


def test_unexpected_exception_in_a_view_is_json_500_without_details(rf=RequestFactory()):
    request = rf.get("/api/sites")
    response = api_exception_handler(RuntimeError("password=hunter2"), {"request": request})
    assert response.status_code == 500
    assert response.data["code"] == "internal_error"
    assert "hunter2" not in json.dumps(response.data)


def test_exception_escaping_a_view_becomes_json_500():
    middleware = ApiErrorMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get("/api/sites"), ValueError("secret"))
    assert_error_shape(response, 500, "internal_error")
    assert b"secret" not in response.content


def test_html_error_from_an_inner_layer_is_converted():
    from django.http import HttpResponseBadRequest

    middleware = ApiErrorMiddleware(lambda request: HttpResponseBadRequest("<h1>Bad Request (400)</h1>"))
    response = middleware(RequestFactory().get("/api/sites"))
    assert_error_shape(response, 400, "bad_request")


def test_admin_errors_stay_html(admin_client):
    response = admin_client.get("/admin/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_oversized_body_is_rejected_as_json(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = Client().post(
        "/api/login", json.dumps({"email": "a@b.test", "password": "y" * 500}), content_type="application/json"
    )
    assert response.status_code in (400, 413)
    assert response["Content-Type"].startswith("application/json")
