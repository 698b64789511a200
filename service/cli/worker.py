"""The `worker` command: run training jobs from the database on an executor until SIGTERM."""

import signal
import threading
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer


class ExecutorName(StrEnum):
    local = "local"
    simulated = "simulated"
    ray = "ray"


def worker(
    executor: Annotated[ExecutorName, typer.Option(help="Where jobs run.")] = ExecutorName.local,
    gpus: Annotated[int, typer.Option(help="local: GPUs to spread jobs over (0: CPU).")] = 0,
    jobs_per_gpu: Annotated[int, typer.Option(help="local: jobs sharing one GPU.")] = 1,
    cpu_slots: Annotated[int, typer.Option(help="local without GPUs: jobs at once.")] = 1,
    work_dir: Annotated[Path, typer.Option(help="local: job files and logs.")] = Path("var/jobs"),
    time_limit: Annotated[float, typer.Option(help="Hard limit per job, seconds.")] = 3600.0,
    ray_address: Annotated[str, typer.Option(help="ray: the Jobs API address.")] = (
        "http://127.0.0.1:8265"
    ),
    ray_slots: Annotated[int, typer.Option(help="ray: jobs in flight.")] = 8,
    ray_gpus_per_job: Annotated[float, typer.Option(help="ray: entrypoint_num_gpus.")] = 0.0,
    simulate_law: Annotated[str, typer.Option(help="simulated: the preset losses come from.")] = (
        "epoch-2024"
    ),
    noise: Annotated[float, typer.Option(help="simulated: relative loss noise.")] = 0.01,
    poll: Annotated[float, typer.Option(help="Seconds between ticks.")] = 1.0,
    lease: Annotated[float, typer.Option(help="A silent worker's jobs are requeued after.")] = 60.0,
    autopilot: Annotated[bool, typer.Option(help="Plan runs for autofill experiments.")] = True,
) -> None:
    """Claim queued jobs, run them, store their results as runs, refit; SIGTERM stops cleanly
    (running jobs go back to the queue)."""
    from service.db import (
        create_db_engine,
        ensure_schema_at_head,
        head_revision,
        make_session_factory,
    )
    from service.fits.service import FitPolicy
    from service.logging import configure_logging
    from service.settings import Settings
    from service.worker.executors.base import Executor
    from service.worker.loop import Worker

    settings = Settings()
    configure_logging(settings.log_level, [])
    engine = create_db_engine(settings.database_url, settings.db_pool_size)
    ensure_schema_at_head(engine, head_revision())
    chosen: Executor
    if executor is ExecutorName.local:
        from service.worker.executors.local import LocalExecutor

        chosen = LocalExecutor(work_dir, gpus, jobs_per_gpu, cpu_slots, time_limit)
    elif executor is ExecutorName.simulated:
        from service.scaling import preset
        from service.worker.executors.simulated import SimulatedExecutor

        chosen = SimulatedExecutor(preset(simulate_law).law, simulate_law, noise)
    else:
        from service.worker.executors.ray import RayExecutor

        chosen = RayExecutor(ray_address, ray_slots, ray_gpus_per_job, time_limit_s=time_limit)
    loop = Worker(
        make_session_factory(engine),
        chosen,
        FitPolicy.from_settings(settings),
        lease=timedelta(seconds=lease),
        poll_seconds=poll,
        autopilot=autopilot,
        settings=settings,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    loop.run(stop)
    engine.dispose()


def register(app: typer.Typer) -> None:
    """Add the `worker` command to `app`."""
    app.command()(worker)
