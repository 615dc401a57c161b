"""The planner's choice as a pure function of stated inputs: row counts, selectivities and
calibration curves are given here, not measured, so every assertion holds on any machine
under any load. No database: the planner's cost model is exercised directly."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vecpg import DataType, InvalidArgument
from vecpg.catalog import CollectionInfo, IndexInfo
from vecpg.planner import EXACT_PREFERENCE, TINY_ROWS, PlanContext, choose
from vecpg.query import prepare_query
from vecpg.results import select_fields
from vecpg.schema import CollectionSchema
from vecpg.stats import Stats, StatsCache

# Stated calibration (the shape vecpg.calibrate stores): an exact scan costs 1 ms per 1,000
# rows, HNSW 0.2 ms + 4 us per unit of ef, with the recall each ef finds.
EXACT = {"ms_per_1k": 1.0, "scan_ms_per_1k": 0.5, "ff_ms_per_1k": 2.9}
HNSW_CURVE = [(10, 0.80), (20, 0.90), (40, 0.96), (64, 0.98), (100, 0.99), (200, 0.999)]


def _calibration(knob: str, curve: list[tuple[int, float]], ms: Any, rows: int) -> dict[str, Any]:
    return {"version": 1, "measured_at": "2026-12-01T00:00:00+00:00", "rows": rows, "k": 10,
            "queries": 100, "queries_source": "given", "base_ms": 0.1, "knob": knob,
            "exact": dict(EXACT),
            "curve": [{knob: v, "recall": r, "se": 0.0, "ms": ms(v)} for v, r in curve]}


def _hnsw_cal(rows: int = 100_000) -> dict[str, Any]:
    return _calibration("ef", HNSW_CURVE, lambda ef: 0.2 + 0.004 * ef, rows)


def _info(index_type: str | None = "HNSW", calibration: dict[str, Any] | None = None,
          params: dict[str, Any] | None = None) -> CollectionInfo:
    schema = CollectionSchema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=64)
    indexes = []
    if index_type is not None:
        companion = index_type in ("IVF_SQ8", "IVF_PQ", "ANNOY")
        indexes.append(IndexInfo("v", "v", index_type, "L2", params or {},
                                 None if companion else "w__v", "ready", 1, id=7,
                                 calibration=calibration))
    return CollectionInfo("public", "w", schema, {"metrics": {"v": "L2"}}, tuple(indexes))


def _ctx(info: CollectionInfo, *, rows: float, matching: float | None = None,
         access: str = "index", expr: str = "", limit: int = 10, recall: float = 0.95,
         forced: str | None = None, search_params: dict[str, Any] | None = None
         ) -> PlanContext:
    f = info.schema.field("v")
    q = prepare_query(info, f, limit=limit, offset=0, expr=expr,
                      selection=select_fields(info.schema, None, default_all=False),
                      partitions=None, search_params=search_params)
    if expr:
        stats = Stats(rows, "pg_class", matching if matching is not None else rows, "count",
                      access)
    else:
        stats = Stats(rows, "pg_class", rows, "none", None)
    return PlanContext(q, stats, recall, forced, StatsCache(), '"public"."w"')


def _pick(ctx: PlanContext) -> tuple[str, dict[str, Any]]:
    best, _ = choose(ctx)
    return best.label, best.params


def test_unfiltered_takes_the_cheapest_setting_that_meets_the_target() -> None:
    info = _info(calibration=_hnsw_cal())
    label, params = _pick(_ctx(info, rows=100_000))
    assert label == "hnsw"
    # 0.95 lies between ef 20 (0.90) and ef 40 (0.96): the smallest ef in between that
    # meets it, not the next grid point
    assert 20 < params["ef"] <= 40
    best, options = choose(_ctx(info, rows=100_000))
    cheaper = [o for o in options if o.cost_ms < best.cost_ms]
    assert cheaper and all(o.recall < 0.95 for o in cheaper)
    # a lower target buys a smaller ef; a higher one a larger ef
    assert _pick(_ctx(info, rows=100_000, recall=0.85))[1]["ef"] < params["ef"]
    assert _pick(_ctx(info, rows=100_000, recall=0.99))[1]["ef"] >= 100


def test_every_rejected_option_says_why() -> None:
    best, options = choose(_ctx(_info(calibration=_hnsw_cal()), rows=100_000))
    others = [o for o in options if o is not best]
    assert others and all(o.rejected for o in others)
    exact = next(o for o in others if o.label == "exact")
    assert exact.rejected.startswith("estimated cost")
    assert any("recall" in o.rejected for o in others if o.label == "hnsw")


def test_small_collection_is_exact_and_forcing_still_runs_the_index() -> None:
    info = _info(calibration=_hnsw_cal(rows=TINY_ROWS))
    best, options = choose(_ctx(info, rows=TINY_ROWS))
    assert best.label == "exact"
    assert all(f"{TINY_ROWS} rows" in o.rejected for o in options if o.label == "hnsw")
    assert _pick(_ctx(info, rows=TINY_ROWS, forced="hnsw"))[0] == "hnsw"
    # one row more and the index wins on cost (2 ms exact vs ~0.3 ms)
    assert _pick(_ctx(info, rows=TINY_ROWS + 1))[0] == "hnsw"


def test_no_index_means_exact() -> None:
    assert _pick(_ctx(_info(index_type=None), rows=1e6))[0] == "exact"
    with pytest.raises(InvalidArgument, match="does not apply"):
        choose(_ctx(_info(index_type=None), rows=1e6, forced="hnsw"))


@pytest.mark.parametrize("selectivity,want", [(0.5, "hnsw"), (0.12, "hnsw"),
                                              (0.005, "filter_first"), (0.0005, "filter_first")])
def test_filtered_choice_follows_selectivity(selectivity: float, want: str) -> None:
    """A broad filter goes through the graph (an iterative scan visits k / selectivity
    tuples); a selective one with an index on the filter fetches its rows and ranks them
    exactly."""
    rows = 100_000
    ctx = _ctx(_info(calibration=_hnsw_cal()), rows=rows, matching=rows * selectivity,
               expr="tag == 1")
    best, _ = choose(ctx)
    assert best.label == want
    assert best.recall >= 0.95


def test_selective_filter_without_an_index_scans() -> None:
    ctx = _ctx(_info(calibration=_hnsw_cal()), rows=100_000, matching=50, access="seq",
               expr="tag == 1")
    assert _pick(ctx)[0] == "exact"  # the graph would visit 20,000 tuples for 10 matches


def test_exact_wins_a_near_tie() -> None:
    """An exact plan within EXACT_PREFERENCE of the cheapest is preferred: its answer is
    complete. 3,000 rows: exact costs 3.1 ms; make HNSW cost just under that."""
    rows = 3000
    slow = _calibration("ef", HNSW_CURVE, lambda ef: 3.1 / EXACT_PREFERENCE * 1.05, rows)
    best, options = choose(_ctx(_info(calibration=slow), rows=rows))
    assert best.label == "exact"
    beaten = [o for o in options if o.label == "hnsw" and o.recall >= 0.95
              and o.cost_ms < best.cost_ms]
    assert beaten and all("exact plan within" in o.rejected for o in beaten)
    fast = _calibration("ef", HNSW_CURVE, lambda ef: 3.1 / EXACT_PREFERENCE / 1.5, rows)
    assert _pick(_ctx(_info(calibration=fast), rows=rows))[0] == "hnsw"


def test_unreachable_target_takes_the_most_accurate_forced_option() -> None:
    info = _info(calibration=_hnsw_cal())
    best, _ = choose(_ctx(info, rows=100_000, recall=1.0, forced="hnsw"))
    assert best.label == "hnsw" and best.params["ef"] >= 200


def test_knobs_force_their_index_and_setting() -> None:
    info = _info(calibration=_hnsw_cal(rows=TINY_ROWS))
    label, params = _pick(_ctx(info, rows=TINY_ROWS, search_params={"params": {"ef": 77}}))
    assert (label, params) == ("hnsw", {"ef": 77})
    assert _pick(_ctx(info, rows=1e5, search_params={"exact": True}))[0] == "exact"


def test_uncalibrated_indexes_are_planned_conservatively() -> None:
    """Without a calibration the planner assumes the hardest data (random high-dimensional
    vectors): HNSW needs ef 400+ for 0.95, and a companion index is not chosen at all."""
    best, _ = choose(_ctx(_info(calibration=None), rows=100_000))
    assert best.label == "hnsw" and best.cost_source.startswith("default")
    assert best.recall >= 0.95 and best.params["ef"] >= 400
    assert _pick(_ctx(_info(calibration=None), rows=100_000, recall=0.8))[1]["ef"] >= 100
    ivf, _ = choose(_ctx(_info("IVF_FLAT", None, {"nlist": 100}), rows=100_000, recall=0.9,
                         forced="ivfflat"))
    assert ivf.params["nprobe"] >= 40
    sq8 = _info("IVF_SQ8", None, {"nlist": 128})
    assert _pick(_ctx(sq8, rows=100_000, recall=0.9))[0] == "exact"
    assert _pick(_ctx(sq8, rows=100_000, search_params={"params": {"nprobe": 8}}))[0] == "ivf_sq8"


def test_growth_since_calibration_costs_recall() -> None:
    """A collection 8x larger than when it was calibrated is credited with less recall per
    ef, so a larger ef is needed for the same target."""
    info = _info(calibration=_hnsw_cal(rows=100_000))
    same = _pick(_ctx(info, rows=100_000))[1]["ef"]
    grown = _pick(_ctx(info, rows=800_000))[1]["ef"]
    assert grown > same


def test_companion_by_its_curve_and_under_a_filter() -> None:
    curve = [(1, 0.6), (2, 0.75), (4, 0.86), (8, 0.93), (16, 0.97), (32, 0.99)]
    cal = _calibration("nprobe", curve, lambda p: 0.3 + 0.05 * p, 50_000)
    info = _info("IVF_SQ8", cal, {"nlist": 128})
    best, options = choose(_ctx(info, rows=50_000, recall=0.9))
    assert best.label == "ivf_sq8" and best.params == {"nprobe": 8}
    assert best.cost_source == "calibration"
    # filtered (10%) and forced: ten times the re-rank candidates, and less recall
    f, _ = choose(_ctx(info, rows=50_000, matching=5000, expr="tag == 1", recall=0.9,
                       forced="ivf_sq8"))
    assert f.params["rerank"] == 100
    assert f.recall < max(o.recall for o in options if o.label == "ivf_sq8")


def test_noisy_latencies_do_not_buy_a_wider_beam() -> None:
    """A calibration measured under load (latencies that fall as ef grows, seen on a
    2-core machine at load 18) must not make a wide beam look cheaper than the narrowest
    setting that meets the target: the latency is fitted as a line in ef."""
    noisy = {10: 8.96, 20: 4.02, 40: 7.93, 64: 12.2, 100: 5.99, 200: 5.75}
    info = _info(calibration=_calibration("ef", HNSW_CURVE, lambda ef: noisy[ef], 100_000))
    label, params = _pick(_ctx(info, rows=100_000))
    assert label == "hnsw" and 20 < params["ef"] <= 40, params


def test_missing_index_is_reported_only_when_an_index_pays_off() -> None:
    from vecpg.planner import missing_index

    info = _info(calibration=_hnsw_cal())
    ctx = _ctx(info, rows=100_000, matching=300, access="seq", expr="tag == 1")
    best, _ = choose(ctx)
    miss = missing_index(ctx, best)
    assert miss is not None and miss["strategy_with_index"] == "filter_first"
    assert miss["estimated_cost_ms_with_index"] * 1.5 <= miss["estimated_cost_ms"]
    # served by an index already, or most rows match: nothing to gain
    for c in (_ctx(info, rows=100_000, matching=300, access="index", expr="tag == 1"),
              _ctx(info, rows=100_000, matching=60_000, access="seq", expr="tag == 1")):
        assert missing_index(c, choose(c)[0]) is None


def test_a_filtered_scan_does_not_take_a_narrow_beam() -> None:
    """At 12% an iterative scan visits ~83 tuples whatever ef is; a beam much narrower
    than that restarts more often and ran slower (ef 10: 0.79x the QPS of ef 40-64)."""
    info = _info(calibration=_hnsw_cal())
    label, params = _pick(_ctx(info, rows=100_000, matching=12_000, access="index",
                               expr="tag == 1"))
    assert label == "hnsw" and params["ef"] >= 30, params


def _with_filtered(shift: float) -> dict[str, Any]:
    """The stated calibration plus a filtered sweep at 1/8 whose recall lies ``shift``
    from what the model without it predicts there."""
    from vecpg.planner import _explored, _filtered_loss, _interp

    cal = _hnsw_cal()
    rec = [(float(e), r) for e, r in HNSW_CURVE]
    curve = []
    for ef in (10, 20, 40, 64):
        model = _interp(_explored(ef, 10, 0.125, True), rec) - _filtered_loss(0.125, 0.045)
        curve.append({"ef": ef, "recall": min(1.0, model + shift), "se": 0.0, "ms": 1.0})
    cal["filtered"] = {"selectivity": 0.125, "k": 10, "curve": curve}
    return cal


def _filtered_ctx(cal: dict[str, Any] | None, matching: int, recall: float = 0.95
                  ) -> PlanContext:
    return _ctx(_info(calibration=cal), rows=100_000, matching=matching, access="index",
                expr="tag == 1", recall=recall)


def _filtered_pick(ctx: PlanContext) -> tuple[int, Any]:
    """The chosen ef (0: not HNSW) and the ef 40 option."""
    best, options = choose(ctx)
    ef40 = next(o for o in options if o.label == "hnsw" and o.params == {"ef": 40})
    return (int(best.params["ef"]) if best.label == "hnsw" else 0), ef40


def test_a_filtered_calibration_bounds_what_shadows_may_credit() -> None:
    """A filter independent of the vectors, measured at calibration. The model stays the
    prior either way: a measured loss beyond it is left to shadow samples (a sweep can be
    unlucky), a measured gain is not trusted for a filter that may correlate with the
    vectors, but it is the headroom shadow samples may credit: samples that find
    everything narrow the beam, by no more than the headroom. The gain fades toward 100%
    and is not grown toward smaller selectivities."""
    base_ef, base = _filtered_pick(_filtered_ctx(_hnsw_cal(), 12_500))
    same_ef, same = _filtered_pick(_filtered_ctx(_with_filtered(0.0), 12_500))
    assert (same_ef, same.recall, same.headroom) == (base_ef, base.recall, 0.0)
    loss_ef, loss = _filtered_pick(_filtered_ctx(_with_filtered(-0.03), 12_500))
    assert (loss_ef, loss.recall, loss.headroom) == (base_ef, base.recall, 0.0)
    ctx = _filtered_ctx(_with_filtered(0.03), 12_500)
    gain_ef, gain = _filtered_pick(ctx)
    assert gain_ef == base_ef and gain.recall == pytest.approx(base.recall)
    assert gain.headroom == pytest.approx(0.03, abs=1e-6)
    for ef in (10, 20, 40):  # every width narrower than the pick found everything
        _shadowed(ctx, "hnsw", [1.0] * 40, 0.9, {"ef": ef})
    learnt_ef, learnt = _filtered_pick(ctx)
    assert 0 < learnt_ef < base_ef
    assert learnt.recall == pytest.approx(base.recall + 0.03, abs=1e-6)  # the headroom, no more
    assert learnt.as_dict()["recall_headroom"] == pytest.approx(0.03, abs=1e-4)
    # without headroom the same samples credit nothing
    plain = _filtered_ctx(_hnsw_cal(), 12_500)
    for ef in (10, 20, 40):
        _shadowed(plain, "hnsw", [1.0] * 40, 0.9, {"ef": ef})
    assert _filtered_pick(plain)[1].recall == pytest.approx(base.recall)
    # the measured loss at other selectivities: a net gain (a loss below 0) is held toward
    # smaller selectivities and shrinks toward 100%; a loss grows as the model's does
    from vecpg.planner import _filtered_loss, _measured_loss

    rec = [(float(e), r) for e, r in HNSW_CURVE]
    gained = _measured_loss(_with_filtered(0.05), rec, 10)
    lost = _measured_loss(_with_filtered(-0.03), rec, 10)
    at = gained(0.125, 40)
    assert at == pytest.approx(_filtered_loss(0.125, 0.045) - 0.05, abs=1e-6) and at < 0
    assert gained(0.03, 40) == pytest.approx(at) and at < gained(0.6, 40) < 0
    assert lost(0.03, 40) > lost(0.125, 40) > lost(0.6, 40) > 0


def test_an_approximate_plan_probes_a_cheaper_setting_its_headroom_could_credit() -> None:
    """Credit goes to a width from its own samples (or a narrower width's), so a search
    running wide samples a cheaper setting beside its shadows until that width has
    PROBE_CREDIT samples; without headroom there is nothing to probe."""
    from vecpg.planner import PROBE_CREDIT, probe_plan

    # a high target: the model wants a wide beam, the headroom would allow ef 40
    ctx = _filtered_ctx(_with_filtered(0.03), 12_500, recall=0.97)
    best, options = choose(ctx)
    assert best.label == "hnsw" and probe_plan(ctx, best, options) is None  # no samples yet
    # the plan's own samples show no shortfall: now a cheaper setting is worth sampling
    _shadowed(ctx, "hnsw", [1.0] * 20, best.recall, best.params)
    best, options = choose(ctx)
    probe = probe_plan(ctx, best, options)
    assert best.label == "hnsw" and probe is not None and probe.strategy == "hnsw"
    assert probe.params["ef"] < best.params["ef"]
    assert probe.estimate.headroom > 0
    _shadowed(ctx, "hnsw", [0.9] * PROBE_CREDIT, 0.95, probe.params)  # tried, short
    best, options = choose(ctx)
    again = probe_plan(ctx, best, options)
    assert again is None or again.params["ef"] != probe.params["ef"]
    plain = _filtered_ctx(_hnsw_cal(), 12_500, recall=0.97)
    best, options = choose(plain)
    _shadowed(plain, "hnsw", [1.0] * 20, best.recall, best.params)
    best, options = choose(plain)
    assert probe_plan(plain, best, options) is None
    # a shortfall of the plan's own: nothing cheaper is probed
    from vecpg.planner import _cheaper_probe

    short = _filtered_ctx(_with_filtered(0.03), 12_500, recall=0.97)
    best, _ = choose(short)
    _shadowed(short, "hnsw", [0.9, 1.0] * 10, best.recall, best.params)
    _, options = choose(short)  # (exact now; the widest beam, with its shortfall:)
    was = max((o for o in options if o.label == "hnsw"), key=lambda o: o.params["ef"])
    assert was.recall_shift is not None and was.recall_shift.margin < 0
    assert _cheaper_probe(short, was, options) is None


def test_a_strategy_not_yet_measured_inherits_part_of_the_slowdown() -> None:
    """HNSW measured 4x its estimate under a filter (a loaded machine): the exact plan, not
    run under it yet, is charged sqrt(4) = 2x, so load alone does not flip the choice."""
    info = _info(calibration=_hnsw_cal())
    ctx = _ctx(info, rows=100_000, matching=12_000, access="index", expr="tag == 1")
    ctx.cache.record(ctx.table, ctx.query.filter_key, "hnsw", 4.0)
    best, options = choose(ctx)
    exact = next(o for o in options if o.label == "filter_first")
    assert exact.ratio == pytest.approx(2.0) and "other strategies" in exact.cost_source
    assert best.label == "hnsw" and best.ratio == pytest.approx(4.0)


def _shadowed(ctx: PlanContext, label: str, observed: list[float], predicted: float,
              params: dict[str, Any] | None = None) -> None:
    """State shadow samples of ``label`` run with ``params`` (default ef 40) under
    ``ctx``'s filter: these recalls observed where the model predicted ``predicted``."""
    from vecpg.stats import sample_key

    rec = ctx.cache.recall_record(ctx.table, ctx.query.filter_key, ctx.fingerprint, create=True)
    assert rec is not None
    for r in observed:
        ctx.cache.record_recall(rec, sample_key(label, params or {"ef": 40}), r, predicted)


def test_observed_recall_shortfall_widens_the_beam_or_changes_strategy() -> None:
    """Shadow samples showing HNSW 0.01 short of its model under a filter (a filter that
    keeps one end of the space) raise the chosen ef; a shortfall no ef can make up moves
    the search to the exact plan. Samples at or above the model change nothing, and too
    few samples change nothing either."""
    info = _info(calibration=_hnsw_cal())

    def ctx() -> PlanContext:
        return _ctx(info, rows=100_000, matching=30_000, access="index", expr="tag == 1")

    base = ctx()
    best, _ = choose(base)
    assert best.label == "hnsw" and best.recall_shift is None
    ef0 = best.params["ef"]

    short = ctx()
    _shadowed(short, "hnsw", [1.0, 0.9, 1.0, 0.9, 0.9] * 12, best.recall)
    wide, options = choose(short)
    assert wide.label == "hnsw" and wide.params["ef"] > ef0, (ef0, wide.params)
    shift = wide.recall_shift
    # mean 0.94 where 0.95 was predicted: -0.01, shrunk (60 / 66), less a standard error
    # (sd at least sqrt(0.4 x 0.94 x 0.06) = 0.15)
    assert shift is not None and shift.samples == 60 and -0.04 < shift.shift < -0.02
    assert wide.recall >= 0.95 and wide.model_recall == pytest.approx(wide.recall - shift.shift)
    # ef 32-63 share the samples' shift; wider beams borrow it shrunk per power of two
    # (they miss less), narrower ones grow it (they miss more)
    from vecpg.stats import NARROWER_GROWTH

    hnsw = [o for o in options if o.label == "hnsw"]
    (at40,) = [o.recall_shift for o in hnsw if o.params["ef"] == 40]
    assert at40 is not None and all(o.recall_shift == at40 for o in hnsw
                                    if 32 <= o.params["ef"] < 64)
    for o in hnsw:
        if o.params["ef"] >= 64:
            powers = int(math.log2(o.params["ef"])) - 5
            assert o.recall_shift is not None and o.recall_shift.shift == pytest.approx(
                at40.shift / NARROWER_GROWTH ** powers)
    narrow = [o for o in hnsw if o.params["ef"] < 32]
    assert narrow and all(o.recall_shift is not None and o.recall_shift.shift < at40.shift
                          for o in narrow)
    d = wide.as_dict()
    assert d["recall_source"] == "observed recall" and d["recall_samples"] == 60

    hopeless = ctx()
    _shadowed(hopeless, "hnsw", [0.7, 0.6, 0.8, 0.7] * 4, best.recall)
    assert choose(hopeless)[0].label == "filter_first"

    fine = ctx()
    _shadowed(fine, "hnsw", [1.0] * 20, best.recall)
    assert choose(fine)[0].params == best.params
    few = ctx()
    _shadowed(few, "hnsw", [0.5, 0.5], best.recall)
    assert choose(few)[0].params == best.params


def test_a_few_samples_move_the_model_only_when_they_contradict_it() -> None:
    """Below REGRESS_SAMPLES samples the model stands unless the samples' mean shortfall
    exceeds their standard error: four samples that found everything leave an option at
    its model (their lower bound is still below it, so they earn no credit), four far
    below it lower it at once; from REGRESS_SAMPLES on the lower bound is the correction
    when their mean is below the model, and credit above the model needs a bound two
    standard errors above it."""
    from vecpg.stats import REGRESS_SAMPLES, RecallRecord

    def shift(observed: list[float]):
        rec = RecallRecord("ix")
        for o in observed:
            rec.add("hnsw@5", o, 0.95, None)
        got = rec.shift("hnsw@5")
        assert got is not None
        return got

    agree = shift([1.0, 1.0, 0.9, 1.0])
    assert agree.shift == 0.0 and agree.margin < 0 and agree.applied(0.05) == 0.0
    broken = shift([0.5, 0.6, 1.0, 0.4])
    assert broken.shift < -0.1 and broken.applied(0.05) == broken.shift
    # from REGRESS_SAMPLES on the lower bound is the correction of samples showing a
    # shortfall; samples that show none leave the model standing at any count
    enough = shift([1.0, 0.9, 0.9, 0.9] * (REGRESS_SAMPLES // 4 + 1))
    assert enough.shift == pytest.approx(min(0.0, enough.margin)) and enough.shift < 0
    above = shift([1.0, 1.0, 0.9, 1.0] * (REGRESS_SAMPLES // 4 + 1))
    assert above.mean > 0 > above.margin and above.shift == 0.0
    # credit above the model takes a lower bound two standard errors above it: a margin
    # one standard error above it is not enough
    thin = shift([1.0] * 28 + [0.7, 0.8])
    assert thin.margin > 0 >= thin.credit and thin.applied(0.05) == thin.shift == 0.0
    sure = shift([1.0] * 60)
    assert sure.credit > 0 and sure.applied(0.05) == pytest.approx(min(sure.credit, 0.05))
    # ... nor do a few samples that leave the model standing outweigh a narrower width's
    # measured shortfall: they take it as a width without samples would (shrunk)
    from vecpg.stats import NARROWER_GROWTH

    rec = RecallRecord("ix")
    for o in [0.9, 0.8, 1.0, 0.9] * 10:
        rec.add("hnsw@5", o, 0.95, None)
    for o in [1.0, 0.9, 1.0, 1.0]:
        rec.add("hnsw@6", o, 0.95, None)
    short = rec.shift("hnsw@5")
    wide = rec.shift_for("hnsw", {"ef": 64})
    assert short is not None and wide is not None and rec.shift("hnsw@6").shift == 0.0
    assert wide.shift == pytest.approx(short.margin / NARROWER_GROWTH) and wide.shift < -0.03


def test_samples_showing_no_shortfall_do_not_erase_a_narrower_widths() -> None:
    """A wider width whose samples (more of them) show no shortfall still takes the nearest
    narrower width's measured shortfall, its mean shrunk per power of two: lucky samples
    of a wide beam under a filter at one end of the space do not lift it to its model. One
    whose samples show a shortfall of their own keeps its own correction."""
    from vecpg.stats import NARROWER_GROWTH, RecallRecord

    rec = RecallRecord("ix")
    for o in [0.9, 0.8, 1.0, 0.7] * 2:
        rec.add("hnsw@7", o, 0.97, None)
    for o in [1.0] * 14:
        rec.add("hnsw@8", o, 0.97, None)
    narrow = rec.shift("hnsw@7")
    own = rec.shift("hnsw@8")
    assert narrow is not None and narrow.short and own is not None and own.shift == 0.0
    wide = rec.shift_for("hnsw", {"ef": 256}, model=0.97)
    assert wide is not None and wide.shift == pytest.approx(narrow.point / NARROWER_GROWTH)
    assert wide.shift < -0.03
    for o in [0.9, 0.8] * 10:  # now short by its own samples: those stand
        rec.add("hnsw@8", o, 0.97, None)
    own = rec.shift("hnsw@8")
    wide = rec.shift_for("hnsw", {"ef": 256}, model=0.97)
    assert own is not None and own.short and wide is not None
    assert wide.shift == pytest.approx(own.shift)


def test_recall_samples_are_kept_per_width() -> None:
    """Samples are kept per power of two of ef: a width with samples of its own uses them,
    one without borrows from another width (the nearest narrower one as it is, a wider one
    grown), so a wide probe's small shortfall does not dilute the larger one measured at a
    narrow width."""
    from vecpg.stats import NARROWER_GROWTH, RecallRecord, sample_key

    assert sample_key("hnsw", {"ef": 40}) == "hnsw@5" == sample_key("hnsw", {"ef": 63})
    assert sample_key("ivfflat", {"nprobe": 8}) == "ivfflat@3"
    assert sample_key("exact", {}) == "exact"
    rec = RecallRecord("ix")
    cache = StatsCache()
    for r in [1.0, 0.9, 0.8, 0.9] * 5:   # ef 40: 0.1 short of a 0.99 model
        cache.record_recall(rec, "hnsw@5", r, 0.99)
    for r in [1.0] * 2:                  # ef 64: too few samples of its own
        cache.record_recall(rec, "hnsw@6", r, 0.99)
    at40 = rec.shift_for("hnsw", {"ef": 40})
    assert at40 is not None and at40.shift < -0.1
    # a wider width borrows the shortfall shrunk per power of two (a wider beam misses less)
    at64 = rec.shift_for("hnsw", {"ef": 64})
    assert at64 is not None and at64.shift == pytest.approx(at40.shift / NARROWER_GROWTH)
    at500 = rec.shift_for("hnsw", {"ef": 500})
    assert at500 is not None and at500.shift == pytest.approx(at40.shift / NARROWER_GROWTH ** 3)
    at10 = rec.shift_for("hnsw", {"ef": 10})  # two powers of two narrower
    assert at10 is not None and at10.shift == pytest.approx(at40.shift * NARROWER_GROWTH ** 2)
    for r in [1.0] * 14:                 # ef 64 has its own samples now
        cache.record_recall(rec, "hnsw@6", r, 0.99)
    at64 = rec.shift_for("hnsw", {"ef": 64})
    assert at64 is not None and at64.samples == 16 and at64.shift > at40.shift
    # (fewer samples than ef 40's: they do not outweigh its shortfall, shrunk)
    assert at64.shift == pytest.approx(at40.margin / NARROWER_GROWTH)
    # the nearest narrower width with samples lends its own shortfall, two powers of two
    # on: ef 64's samples found everything, so none (their lower bound is their error)
    own64 = rec.shift("hnsw@6")
    at500 = rec.shift_for("hnsw", {"ef": 500})
    assert own64 is not None and at500 is not None and own64.margin < 0
    assert at500.shift == own64.shift == 0.0
    # three unlucky samples of a wide width probed late: the narrower width's recall by its
    # own samples bounds it (a wider beam finds no less), read against the wider one's model
    for r in [0.5] * 3:
        cache.record_recall(rec, "hnsw@7", r, 0.99)
    at150 = rec.shift_for("hnsw", {"ef": 150}, model=0.99)
    assert at150 is not None and at150.shift < own64.shift
    assert at150.applied() == pytest.approx(own64.shift)
    # a higher model at the wider width: the bound is the same recall, a smaller shift
    higher = rec.shift_for("hnsw", {"ef": 150}, model=0.999)
    assert higher is not None and higher.applied() == pytest.approx(own64.shift - 0.009)
    # a narrower width's surplus is a floor, not a lift above the narrower one's recall
    lucky = RecallRecord("ix")
    for r in [1.0] * 30:
        cache.record_recall(lucky, "hnsw@5", r, 0.93)
    for r in [0.9, 0.8] * 10:
        cache.record_recall(lucky, "hnsw@6", r, 0.97)
    wide = lucky.shift_for("hnsw", {"ef": 64}, model=0.97)
    assert wide is not None and 0.97 + wide.applied() <= 0.93 + lucky.shift("hnsw@5").margin + 1e-9


def test_recall_samples_belong_to_one_index_and_filter() -> None:
    """Samples are kept per filter and for the index they were taken on: a rebuilt or
    recalibrated index (another fingerprint) plans from its model again."""
    info = _info(calibration=_hnsw_cal())
    ctx = _ctx(info, rows=100_000, matching=30_000, access="index", expr="tag == 1")
    _shadowed(ctx, "hnsw", [0.7] * 10, 0.95)
    assert ctx.cache.recall_shift(ctx.table, ctx.query.filter_key, "hnsw", {"ef": 40},
                                  ctx.fingerprint)
    other = _ctx(info, rows=100_000, matching=30_000, access="index", expr="tag == 2")
    other.cache = ctx.cache
    assert choose(other)[0].recall_shift is None
    cal = dict(_hnsw_cal(), measured_at="2026-12-02T00:00:00+00:00")
    rebuilt = _ctx(_info(calibration=cal), rows=100_000, matching=30_000, access="index",
                   expr="tag == 1")
    rebuilt.cache = ctx.cache
    assert choose(rebuilt)[0].recall_shift is None
    assert ctx.cache.recall_record(ctx.table, ctx.query.filter_key, ctx.fingerprint) is None


def test_an_exact_plan_chosen_for_a_shortfall_carries_a_probe() -> None:
    """Samples that lower HNSW's recall below the target move the search to an exact plan;
    when the samples' mean shortfall alone (not less its error) leaves a cheaper HNSW
    setting that meets the target, the plan carries it as a probe to sample now and then."""
    from vecpg.planner import PROBE_TESTED, make_plan

    info = _info(calibration=_hnsw_cal())
    ctx = _ctx(info, rows=100_000, matching=12_000, access="index", expr="tag == 1")
    assert choose(ctx)[0].label == "hnsw"
    # 0.03 below a 0.97 model on twenty samples of ef 40 and ten of each wider width: the
    # shift less its error makes every ef miss 0.95; the mean alone (shrunk) does not
    _shadowed(ctx, "hnsw", [1.0, 0.9, 0.9, 0.9, 1.0] * 4, 0.97)
    for ef in (64, 128, 256, 512):
        _shadowed(ctx, "hnsw", [1.0, 0.9, 0.9, 0.9, 1.0] * 2, 0.97, {"ef": ef})
    best, options = choose(ctx)
    assert best.label == "filter_first"
    plan = make_plan(ctx, best, options)
    assert plan.probe is not None and plan.probe.strategy == "hnsw"
    assert plan.probe.fallback is None and plan.probe.estimate.learns is False
    assert plan.explain is not None and plan.explain["probe"]["strategy"] == "hnsw"
    # it goes to a width with few samples of its own first (not the sampled ef 32-63)
    rec = ctx.cache.recall_record(ctx.table, ctx.query.filter_key, ctx.fingerprint)
    assert rec is not None and rec.count("hnsw", {"ef": 40}) == 20
    assert rec.count("hnsw", plan.probe.params) < PROBE_TESTED
    # a shortfall so large that no setting meets the target even so: the setting likeliest
    # to is probed all the same (else a few unlucky samples would keep the filter exact)
    worse = _ctx(info, rows=100_000, matching=12_000, access="index", expr="tag == 1")
    _shadowed(worse, "hnsw", [0.5] * 30, 0.97)
    best, options = choose(worse)
    assert best.label == "filter_first"
    probe = make_plan(worse, best, options).probe
    hnsw = [o for o in options if o.label == "hnsw"]
    # (likeliest by the mean shortfall alone: a wider width borrows less of it)
    likeliest = min(hnsw, key=lambda o: (-round(o.model_recall + o.recall_shift.point, 3),
                                         o.cost_ms))
    assert probe is not None and probe.params == likeliest.params
    # an approximate plan has no probe: it is shadowed itself
    plain = _ctx(info, rows=100_000, matching=12_000, access="index", expr="tag == 1")
    best, options = choose(plain)
    assert make_plan(plain, best, options).probe is None


def test_recall_shift_reads_the_samples_at_all_searches_mean_distance() -> None:
    """Queries whose answers lie far are the ones a filtered scan misses. Ten samples, eight
    of them close and found, two far and half missed: where half of all searches' answers
    lay far, the shortfall is read on the line through the samples at all searches' mean
    k-th distance (-0.2), not the samples' plain mean (-0.05)."""
    from vecpg.stats import RecallRecord

    def record(population: list[float]) -> RecallRecord:
        rec = RecallRecord("ix")
        for r, h in [(1.0, 0.2)] * 8 + [(0.5, 0.6)] * 2:
            StatsCache().record_recall(rec, "hnsw", r, 0.95, h)
        for h in population:
            rec.note("hnsw", h)
        return rec

    like_samples = record([0.2] * 80 + [0.6] * 20).shift("hnsw")
    assert like_samples is not None and like_samples.mean == pytest.approx(-0.05)
    far = record([0.2] * 50 + [0.6] * 50).shift("hnsw")
    assert far is not None and far.mean == pytest.approx(-0.2)
    assert far.shift < like_samples.shift < 0
    # fewer than k rows (no k-th distance) in a sample: the plain mean
    rec = record([0.2] * 50 + [0.6] * 50)
    StatsCache().record_recall(rec, "hnsw", 1.0, 0.95, None)
    plain = rec.shift("hnsw")
    assert plain is not None and plain.mean == pytest.approx((8 * 0.05 - 0.9 + 0.05) / 11)
