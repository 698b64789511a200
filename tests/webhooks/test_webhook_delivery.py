"""Webhooks end to end against a real HTTP receiver: a fit and a refit send signed events,
retried after failures, in order, each acknowledged once, logged; a worker dying mid-delivery
loses nothing; a receiver that keeps failing is given up on and the next event goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.db import session_scope
from service.fits.cache import FitCache
from service.fits.runner import FitRunner
from service.jobs import autofill
from service.settings import Settings
from service.store import experiments as experiment_store
from service.store import webhooks as store
from service.store.models import WebhookSubscription
from service.webhooks.delivery import Deliverer
from tests.conftest import grid_runs, make_experiment
from tests.webhooks.conftest import Receiver, drain, subscribe


def other_surface_runs() -> list[dict[str, object]]:
    """Runs of a law with other exponents: fitted with the grid's, the optimum moves."""
    return [
        {
            "run_key": f"s{n:.0e}-{d:.0e}",
            "params": n,
            "tokens": d,
            "loss": 1.7 + 400 / n**0.30 + 410 / d**0.34,
        }
        for n in (1e7, 3e7, 1e8, 3e8, 1e9)
        for d in (1e9, 3e9, 1e10, 3e10)
    ]


@pytest.mark.slow(seconds=6)
def test_fit_and_refit_send_signed_events_retried_in_order_and_logged(
    api: TestClient, deliverer: Deliverer, receiver: Receiver
) -> None:
    make_experiment(api, "exp")
    assert api.post("/v1/experiments/exp/runs", json={"runs": grid_runs()}).status_code == 201
    hook = subscribe(
        api,
        receiver,
        experiment="exp",
        events=["fit.succeeded", "fit.failed", "recommendation.changed"],
        watch_flops=[1e21],
    )
    # The first event's first two attempts fail: it is retried, and nothing overtakes it.
    receiver.plan[(receiver.path, "fit.succeeded")] = [500, 503]

    first = api.post("/v1/experiments/exp/fits", json={"bootstrap": 10})
    assert first.status_code == 201, first.text
    # New runs schedule a refit; the fit runner's refit moves the answer at 1e21 FLOPs.
    more = api.post("/v1/experiments/exp/runs", json={"runs": other_surface_runs()})
    assert more.status_code == 201
    runner = FitRunner(api.app.state.session_factory, api.app.state.fit_policy)  # type: ignore[attr-defined]
    assert runner.run_once()

    drain(deliverer, api, hook["id"])
    seen = receiver.at(receiver.path)
    assert all(r.signature_ok for r in seen)
    assert [(r.event_type, r.answered) for r in seen] == [
        ("fit.succeeded", 500),
        ("fit.succeeded", 503),
        ("fit.succeeded", 200),
        ("fit.succeeded", 200),
        ("recommendation.changed", 200),
    ]
    # In event order, each event acknowledged exactly once.
    acknowledged = receiver.acknowledged(receiver.path)
    assert acknowledged == sorted(set(acknowledged))
    assert len(acknowledged) == 3

    fits = [r.body["data"] for r in seen if r.event_type == "fit.succeeded" and r.answered == 200]
    assert fits[0]["fit_id"] == first.json()["id"]
    assert fits[1]["trigger"] == "refit"
    assert fits[0]["estimates"]["alpha"] > 0
    changed = seen[-1].body
    assert changed["experiment"] == "exp"
    assert changed["data"]["budget_flops"] == 1e21
    assert changed["data"]["previous_fit_id"] == fits[0]["fit_id"]
    assert changed["data"]["fit_id"] == fits[1]["fit_id"]
    assert "params" in changed["data"]["moved"]
    low, high = changed["data"]["previous"]["intervals"]["params"]
    assert not low <= changed["data"]["current"]["params"] <= high

    log = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert [(d["event"]["type"], d["status"], d["attempts"], d["response_code"]) for d in log] == [
        ("recommendation.changed", "succeeded", 1, 200),
        ("fit.succeeded", "succeeded", 1, 200),
        ("fit.succeeded", "succeeded", 3, 200),
    ]
    assert log[-1]["event"]["id"] == seen[0].event_id
    assert all(d["next_attempt_at"] is None and d["finished_at"] for d in log)


def test_a_worker_dying_between_claim_and_answer_loses_nothing(
    api: TestClient, hook_settings: Settings, deliverer: Deliverer, receiver: Receiver
) -> None:
    hook = subscribe(api, receiver, events=["fit.succeeded"])
    assert api.post(f"/v1/webhooks/{hook['id']}:test").status_code == 202
    sessions = api.app.state.session_factory  # type: ignore[attr-defined]
    with session_scope(sessions) as session:
        (claimed,) = store.claim_due(
            session, "doomed", timedelta(seconds=0.3), datetime.now(UTC), limit=5
        )
    # "doomed" crashes here. While its lease holds, nobody else sends the delivery.
    assert deliverer.run_once() == 0
    drain(deliverer, api, hook["id"])  # once the lease ran out
    assert receiver.acknowledged(receiver.path) == [receiver.at(receiver.path)[0].event_id]
    (entry,) = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert (entry["id"], entry["status"], entry["attempts"]) == (claimed, "succeeded", 1)
    # The dead worker's late answer records nothing.
    with session_scope(sessions) as session:
        late = store.Attempt(True, 200, None, datetime.now(UTC))
        assert not store.settle(session, claimed, "doomed", late, retry_at=None)


def test_a_receiver_that_keeps_failing_is_given_up_and_the_next_event_goes(
    api: TestClient, deliverer: Deliverer, receiver: Receiver
) -> None:
    hook = subscribe(api, receiver, events=["job.finished"])
    for _ in range(2):
        assert api.post(f"/v1/webhooks/{hook['id']}:test").status_code == 202
    receiver.always[receiver.path] = 500
    deliverer.run_once()
    deliverer.run_once()  # the second event waits behind the first (order per webhook)
    assert len({r.event_id for r in receiver.at(receiver.path)}) == 1
    drain(deliverer, api, hook["id"])
    log = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert [(d["status"], d["attempts"], d["response_code"]) for d in log] == [
        ("failed", 3, 500),
        ("failed", 3, 500),
    ]
    assert log[0]["last_error"] == "HTTP 500"
    ids = [r.event_id for r in receiver.at(receiver.path)]
    assert ids == sorted(ids) and len(ids) == 6  # 3 attempts each, the first event's first


def test_cancelling_a_queued_job_sends_job_finished(
    api: TestClient, deliverer: Deliverer, receiver: Receiver
) -> None:
    make_experiment(api, "jobs")
    hook = subscribe(api, receiver, experiment="jobs", events=["job.finished"])
    subscribe_elsewhere = api.post(
        "/v1/webhooks",
        json={"url": receiver.url + "/other", "events": ["fit.succeeded"]},
    )
    assert subscribe_elsewhere.status_code == 201
    queued = api.post("/v1/experiments/jobs/jobs", json={"runs": [{"params": 3e5, "tokens": 1e6}]})
    assert queued.status_code == 201, queued.text
    job_id = queued.json()[0]["id"]
    assert api.post(f"/v1/jobs/{job_id}:cancel").status_code == 200
    drain(deliverer, api, hook["id"])
    (event,) = [r.body for r in receiver.at(receiver.path)]
    assert event["type"] == "job.finished"
    assert event["data"]["job_id"] == job_id
    assert event["data"]["status"] == "cancelled"
    assert receiver.at("/other") == []


def test_a_target_removed_from_the_allow_list_fails_without_a_request(
    api: TestClient, hook_settings: Settings, receiver: Receiver
) -> None:
    hook = subscribe(api, receiver, events=["fit.succeeded"])
    api.post(f"/v1/webhooks/{hook['id']}:test")
    stricter = hook_settings.model_copy(update={"webhook_allowed_hosts": []})
    sessions = api.app.state.session_factory  # type: ignore[attr-defined]
    worker = Deliverer(sessions, stricter, owner="strict")
    assert worker.run_once() == 1
    (entry,) = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert entry["status"] == "failed"
    assert "SCALING_WEBHOOK_ALLOWED_HOSTS" in entry["last_error"]
    assert receiver.at(receiver.path) == []
    with session_scope(sessions) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WebhookSubscription)) == 1
    worker.client.close()


def test_autopilot_state_changes_are_sent_once_each(
    api: TestClient, deliverer: Deliverer, receiver: Receiver
) -> None:
    make_experiment(api, "auto")
    hook = subscribe(api, receiver, experiment="auto", events=["autopilot.state_changed"])
    settings = {
        "enabled": True,
        "experiment_budget_flops": 1e18,
        "target_flops": 1e21,
        "max_flops_per_run": 1e17,
    }
    assert api.put("/v1/experiments/auto/autofill", json=settings).status_code == 200
    sessions = api.app.state.session_factory  # type: ignore[attr-defined]

    def worker_tick() -> None:  # the part of the worker's autopilot tick that reports
        with session_scope(sessions) as session:
            experiment = experiment_store.get_by_name(session, "auto")
            autofill.notify_state(session, experiment, FitCache())

    worker_tick()
    worker_tick()  # unchanged: nothing new
    off = settings | {"enabled": False}
    assert api.put("/v1/experiments/auto/autofill", json=off).status_code == 200
    worker_tick()
    drain(deliverer, api, hook["id"])
    states = [
        (r.body["data"]["previous_state"], r.body["data"]["state"])
        for r in receiver.at(receiver.path)
    ]
    assert states == [(None, "waiting"), ("waiting", "off")]


def test_a_queued_fit_that_fails_sends_fit_failed(
    api: TestClient, deliverer: Deliverer, receiver: Receiver
) -> None:
    make_experiment(api, "few")
    runs = grid_runs()[:3]
    assert api.post("/v1/experiments/few/runs", json={"runs": runs}).status_code == 201
    hook = subscribe(api, receiver, events=["fit.succeeded", "fit.failed"])  # every experiment
    queued = api.post("/v1/experiments/few/fits", json={"bootstrap": 500})
    assert queued.status_code == 202, queued.text
    runner = FitRunner(api.app.state.session_factory, api.app.state.fit_policy)  # type: ignore[attr-defined]
    assert runner.run_once()
    drain(deliverer, api, hook["id"])
    (event,) = [r.body for r in receiver.at(receiver.path)]
    assert (event["type"], event["experiment"]) == ("fit.failed", "few")
    assert event["data"]["fit_id"] == queued.json()["id"]
    assert event["data"]["status"] == "failed" and event["data"]["error"]["code"]
