def test_sites_list(api_client, site_with_production):
    site, production = site_with_production
    response = api_client.get("/api/sites")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body[0]["id"] == str(site.id)
    assert body[0]["primary_environment_id"] == str(production.id)
