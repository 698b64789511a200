"""The dashboard over HTTP: pages, escaping, cookie login and scopes, the recommendation form."""

from typing import Any
from unittest.mock import patch

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from service.ui.render import number
from tests.api.test_auth import key
from tests.api.test_fits import fit, import_chinchilla
from tests.conftest import ADMIN_TOKEN, grid_runs, make_experiment

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def login(app_client: TestClient, token: str) -> Any:
    return app_client.post(
        "/ui/login", data={"api_key": token, "next": "/ui"}, follow_redirects=False
    )


def test_pages_load_and_escape_what_users_wrote(client: TestClient) -> None:
    make_experiment(client, "hostile", description=HOSTILE)
    for path in ("/ui", "/ui/experiments/hostile"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert "<script>" not in response.text
        assert "onerror=alert(1)>" not in response.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in response.text
        assert "script-src" not in response.headers["content-security-policy"]
        assert "style-src 'self'" in response.headers["content-security-policy"]
    page = client.get("/ui/experiments/hostile").text
    assert "No succeeded chinchilla fit yet" in page
    assert "No runs." in page
    assert client.get("/ui/static/style.css").headers["content-type"].startswith("text/css")


def test_unknown_experiment_is_a_404_page(client: TestClient) -> None:
    response = client.get("/ui/experiments/missing")
    assert response.status_code == 404
    assert "missing" in response.text


def test_without_a_key_the_browser_goes_to_the_login_page(app_client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert app_client.post("/v1/experiments", json={"name": "exp"}, headers=admin).is_success
    for path in ("/ui", "/ui/experiments/exp?flops=1"):
        response = app_client.get(path, follow_redirects=False)
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("/ui/login?next=%2Fui")
    posted = app_client.post(
        "/ui/experiments/exp/recommendation", data={"flops": "1"}, follow_redirects=False
    )
    assert posted.status_code == 303
    app_client.cookies.set("scaling_ui_key", "ss_nope_nope", path="/ui")
    assert app_client.get("/ui", follow_redirects=False).status_code == 303
    assert app_client.get("/ui/login").status_code == 200
    assert app_client.get("/ui/static/style.css").status_code == 200


def test_login_sets_an_http_only_strict_cookie(app_client: TestClient) -> None:
    refused = login(app_client, "ss_nope_nope")
    assert refused.status_code == 401
    assert "unknown or revoked API key" in refused.text
    assert "set-cookie" not in refused.headers

    response = login(app_client, ADMIN_TOKEN)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"scaling_ui_key={ADMIN_TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Path=/ui" in cookie
    page = app_client.get("/ui", follow_redirects=False)
    assert page.status_code == 200
    assert "bootstrap admin" in page.text

    # Never an open redirect.
    away = app_client.post(
        "/ui/login",
        data={"api_key": ADMIN_TOKEN, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/ui"

    out = app_client.post("/ui/logout", follow_redirects=False)
    assert out.status_code == 303
    assert 'scaling_ui_key=""' in out.headers["set-cookie"]
    app_client.cookies.clear()
    assert app_client.get("/ui", follow_redirects=False).status_code == 303


def test_changing_the_autopilot_needs_the_write_scope(client: TestClient) -> None:
    make_experiment(client, "exp")
    reader, writer = key(client, "read"), key(client, "write")
    form = {
        "enabled": "on",
        "experiment_budget_flops": "1e20",
        "target_flops": "1e23",
        "max_flops_per_run": "1e18",
        "batch_size": "4",
        "experiment_max_runs": "30",
        "trainer": '{"shape": {"context_tokens": 64}}',
    }
    url = "/ui/experiments/exp/autofill"
    denied = client.post(url, data=form, headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    assert "with the write scope" in denied.text
    assert client.get("/v1/experiments/exp/autofill").json()["settings"] is None

    headers = {"Authorization": f"Bearer {writer}"}
    saved = client.post(url, data=form, headers=headers, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/ui/experiments/exp?saved=autofill"
    stored = client.get("/v1/experiments/exp/autofill").json()
    assert stored["settings"]["enabled"] is True
    assert stored["settings"]["batch_size"] == 4
    assert stored["state"] == "waiting"
    page = client.get(saved.headers["location"], headers=headers).text
    assert "Autopilot settings saved." in page
    assert 'name="batch_size" value="4"' in page
    assert stored["settings"]["experiment_max_runs"] == 30
    assert 'name="experiment_max_runs" value="30"' in page
    assert "0 (30 left)" in page
    assert 'name="experiment_budget_flops" value="1e20"' in page  # not 100000000000000000000
    assert 'name="max_flops_per_run" value="1e18"' in page
    # the trainer fields survive a save from the page (they choose the shapes planned)
    assert stored["settings"]["trainer"] == {"shape": {"context_tokens": 64}}
    assert "context_tokens" in page

    bad = client.post(url, data={**form, "batch_size": "0"}, headers=headers)
    assert bad.status_code == 422
    assert "batch_size" in bad.text
    not_json = client.post(url, data={**form, "trainer": "{"}, headers=headers)
    assert not_json.status_code == 422
    assert "trainer: not JSON" in not_json.text


@pytest.mark.slow
def test_recommendation_form_answers_from_the_chinchilla_fit(client: TestClient) -> None:
    import_chinchilla(client)
    fitted = fit(client, bootstrap=20, seed=1)
    assert fitted.status_code == 201, fitted.text
    fit_id = fitted.json()["id"]

    page = client.get("/ui/experiments/chinchilla").text
    assert f"Fit #{fit_id}" in page
    assert "fresh" in page
    assert "first 50 of 245" in page
    for name in ("E", "A", "B", "alpha", "beta"):
        assert f"<td>{name}</td>" in page
    for kind in ("isoflop", "frontier", "residuals"):
        assert f'src="/ui/fits/{fit_id}/plots/{kind}.svg"' in page
        assert f'<a href="/ui/fits/{fit_id}/plots/{kind}.svg"' in page  # opens the full plot
    plot = client.get(f"/ui/fits/{fit_id}/plots/isoflop.svg")
    assert plot.status_code == 200
    assert plot.headers["content-type"] == "image/svg+xml"
    assert plot.content.lstrip().startswith(b"<?xml") or b"<svg" in plot.content[:500]

    # Without matplotlib the page says why instead of showing broken images.
    with patch("importlib.util.find_spec", return_value=None):
        bare = client.get("/ui/experiments/chinchilla").text
    assert 'id="plots-unavailable"' in bare
    assert "pip install &#39;scaling-service[plots]&#39;" in bare
    assert "/plots/isoflop.svg" not in bare

    index = client.get("/ui").text
    assert "/ui/experiments/chinchilla" in index
    assert f"#{fit_id}" in index

    api = client.get("/v1/experiments/chinchilla/recommendation", params={"flops": 5.88e23}).json()
    url = "/ui/experiments/chinchilla/recommendation"
    answered = client.post(url, data={"budget_kind": "flops", "flops": "5.88e23"})
    assert answered.status_code == 200, answered.text
    assert 'id="answer"' in answered.text
    assert f'<td class="n">{number(api["params"])}</td>' in answered.text
    assert f'<td class="n">{number(api["tokens"])}</td>' in answered.text
    low, high = api["intervals"]["loss"]["low"], api["intervals"]["loss"]["high"]
    assert f"[{number(low, 4)}, {number(high, 4)}]" in answered.text
    assert "n_layer=" in answered.text
    # The answer's link renders the same answer (GET, bookmarkable).
    linked = client.get("/ui/experiments/chinchilla?budget_kind=flops&flops=5.88e23")
    assert f'<td class="n">{number(api["params"])}</td>' in linked.text

    hours = client.post(
        url,
        data={"budget_kind": "gpu_hours", "gpu_hours": "100000", "gpu": "H100-SXM", "mfu": "0.4"},
    )
    assert hours.status_code == 200, hours.text
    assert "H100-SXM at MFU 0.4" in hours.text
    money = client.post(
        url,
        data={
            "budget_kind": "usd",
            "usd": "250000",
            "gpu": "H100-SXM",
            "usd_per_gpu_hour": "2.5",
        },
    )
    assert money.status_code == 200, money.text
    assert '<tr><th>Cost (USD)</th><td class="n">2.5e+05</td>' in money.text
    priced = client.post(
        url,
        data={
            "budget_kind": "flops",
            "flops": "5.88e23",
            "gpu": "H100-SXM",
            "mfu": "0.4",
            "usd_per_gpu_hour": "2",
        },
    )
    assert priced.status_code == 200, priced.text
    cost = client.post(
        "/v1/recommendations",
        json={
            "source": {"experiment": "chinchilla"},
            "budget": {"flops": 5.88e23, "gpu": "H100-SXM", "mfu": 0.4, "usd_per_gpu_hour": 2},
        },
    ).json()["cost_usd"]
    assert cost is not None  # a FLOPs budget with a price shows its cost too
    assert f'<tr><th>Cost (USD)</th><td class="n">{number(cost)}</td>' in priced.text

    for bad in ({"budget_kind": "flops"}, {"budget_kind": "flops", "flops": "-1"}):
        refused = client.post(url, data=bad)
        assert refused.status_code == 422
        assert 'id="answer-errors"' in refused.text


def test_jobs_show_status_and_progress(client: TestClient) -> None:
    make_experiment(client, "exp")
    queued = client.post(
        "/v1/experiments/exp/jobs",
        json={"runs": [{"params": 2e5, "tokens": 2e7}, {"params": 4e5, "tokens": 1e7}]},
    )
    assert queued.status_code == 201, queued.text
    first = queued.json()[0]["id"]
    assert client.post(f"/v1/jobs/{first}:cancel").status_code == 200
    page = client.get("/ui/experiments/exp").text
    assert '<span class="badge cancelled">cancelled</span>' in page
    assert '<span class="badge queued">queued</span>' in page
    assert '<progress max="1" value="0.0">0%</progress>' in page
    assert "No jobs." not in page


@pytest.mark.slow
def test_a_fit_made_stale_by_new_runs_says_so(client: TestClient) -> None:
    import_chinchilla(client)
    assert fit(client, bootstrap=0, seed=1).status_code == 201
    added = client.post(
        "/v1/experiments/chinchilla/runs",
        json={"runs": [{"params": 4e8, "tokens": 8e9, "loss": 2.9}]},
    )
    assert added.status_code == 201, added.text
    page = client.get("/ui/experiments/chinchilla").text
    assert '<span class="badge stale">stale</span>' in page
    assert "a refit is queued" in page
    assert '<span class="badge stale">stale</span>' in client.get("/ui").text
    answered = client.post(
        "/ui/experiments/chinchilla/recommendation",
        data={"budget_kind": "flops", "flops": "1e22"},
    )
    assert "the fit is stale" in answered.text


def test_root_leads_to_the_dashboard_and_misspelt_names_get_a_hint(client: TestClient) -> None:
    landing = client.get("/", follow_redirects=False)
    assert landing.status_code == 307 and landing.headers["location"] == "/ui"
    make_experiment(client, "chinchilla")
    missing = client.get("/v1/experiments/chinchila")
    assert missing.status_code == 404
    assert "did you mean 'chinchilla'?" in missing.json()["error"]["message"]
    unrelated = client.get("/v1/experiments/zzz").json()["error"]["message"]
    assert "did you mean" not in unrelated


def test_forms_posted_from_another_site_are_refused(client: TestClient) -> None:
    """With the cookie (here: the key) but a foreign Origin or Referer, no form is accepted,
    login included; the dashboard's own pages (same host) and non-browser posts still are."""
    make_experiment(client, "exp")
    url = "/ui/experiments/exp/autofill"
    form = {"enabled": "on", "experiment_budget_flops": "1e20", "target_flops": "1e23"}
    form["max_flops_per_run"] = "1e18"
    for header in (
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "null"},
    ):
        refused = client.post(url, data=form, headers=header, follow_redirects=False)
        assert refused.status_code == 403, header
        assert "own pages only" in refused.text
        login = client.post("/ui/login", data={"api_key": ADMIN_TOKEN}, headers=header)
        assert login.status_code == 403
    assert client.get("/v1/experiments/exp/autofill").json()["settings"] is None
    own = client.post(
        url, data=form, headers={"Origin": "http://testserver"}, follow_redirects=False
    )
    assert own.status_code == 303


def _statements_for(client: TestClient, path: str) -> int:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []
    # The same request just before, so the caller's key is in the key cache for the counted one
    # (its entries live 5 s: on a loaded machine they could expire between two counts).
    assert client.get(path).status_code == 200

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_index_queries_do_not_grow_with_the_experiments(client: TestClient) -> None:
    for i in range(3):
        make_experiment(client, f"e{i}")
        runs = {"runs": grid_runs(f"e{i}")}
        assert client.post(f"/v1/experiments/e{i}/runs", json=runs).is_success
        assert client.post(f"/v1/experiments/e{i}/fits", json={}).status_code == 201
    few = _statements_for(client, "/ui")
    for i in range(3, 30):
        make_experiment(client, f"e{i}")
    many = _statements_for(client, "/ui")
    assert many == few
    page = client.get("/ui").text
    assert all(f"/ui/experiments/e{i}" in page for i in range(30))
