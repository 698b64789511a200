"""Plan the next training runs of an experiment (the gap-filling worker's planner).

Every planned size is a shape of the trainer's family (``ShapeFamily``): ``params`` is its total
parameter count, so what is planned is what gets trained.

Cold start ("seed"): an IsoFLOP design, ``n_sizes`` distinct shapes as near as the family allows
to sizes log-spaced symmetrically around the best guess of N_opt(C), at each of ``seed_budgets``
budgets a decade apart, the largest at most ``max_flops_per_run``; the seed spends at most
``seed_share`` of the budget left (the largest budgets are dropped first). Widened seed
(``widen`` >= 1, when a fit could not pin an exponent): 7 sizes over a wider spread, on budgets
half a decade off the seed's, from the whole budget left. Active: from a grid of candidates
(budgets up to the max per run, shapes around each budget's N_opt under the current fit, each
on at least the family's min_tokens) pick greedily the run that most reduces
the linearised Var[log N_opt(C_target)] per FLOP (plus an optional per-run overhead), updating
the information after each pick (``design_info``). Every run trains a model of ``params``
(total) on ``tokens``: C = 6 N D.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from service.scaling.allocate import Constraints, optimum_at_flops
from service.scaling.branches import (
    BRANCH_RATIO,
    COOLDOWN_FRACTION,
    TRUNK_CORRELATION,
    point_covariance,
)
from service.scaling.design_info import (
    add_block,
    add_run,
    block_drops,
    covariance,
    log_loss_jacobian,
    log_nopt_gradient,
    sd_log_nopt,
    variance_drops,
)
from service.scaling.design_plan import Plan, PlannedRun, Taken
from service.scaling.errors import (
    InsufficientBudgetError,
    InsufficientRunsError,
    InvalidArgumentError,
    InvalidBudgetError,
)
from service.scaling.laws import Chinchilla
from service.scaling.presets import preset
from service.scaling.result import FitResult, Source
from service.scaling.runs import RunArrays
from service.scaling.shape_family import ShapeFamily
from service.scaling.shapes import ModelShape

FloatArray = NDArray[np.float64]

# The smallest run worth planning (about a 10M-parameter model on 20M tokens).
MIN_RUN_FLOPS = 1e15
# Log noise assumed without a fit (about 1% in loss), and the floor of an estimated one.
DEFAULT_NOISE = 0.01
MIN_NOISE = 1e-3
# Active candidates: budgets per decade, and offsets ln(N / N_opt(C)) around each optimum.
CANDIDATES_PER_DECADE = 4
CANDIDATE_OFFSETS = np.linspace(-1.8, 1.8, 13)
# Candidates span this many decades below the max per run (or down to the smallest run done).
CANDIDATE_DECADES = 4.0


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise InvalidBudgetError(name=name, value=value)
    return v


def _n_opt(law: Source, flops: float) -> float:
    return optimum_at_flops(law, flops, Constraints()).params


def _noise(result: FitResult | None, noise: float | None) -> tuple[float, str]:
    if noise is not None:
        return _positive("noise", noise), "given"
    if result is None or result.rmse_log_loss is None:
        return DEFAULT_NOISE, "assumed (no fit)"
    n = result.n_runs
    est = result.rmse_log_loss * np.sqrt(n / max(n - 5, 1))
    return max(float(est), MIN_NOISE), "estimated from the fit's residuals"


def _run(
    law: Chinchilla | None,
    sig: FloatArray | None,
    g: FloatArray,
    sigma: float,
    shape: ModelShape,
    D: float,
    reason: str,
    overhead: float = 0.0,
) -> tuple[PlannedRun, FloatArray | None]:
    N = float(shape.params)
    drop = 0.0
    if law is not None and sig is not None:
        j = log_loss_jacobian(law, N, D)[0]
        drop = float(variance_drops(sig, g, j[None], sigma)[0])
        sig = add_run(sig, j, sigma)
    C = 6.0 * N * D
    return PlannedRun(N, D, C, shape, drop / (C + overhead), drop, reason), sig


def plan_runs(
    runs: RunArrays,
    result: FitResult | None,
    target_flops: float,
    budget_left: float,
    max_flops_per_run: float,
    *,
    taken: Sequence[tuple[float, float]] = (),
    batch_size: int = 8,
    noise: float | None = None,
    prior: Source | None = None,
    seed_budgets: int = 3,
    n_sizes: int = 5,
    half_width: float = float(np.log(4.0)),
    seed_share: float = 0.5,
    overhead_flops: float = 0.0,
    min_run_flops: float = MIN_RUN_FLOPS,
    family: ShapeFamily | None = None,
    widen: int = 0,
    max_branches: int = 1,
    cooldown_fraction: float = COOLDOWN_FRACTION,
    trunk_correlation: float = TRUNK_CORRELATION,
    max_runs: int | None = None,
) -> Plan:
    """Propose the next runs of an experiment.

    runs: its finished runs (may be empty); result: its current fit or None; target_flops: the
    budget C whose recommendation N_opt(C) should become certain; budget_left: FLOPs the plan may
    spend in total; max_flops_per_run: the largest single run allowed; taken: (params, tokens) of
    runs done or queued (the runs' own pairs are added), never proposed again; batch_size: most
    runs of an active plan; noise: log-loss noise (default: estimated from the fit, else 1%);
    prior: the law guessing N_opt(C) before any fit (default the epoch-2024 preset);
    overhead_flops: a fixed cost per run (start-up, compilation, evaluation; measured defaults
    in ``overhead.py``) added to its FLOPs when active candidates are scored and paid from
    ``budget_left`` by seed and active plans, so that fewer, larger runs win when runs are
    costly to launch;
    min_run_flops: the smallest run worth planning (tiny CPU sweeps lower it; raised to the
    smallest budget that fits ``n_sizes`` distinct shapes of the family);
    family: the trainer's shapes (default: byte vocabulary, context 1024);
    widen: 0, or how many times a fit of these runs failed for lack of spread (a wider seed);
    max_runs: the most training runs the experiment may still start (None: no cap). A plan
    proposes at most that many, and the active score charges each run, on top of its FLOPs and
    overhead, the budget left per run left (what a run slot is worth when runs are capped), so
    that fewer, larger runs win; a seed needing more runs raises InsufficientRunsError;
    max_branches: the most points an active run may have (1: every run is one cosine run; k > 1:
    a run may be a constant-LR trunk with cooldown branches at D / 2^j, j < k, each a cooldown
    of ``cooldown_fraction`` of its steps, costed 6 N (Dk + f sum_{i<k} Di) and scored with its
    points' log-noise correlated by ``trunk_correlation`` (``branches.py``): the planner picks
    one- or several-point runs by the same information per FLOP). Seed runs have one point.
    Raises InvalidBudgetError for a non-positive budget, InvalidArgumentError (a ValueError) for
    seed or batch options out of range, and InsufficientBudgetError when the max per run or the
    budget left cannot pay for the smallest sensible plan.
    """
    target = _positive("target_flops", target_flops)
    left = _positive("budget_left", budget_left)
    per_run = _positive("max_flops_per_run", max_flops_per_run)
    smallest = _positive("min_run_flops", min_run_flops)
    if per_run < smallest:
        raise InsufficientBudgetError(
            what="one sensible run",
            needed=smallest,
            have_name="max_flops_per_run",
            have=per_run,
        )
    if seed_budgets < 3 or not 5 <= n_sizes <= 7:
        raise InvalidArgumentError(
            name="seed design",
            reason=f"needs 3 or more budgets and 5 to 7 sizes each, got {seed_budgets} x {n_sizes}",
        )
    if (
        not 1 <= max_branches <= 8
        or not 0 < cooldown_fraction <= 0.5
        or not 0 <= trunk_correlation < 1
    ):
        raise InvalidArgumentError(
            name="branch options",
            reason="needs 1 <= max_branches <= 8, 0 < cooldown_fraction <= 0.5 and 0 <= "
            f"trunk_correlation < 1, got {max_branches}, {cooldown_fraction}, {trunk_correlation}",
        )
    if batch_size < 1 or not 0 < seed_share <= 1 or not overhead_flops >= 0 or not half_width > 0:
        raise InvalidArgumentError(
            name="plan options",
            reason="needs batch_size >= 1, 0 < seed_share <= 1, overhead_flops >= 0 and "
            f"half_width > 0, got {batch_size}, {seed_share}, {overhead_flops}, {half_width}",
        )
    if max_runs is not None and max_runs < 1:
        raise InvalidArgumentError(name="max_runs", reason=f"needs 1 or more, got {max_runs}")
    shapes = family or ShapeFamily()
    sigma, how = _noise(result, noise)
    pairs = list(zip(runs.params.tolist(), runs.tokens.tolist(), strict=True))
    done = Taken([*pairs, *taken])
    fitted = result is not None and isinstance(result.law, Chinchilla) and len(runs) > 5
    if fitted and not widen:
        assert result is not None and isinstance(result.law, Chinchilla)
        return _active(
            runs,
            result,
            result.law,
            target,
            left,
            per_run,
            done,
            batch_size,
            sigma,
            how,
            float(overhead_flops),
            smallest,
            shapes,
            max_branches,
            float(cooldown_fraction),
            float(trunk_correlation),
            max_runs,
        )
    law = result.law if result is not None else (prior or preset("epoch-2024").law)
    if widen:
        # 7 sizes, a wider spread, budgets half a decade off the seed's, from all that is left.
        why = f"widened (x{widen}): the last fit could not pin an exponent"
        n_sizes, half_width, seed_share = 7, half_width * (1.0 + 0.5 * widen), 1.0
    else:
        why = "no fit yet" if result is None else "the fit cannot be used for active planning"
    return _seed(
        runs,
        law,
        target,
        left,
        per_run,
        done,
        sigma,
        how,
        why,
        seed_budgets,
        n_sizes,
        half_width,
        seed_share,
        smallest,
        shapes,
        offset_decades=0.5 if widen else 0.0,
        overhead=float(overhead_flops),
        max_runs=max_runs,
    )


def _info_law(law: Source) -> Chinchilla:
    """The law whose information matrix scores a seed: the guess if Chinchilla, else epoch-2024."""
    if isinstance(law, Chinchilla):
        return law
    fallback = preset("epoch-2024").law
    assert isinstance(fallback, Chinchilla)
    return fallback


def _seed(
    runs: RunArrays,
    law: Source,
    target: float,
    left: float,
    per_run: float,
    done: Taken,
    sigma: float,
    how: str,
    why: str,
    k: int,
    n_sizes: int,
    half_width: float,
    share: float,
    min_run: float,
    family: ShapeFamily,
    offset_decades: float = 0.0,
    overhead: float = 0.0,
    max_runs: int | None = None,
) -> Plan:
    if max_runs is not None and max_runs < k * n_sizes:
        raise InsufficientRunsError(
            what=f"a seed of {k} budgets x {n_sizes} sizes", needed=k * n_sizes, have=max_runs
        )
    # The smallest budget must hold n_sizes distinct shapes, each on at least min_tokens.
    min_run = max(min_run, 6.0 * family.min_tokens * float(family.sizes[n_sizes - 1]))
    top = per_run * 10.0**-offset_decades
    spacing = 10.0
    if offset_decades and top < min_run * spacing ** (k - 1):
        # A widened seed may pack its budgets closer (never under 2x apart) to stay in range.
        spacing = (top / min_run) ** (1.0 / (k - 1))
    if spacing < 2.0 or top < min_run * spacing ** (k - 1):
        raise InsufficientBudgetError(
            what=f"a seed of {k} budgets a decade apart, the smallest at least {min_run:.3g} "
            f"FLOPs ({n_sizes} distinct model shapes of at least {family.min_tokens} tokens)",
            needed=min_run * 10.0 ** (k - 1 + offset_decades),
            have_name="max_flops_per_run",
            have=per_run,
        )
    allowed = share * left
    budgets: FloatArray | None = None
    for shift in range(64):
        b = top * spacing ** -(shift + np.arange(k, dtype=np.float64))[::-1]
        if b.min() < min_run * (1 - 1e-9):
            break
        if n_sizes * (b + overhead).sum() <= allowed:
            budgets = np.asarray(b, dtype=np.float64)
            break
    if budgets is None:
        smallest = min_run * spacing ** np.arange(k)
        raise InsufficientBudgetError(
            what=f"a seed of {k} budgets x {n_sizes} sizes (at most {share:g} of the budget left)",
            needed=n_sizes * float((smallest + overhead).sum()) / share,
            have_name="budget_left",
            have=left,
        )
    info = _info_law(law)
    g = log_nopt_gradient(info, target)
    sig: FloatArray | None = covariance(info, runs.params, runs.tokens, sigma)
    assert sig is not None
    before = sd_log_nopt(sig, g) if len(runs) else None
    offsets = np.linspace(-half_width, half_width, n_sizes)
    out: list[PlannedRun] = []
    skipped = 0
    for C in budgets:
        n_opt = _n_opt(law, float(C))
        shapes = family.distinct_near((n_opt * np.exp(offsets)).tolist(), float(C))
        assert shapes is not None  # min_run above guarantees n_sizes shapes fit
        for shape in shapes:
            N = float(shape.params)
            D = float(C) / (6.0 * N)
            if done.clashes(np.log([N]), np.log([D]))[0]:
                skipped += 1
                continue
            reason = (
                f"seed IsoFLOP profile at {C:.3g} FLOPs: N = {N / n_opt:.3g} x the guessed "
                f"N_opt(C) = {n_opt:.3g} ({shape.n_layer} x {shape.d_model})"
            )
            run, sig = _run(info, sig, g, sigma, shape, D, reason, overhead)
            done.add(N, D)
            out.append(run)
    assert sig is not None
    notes = [
        f"seed design ({why}): {budgets.size} budgets {', '.join(f'{c:.3g}' for c in budgets)} "
        f"FLOPs x {n_sizes} distinct shapes, N_opt(C) guessed by {law.name}",
        f"log-loss noise {sigma:.3g}: {how}",
    ]
    if skipped:
        notes.append(f"{skipped} seed run(s) already done or queued: not proposed again")
    total = float(sum(r.flops for r in out))
    return Plan(
        "seed",
        tuple(out),
        total,
        target,
        left,
        before,
        sd_log_nopt(sig, g),
        sigma,
        law,
        tuple(notes),
        overhead,
    )


def _active(
    runs: RunArrays,
    result: FitResult,
    law: Chinchilla,
    target: float,
    left: float,
    per_run: float,
    done: Taken,
    batch: int,
    sigma: float,
    how: str,
    overhead: float,
    min_run: float,
    family: ShapeFamily,
    max_branches: int,
    cooldown: float,
    rho: float,
    max_runs: int | None,
) -> Plan:
    g = log_nopt_gradient(law, target)
    sig = covariance(
        law, runs.params, runs.tokens, sigma, groups=runs.groups, trunk_correlation=rho
    )
    before = sd_log_nopt(sig, g)
    lo = max(min_run, min(per_run * 10.0**-CANDIDATE_DECADES, float(runs.flops.min())))
    n_b = max(int(np.ceil(np.log10(per_run / lo) * CANDIDATES_PER_DECADE)) + 1, 2)
    budgets = np.geomspace(lo, per_run, n_b)
    n_opt = law.G * (budgets / 6.0) ** law.a
    # Candidates are shapes of the family (distinct per budget), each on at least min_tokens.
    wanted = (n_opt[:, None] * np.exp(CANDIDATE_OFFSETS)[None, :]).ravel()
    C = np.repeat(budgets, CANDIDATE_OFFSETS.size)
    index = family.nearest_index(wanted)
    _, first = np.unique(
        np.stack([index, np.arange(C.size) // CANDIDATE_OFFSETS.size]), axis=1, return_index=True
    )
    keep = np.sort(first)
    index, C = index[keep], C[keep]
    N = family.sizes[index]
    D = C / (6.0 * N)
    trainable = family.min_tokens <= D
    index, C, N, D = index[trainable], C[trainable], N[trainable], D[trainable]
    # Each candidate as a run of k points (k = 1: one cosine run; k > 1: a trunk with cooldown
    # branches at D / BRANCH_RATIO^j, none under min_tokens), costed as trained.
    options = []
    for k in range(1, max_branches + 1):
        ladders = D[:, None] / BRANCH_RATIO ** np.arange(k, dtype=np.float64)[::-1]
        fits = ladders[:, 0] >= family.min_tokens
        jac = log_loss_jacobian(law, np.repeat(N, k), ladders.ravel()).reshape(-1, k, 5)
        cost = 6.0 * N * (D + cooldown * ladders[:, :-1].sum(axis=1))
        options.append((fits, ladders, jac, cost, point_covariance(k, sigma, rho)))
    avail = ~done.clashes(np.log(N), np.log(D))
    out: list[PlannedRun] = []
    spent = 0.0
    if max_runs is not None:
        batch = min(batch, max_runs)
    while len(out) < batch:
        # A capped run count prices each run slot at the budget left per run left: a run much
        # smaller than that would leave budget that no run can spend.
        unspent = left - spent - overhead * len(out)
        price = 0.0 if max_runs is None else unspent / (max_runs - len(out))
        best: tuple[float, int, int, float] | None = None  # (rank, k, candidate, drop)
        for k, (fits, _, jac, cost, R) in enumerate(options, start=1):
            ok = np.flatnonzero(
                avail & fits & (left - spent - overhead * len(out) >= cost + overhead)
            )
            if ok.size == 0:
                continue
            drops = block_drops(sig, g, jac[ok], R)
            rank = drops / (cost[ok] + overhead + price)
            i = int(np.argmax(rank))
            if best is None or rank[i] > best[0]:
                best = (float(rank[i]), k, int(ok[i]), float(drops[i]))
        if best is None or best[3] <= 1e-9 * float(g @ sig @ g):
            break
        _, k, idx, drop = best
        _, ladders, jac, cost, R = options[k - 1]
        score = drop / (float(cost[idx]) + overhead)
        ratio = N[idx] / law.G / (C[idx] / 6.0) ** law.a
        points = (
            f" with cooldown branches at {', '.join(f'{d:.3g}' for d in ladders[idx])} tokens "
            f"({k} points of one trunk)"
            if k > 1
            else ""
        )
        reason = (
            f"{C[idx]:.3g} FLOPs at {ratio:.3g} x N_opt(C) of the fit{points}: the largest "
            f"expected cut of Var[log N_opt({target:.3g})] per FLOP among the candidates left"
        )
        run = PlannedRun(
            float(N[idx]),
            float(D[idx]),
            float(cost[idx]),
            family.shape(int(index[idx])),
            score,
            drop,
            reason,
            tuple(float(d) for d in ladders[idx]) if k > 1 else (),
            cooldown if k > 1 else None,
        )
        sig = add_block(sig, jac[idx], R)
        out.append(run)
        spent += run.flops
        for tokens in ladders[idx]:
            done.add(run.params, float(tokens))
        avail &= ~done.clashes(np.log(N), np.log(D))
    notes = [
        f"active design: {len(out)} of at most {batch} run(s) from {C.size} candidates "
        f"({budgets[0]:.3g} to {budgets[-1]:.3g} FLOPs)",
        f"log-loss noise {sigma:.3g}: {how}",
    ]
    if max_runs is not None:
        notes.append(
            f"run cap: {max_runs} run(s) left, each run charged the budget left per run left "
            f"({left / max_runs:.3g} FLOPs at the start) in the score"
        )
    if result.samples.shape[0]:
        boot = result.sample_optima.at(target)[:, 0]
        boot = boot[np.isfinite(boot) & (boot > 0)]
        if boot.size:
            sd = float(np.std(np.log(boot)))
            notes.append(f"bootstrap sd of log N_opt(target) now: {sd:.3g}")
    if not out:
        notes.append("no candidate fits the budget left or adds information")
    return Plan(
        "active",
        tuple(out),
        spent,
        target,
        left,
        before,
        sd_log_nopt(sig, g),
        sigma,
        law,
        tuple(notes),
        overhead,
    )
