"""Property tests (hypothesis) for build_demand."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from app.planner.demand import build_demand
from app.requirements import WorkloadSpec

from .helpers import GPUS, make_spec, run, service

FAST = settings(max_examples=60, deadline=None)

cadences = st.sampled_from(["once", "monthly", "quarterly", "yearly"]) | st.builds(
    lambda n: {"kind": "every_n_months", "n": n}, st.integers(1, 14)
)
horizons = st.integers(1, 36)
deadlines = st.floats(0.5, 120, allow_nan=False)


@FAST
@given(
    params=st.floats(1e8, 1e11),
    tokens=st.floats(1e9, 1e13),
    k=st.floats(0.1, 20),
    deadline=deadlines,
    cadence=cadences,
    horizon=horizons,
)
def test_total_gpu_hours_scale_linearly_with_tokens(
    params: float, tokens: float, k: float, deadline: float, cadence: object, horizon: int
) -> None:
    def total(d: float) -> float:
        spec = make_spec(
            [run(model_params=params, training_tokens=d, deadline_days=deadline)],
            cadence=cadence,
            horizon=horizon,
        )
        return sum(c.total_gpu_hours for c in build_demand(spec, GPUS).classes)

    assert math.isclose(total(tokens * k), k * total(tokens), rel_tol=1e-9)


@FAST
@given(
    hours=st.floats(1, 200_000),
    d1=deadlines,
    d2=deadlines,
    cadence=cadences,
    horizon=horizons,
    start=st.integers(1, 12),
)
def test_shorter_deadline_never_lowers_peak(
    hours: float, d1: float, d2: float, cadence: object, horizon: int, start: int
) -> None:
    short, long_ = sorted((d1, d2))

    def peak(deadline: float) -> int:
        spec = make_spec(
            [run(gpu_hours=hours, deadline_days=deadline)],
            cadence=cadence,
            horizon=horizon,
            start=f"2027-{start:02d}",
        )
        return build_demand(spec, GPUS).classes[0].max_peak_gpus

    assert peak(short) >= peak(long_)


@FAST
@given(hours=st.floats(1, 50_000), deadline=deadlines, cadence=cadences, horizon=horizons)
def test_hours_are_conserved_and_fit_under_the_peak(
    hours: float, deadline: float, cadence: object, horizon: int
) -> None:
    spec = make_spec(
        [run(gpu_hours=hours, deadline_days=deadline)], cadence=cadence, horizon=horizon
    )
    profile = build_demand(spec, GPUS)
    [c] = profile.classes
    n = len(profile.training_instances)
    assert n == len(spec.lifecycle.retraining_cadence.run_months(0, horizon))
    assert math.isclose(c.total_gpu_hours, n * hours, rel_tol=1e-9)
    for h, p, cap in zip(c.gpu_hours, c.peak_gpus, profile.hours_in_month, strict=True):
        assert h <= p * cap * (1 + 1e-9)
        assert (h > 0) == (p > 0)
    for inst in profile.training_instances:
        assert inst.duration_hours <= inst.deadline_hours * (1 + 1e-9)
        assert inst.concurrent_gpus == max(
            1, math.ceil(hours / inst.deadline_hours - 1e-9 * max(1, hours / inst.deadline_hours))
        )


@FAST
@given(
    base=st.integers(1, 50),
    g1=st.floats(-90, 300),
    g2=st.floats(-90, 300),
    horizon=horizons,
    peak_factor=st.floats(0.1, 5),
)
def test_more_growth_never_lowers_inference_peaks(
    base: int, g1: float, g2: float, horizon: int, peak_factor: float
) -> None:
    lo, hi = sorted((g1, g2))

    def peaks(g: float) -> list[int]:
        spec = make_spec(
            inference=[service(always_on_gpus=base)],
            horizon=horizon,
            scale={
                "inference_growth_pct_per_year": g,
                "seasonality": {"peak_months": [12], "peak_factor": peak_factor},
            },
        )
        return build_demand(spec, GPUS).classes[0].peak_gpus

    assert all(a <= b for a, b in zip(peaks(lo), peaks(hi), strict=True))


@FAST
@given(
    n_runs=st.integers(1, 4),
    mems=st.lists(st.sampled_from([0, 40, 80]), min_size=4, max_size=4),
    spot=st.lists(st.booleans(), min_size=4, max_size=4),
    cadence=cadences,
    horizon=horizons,
)
def test_round_trips_and_determinism(
    n_runs: int, mems: list[int], spot: list[bool], cadence: object, horizon: int
) -> None:
    runs = [
        run(f"r{i}", min_gpu_memory_gb=mems[i], checkpointable=spot[i], deadline_days=7)
        for i in range(n_runs)
    ]
    spec = make_spec(runs, [service()], cadence=cadence, horizon=horizon)
    assert WorkloadSpec.from_yaml(spec.to_yaml()) == spec
    profile = build_demand(spec, GPUS)
    assert profile.class_ids() == sorted(profile.class_ids())
    assert len(profile.classes) == len({(mems[i], spot[i]) for i in range(n_runs)}) + 1
    shuffled = make_spec(list(reversed(runs)), [service()], cadence=cadence, horizon=horizon)
    assert build_demand(shuffled, GPUS).classes == profile.classes
