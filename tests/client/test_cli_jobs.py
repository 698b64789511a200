"""`scaling-service remote plan|jobs|autofill` against a live server and a simulated worker."""

import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from tests.client.conftest import JobServer, ticking
from tests.conftest import ADMIN_TOKEN

AUTOPILOT_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "autopilot.md"
TINY = [
    "--target-flops",
    "1e15",
    "--budget-flops",
    "2e13",
    "--max-flops-per-run",
    "1e12",
    "--min-flops-per-run",
    "1e10",
    "--trainer",
    '{"shape": {"context_tokens": 64}}',
]


@pytest.fixture
def remote(job_server: JobServer, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SCALING_URL", job_server.url)
    monkeypatch.setenv("SCALING_API_KEY", ADMIN_TOKEN)
    monkeypatch.setenv("COLUMNS", "200")  # rich's width: whole cells in the tables
    return CliRunner()


def invoke(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["remote", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_plan_queue_watch_show_cancel(remote: CliRunner, job_server: JobServer) -> None:
    invoke(remote, "experiments", "create", "tiny")
    table = invoke(remote, "plan", "tiny", *TINY)
    assert "seed plan for tiny: 15 runs" in table
    assert sum("seed IsoFLOP" in line for line in table.splitlines()) == 15  # a line a run
    narrow = remote.invoke(app, ["remote", "plan", "tiny", *TINY], env={"COLUMNS": "100"})
    rows = [line for line in narrow.output.splitlines() if "seed" in line and "…" in line]
    assert len(rows) == 15  # still a line a run: the reason gives way, not the numbers
    assert all(line.split("│")[1].strip().isdigit() for line in rows)
    plan = json.loads(invoke(remote, "plan", "tiny", *TINY, "--batch-size", "4", "--json"))
    assert plan["phase"] == "seed"
    assert all(run["flops"] <= 1.01e12 for run in plan["runs"])
    assert "missing --budget-flops" in invoke(
        remote, "plan", "tiny", "--target-flops", "1e15", "--max-flops-per-run", "1e12", code=2
    )
    assert "--trainer is not JSON" in invoke(remote, "plan", "tiny", *TINY[:-1], "{", code=2)
    capped = invoke(remote, "plan", "tiny", *TINY, "--max-runs", "14", code=1)
    assert "insufficient_runs" in capped and "need 15" in capped

    queued = json.loads(invoke(remote, "jobs", "queue", "tiny", *TINY, "--json"))
    assert {job["config"]["trainer"]["shape"]["context_tokens"] for job in queued} == {64}
    assert len(queued) == len(plan["runs"])
    assert {job["origin"] for job in queued} == {"plan"}
    shown = invoke(
        remote,
        "jobs",
        "queue",
        "tiny",
        "--run",
        "3e5:1e6",
        "--run",
        "6e5:1e6:7",
        "--trainer",
        '{"device": "cpu"}',
    )
    assert "queued 2 jobs for tiny" in shown
    mine = json.loads(invoke(remote, "jobs", "list", "--experiment", "tiny", "--json"))[:2]
    assert [job["origin"] for job in mine] == ["request", "request"]
    assert mine[0]["config"]["trainer"]["seed"] == 7
    assert mine[0]["config"]["trainer"]["device"] == "cpu"
    assert "PARAMS:TOKENS" in invoke(remote, "jobs", "queue", "tiny", "--run", "3e5", code=2)
    assert "not both" in invoke(remote, "jobs", "queue", "tiny", code=2)
    assert "409" in invoke(remote, "jobs", "queue", "tiny", "--run", "3e5:1e6", code=1)

    assert "cancelled job" in invoke(remote, "jobs", "cancel", str(mine[0]["id"]))
    assert "409" in invoke(remote, "jobs", "cancel", str(mine[0]["id"]), code=1)
    listed = invoke(remote, "jobs", "list", "--status", "cancelled")
    assert "cancelled" in listed
    assert str(mine[0]["id"]) in listed
    refused = invoke(remote, "jobs", "list", "--status", "nope", code=2)
    assert "'queued', 'running', 'succeeded', 'failed', 'cancelled'" in refused

    timed_out = invoke(remote, "jobs", "watch", "--timeout", "0.2", "--interval", "0.1", code=1)
    assert "timed out" in timed_out
    with ticking(job_server):
        watched = invoke(
            remote, "jobs", "watch", "-e", "tiny", "--interval", "0.1", "--timeout", "60"
        )
    assert "succeeded" in watched
    final = json.loads(invoke(remote, "jobs", "list", "-e", "tiny", "--json"))
    assert sum(job["status"] == "succeeded" for job in final) == len(queued) + 1
    assert "no queued or running jobs" in invoke(remote, "jobs", "watch", "--timeout", "1")
    assert json.loads(invoke(remote, "jobs", "watch", "--json")) == []

    done = next(job for job in final if job["status"] == "succeeded")
    show = invoke(remote, "jobs", "show", str(done["id"]))
    assert f"job {done['id']} (tiny)" in show
    assert "result_run_id" in show
    assert json.loads(invoke(remote, "jobs", "show", str(done["id"]), "--json"))["id"] == done["id"]
    assert "404" in invoke(remote, "jobs", "show", "999999", code=1)


def test_autofill_show_and_set(remote: CliRunner, job_server: JobServer) -> None:
    help_text = invoke(remote, "autofill", "set", "--help")
    assert " ." not in help_text  # bracketed help once vanished as rich markup, leaving " ."
    assert "server default: 1e15" in " ".join(help_text.split())
    invoke(remote, "experiments", "create", "auto")
    assert "autopilot of auto: off" in invoke(remote, "autofill", "show", "auto")
    first = invoke(remote, "autofill", "set", "auto", "--disable", code=2)
    assert "no autopilot yet: give --budget-flops, --target-flops, --max-flops-per-run" in first
    out = json.loads(
        invoke(
            remote,
            "autofill",
            "set",
            "auto",
            "--budget-flops",
            "2e13",
            "--target-flops",
            "1e15",
            "--max-flops-per-run",
            "1e12",
            "--min-flops-per-run",
            "1e10",
            "--trainer",
            '{"shape": {"context_tokens": 64}}',
            "--stop-width",
            "0.2",
            "--batch-size",
            "4",
            "--bootstrap",
            "20",
            "--max-runs",
            "40",
            "--json",
        )
    )
    assert out["settings"]["enabled"] is True
    assert out["settings"]["experiment_max_runs"] == 40
    assert (out["runs"], out["remaining_runs"]) == (0, 40)
    assert out["settings"]["stop_when_n_opt_width_below"] == 0.2
    assert out["settings"]["trainer"] == {"shape": {"context_tokens": 64}}
    worker = job_server.worker()
    worker.tick()
    worker.tick()
    worker.shutdown()
    shown = json.loads(invoke(remote, "autofill", "show", "auto", "--json"))
    assert shown["spent_flops"] > 0
    assert shown["runs"] == 15 and shown["remaining_runs"] == 25  # the seed started
    shown_table = invoke(remote, "autofill", "show", "auto")
    assert any(
        "runs started" in line and "15 (25 left)" in line for line in shown_table.splitlines()
    )
    assert json.loads(invoke(remote, "jobs", "list", "--origin", "autofill", "--json"))
    table = invoke(remote, "autofill", "set", "auto", "--disable")  # the rest as it was
    assert "False" in table
    paused = json.loads(invoke(remote, "autofill", "show", "auto", "--json"))["settings"]
    assert {**paused, "enabled": True} == out["settings"]
    resumed = json.loads(invoke(remote, "autofill", "set", "auto", "--enable", "--json"))
    assert resumed["settings"] == out["settings"]
    assert "404" in invoke(remote, "autofill", "show", "absent", code=1)


def _documented(text: str, starts: str) -> list[str]:
    """The arguments after `scaling-service` of the documented command that starts so."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(starts))
    command = lines[first]
    for line in lines[first + 1 :]:
        if not command.endswith("\\"):
            break
        command = command[:-1] + line
    return shlex.split(command, comments=True)[1:]


def test_the_autopilot_guide_runs_as_written(remote: CliRunner) -> None:
    """docs/autopilot.md's own commands: create, plan, then `autofill set ... --trainer`."""
    guide = AUTOPILOT_GUIDE.read_text()
    for starts in (
        "scaling-service remote experiments create bytes",
        "scaling-service remote plan bytes",
        "scaling-service remote autofill set bytes",
    ):
        args = _documented(guide, starts)
        assert remote.invoke(app, args).exit_code == 0, args
    shown = json.loads(invoke(remote, "autofill", "show", "bytes", "--json"))
    trainer = {"device": "cpu", "threads": 1, "shape": {"context_tokens": 64}}
    assert shown["settings"]["trainer"] == trainer
    assert shown["settings"]["enabled"] is True
    assert shown["settings"]["experiment_budget_flops"] == 2e13
