"""docs/autopilot.md's scenarios, unattended: the API, a worker, the autopilot.

Starts a fresh SQLite database, `scaling-service serve` (auth off) and a worker, then runs the
doc's commands through the CLI (`remote experiments create`, `remote autofill set ...`) and polls
`remote autofill show` until the autopilot stops (done, exhausted or blocked) or the time limit.
Reports wall time, jobs, FLOPs spent against the budget and against the runs' own 6ND, the
fitted law and exponent a (N_opt ~ C^a) with its 95% interval, and the answer at the target
with its 90% interval.

Scenarios: `cpu` (the default): real training, `worker --executor local --cpu-slots N` as `make
run` starts it, tiny byte-level models; `simulated`: `worker --executor simulated --simulate-law
epoch-2024 --noise 0.01` at GPU-sized budgets, and the recovered law against the true one.

Usage: PYTHONPATH=. python bench/autopilot.py [--scenario cpu|simulated] [--cpu-slots 2]
       [--limit-minutes 30] [--out bench/results/autopilot_<scenario>]   (<out>.json, <out>.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.client import ScalingClient
from service.testing import free_port, wait_until_ok


@dataclass(frozen=True)
class Scenario:
    experiment: str
    budget: float
    target: float
    max_per_run: float
    min_per_run: float
    trainer: str | None
    worker: tuple[str, ...]
    truth: str | None = None

    @property
    def autofill(self) -> list[str]:
        args = [
            "--budget-flops",
            f"{self.budget:g}",
            "--target-flops",
            f"{self.target:g}",
            "--max-flops-per-run",
            f"{self.max_per_run:g}",
            "--min-flops-per-run",
            f"{self.min_per_run:g}",
        ]
        return args + (["--trainer", self.trainer] if self.trainer else [])


# The doc's scenarios (docs/autopilot.md, section 3 and the simulated demo).
SCENARIOS = {
    "cpu": Scenario(
        "bytes",
        2e13,
        1e15,
        1e12,
        1e10,
        '{"device": "cpu", "threads": 1, "shape": {"context_tokens": 64}}',
        ("--executor", "local"),
    ),
    "simulated": Scenario(
        "sim",
        3e22,
        1e24,
        1e21,
        1e18,
        None,
        ("--executor", "simulated", "--simulate-law", "epoch-2024", "--noise", "0.01"),
        truth="epoch-2024",
    ),
}


def cli(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "service.cli.main", "remote", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="cpu")
    parser.add_argument("--cpu-slots", type=int, default=2)
    parser.add_argument("--limit-minutes", type=float, default=30.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]
    args.out = args.out or f"bench/results/autopilot_{args.scenario}"

    work = Path(tempfile.mkdtemp(prefix="autopilot-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SCALING_DATABASE_URL": f"sqlite:///{work / 'scaling.db'}",
        "SCALING_AUTH": "false",
        "SCALING_URL": url,
        # the corpus cache outlives the run (as var/corpus does for `make run`)
        "SCALING_CACHE_DIR": os.environ.get("SCALING_CACHE_DIR", "var/corpus"),
    }
    exe = [sys.executable, "-m", "service.cli.main"]
    subprocess.run([*exe, "migrate"], env=env, check=True, capture_output=True)
    logs = [open(work / name, "w") for name in ("serve.log", "worker.log")]  # noqa: SIM115
    server = subprocess.Popen(
        [*exe, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [
            *exe,
            "worker",
            *scenario.worker,
            "--cpu-slots",
            str(args.cpu_slots),
            "--work-dir",
            str(work / "jobs"),
        ],
        env=env,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    trail: list[dict[str, Any]] = []
    try:
        wait_until_ok(f"{url}/readyz", 60)
        cli(env, "experiments", "create", scenario.experiment)
        started = time.perf_counter()
        cli(env, "autofill", "set", scenario.experiment, *scenario.autofill)
        deadline = started + 60 * args.limit_minutes
        status: dict[str, Any] = {}
        while time.perf_counter() < deadline:
            status = json.loads(cli(env, "autofill", "show", scenario.experiment, "--json"))
            trail.append({"t": round(time.perf_counter() - started, 1), **status})
            print(f"{trail[-1]['t']:7.1f}s {status['state']:9s} {status['message']}", flush=True)
            if status["state"] in ("done", "exhausted", "blocked"):
                break
            time.sleep(10 if args.scenario == "cpu" else 1)
        wall = time.perf_counter() - started
        report = summarise(url, scenario, status, wall, args.cpu_slots)
    finally:
        for process in (worker, server):
            process.terminate()
            process.wait(30)
        for log in logs:
            log.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**report, "trail": trail}, indent=1))
    out.with_suffix(".md").write_text(markdown(report, scenario, args))
    print(markdown(report, scenario, args))
    shutil.rmtree(work, ignore_errors=True)


def summarise(
    url: str, scenario: Scenario, status: dict[str, Any], wall: float, slots: int
) -> dict[str, Any]:
    name = scenario.experiment
    with ScalingClient(url) as api:
        jobs = list(api.iter_jobs(experiment=name))
        runs = list(api.iter_runs(name))
        fit = api.current_fit(name)
        answer = api.recommendation(name, flops=scenario.target)
        fits = list(api.iter_fits(name))
        truth = (
            api.recommend({"preset": scenario.truth}, {"flops": scenario.target})
            if scenario.truth
            else None
        )
    run_flops = sum(run.flops for run in runs)
    params = fit.parameters or {}
    intervals = fit.intervals_95 or {}
    return {
        "cpu_slots": slots,
        "state": status.get("state"),
        "message": status.get("message"),
        "wall_s": round(wall, 1),
        "jobs": dict(Counter(job.status for job in jobs)),
        "phases": dict(Counter(job.config.get("plan", {}).get("phase") for job in jobs)),
        "runs": len(runs),
        # Several-point runs: jobs that trained a WSD trunk with cooldown branches, and the runs
        # by how their loss was obtained (end_of_schedule, after_cooldown, mid_schedule).
        "jobs_with_branches": sum(
            len(job.config.get("built", {}).get("branch_tokens") or ()) > 1 for job in jobs
        ),
        "runs_by_provenance": dict(Counter(run.loss_provenance for run in runs)),
        "fits": dict(Counter(f.status for f in fits)),
        "budget_flops": scenario.budget,
        "spent_flops": status.get("spent_flops"),
        "runs_6nd_flops": run_flops,
        "n_opt_width": status.get("n_opt_width"),
        "fit_id": fit.id,
        "alpha": params.get("alpha"),
        "beta": params.get("beta"),
        "E": params.get("E"),
        "a": params.get("a"),
        "parameters": params,
        "a_95": intervals.get("a"),
        "target_flops": scenario.target,
        "answer_params": answer.params,
        "answer_params_90": [answer.intervals["params"].low, answer.intervals["params"].high]
        if "params" in answer.intervals
        else None,
        "answer_tokens": answer.tokens,
        "answer_loss": answer.loss,
        "warnings": answer.warnings,
        "truth": None
        if truth is None
        else {"law": truth.law, "params": truth.params, "tokens": truth.tokens},
    }


def markdown(r: dict[str, Any], scenario: Scenario, args: argparse.Namespace) -> str:
    a95 = r["a_95"] or [float("nan"), float("nan")]
    p90 = r["answer_params_90"] or [float("nan"), float("nan")]
    truth = r["truth"]
    known = []
    if truth is not None:
        law = truth["law"]
        known = [
            f"| true law ({scenario.truth}): alpha, beta, E | {law.get('alpha'):.3f}, "
            f"{law.get('beta'):.3f}, {law.get('E'):.3g} |",
            f"| true answer at {r['target_flops']:.0e} FLOPs | N = {truth['params']:.3g}, "
            f"D = {truth['tokens']:.3g} |",
        ]
    return "\n".join(
        [
            f"# The autopilot ({args.scenario}): docs/autopilot.md's scenario",
            "",
            f"`PYTHONPATH=. python bench/autopilot.py --scenario {args.scenario} --cpu-slots "
            f"{args.cpu_slots}`: a fresh SQLite database, `serve` and `worker "
            f"{' '.join(scenario.worker)}`, the doc's `autofill set {scenario.experiment} "
            f"{' '.join(scenario.autofill)}`, unattended.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| final state | {r['state']}: {r['message']} |",
            f"| wall time | {r['wall_s'] / 60:.1f} min |",
            f"| jobs | {r['jobs']} (phases {r['phases']}) |",
            f"| runs | {r['runs']} (by loss provenance {r['runs_by_provenance']}) |",
            f"| jobs with cooldown branches | {r['jobs_with_branches']} |",
            f"| fits | {r['fits']} |",
            f"| FLOPs spent / budget | {r['spent_flops']:.3g} / {r['budget_flops']:.3g} |",
            f"| runs' own 6ND FLOPs | {r['runs_6nd_flops']:.3g} |",
            f"| fit {r['fit_id']}: alpha, beta, E | {r['alpha']:.3f}, {r['beta']:.3f}, "
            f"{r['E']:.3g} |",
            f"| exponent a (N_opt ~ C^a), 95% | {r['a']:.3f} ({a95[0]:.3f} - {a95[1]:.3f}) |",
            f"| N_opt({r['target_flops']:.0e}) width, log(high/low) 90% | {r['n_opt_width']:.3f} |",
            f"| answer at {r['target_flops']:.0e} FLOPs | N = {r['answer_params']:.3g} "
            f"(90%: {p90[0]:.3g} - {p90[1]:.3g}), D = {r['answer_tokens']:.3g}, "
            f"loss {r['answer_loss']:.3f} |",
            *known,
            f"| warnings | {'; '.join(r['warnings']) or '-'} |",
            "",
        ]
    )


if __name__ == "__main__":
    main()
