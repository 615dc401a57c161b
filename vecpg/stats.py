"""Statistics the planner measures: rows in a collection, a filter's selectivity, and the
measured cost of plans under a filter, cached per collection and filter.

- rows: ``pg_class.reltuples`` scaled to the table's current size, as Postgres' own planner
  does (an exact count when the table was never analyzed and is small);
- a filter's selectivity: Postgres' estimate (``EXPLAIN`` of ``SELECT 1 ... WHERE <filter>``
  with the same values), which also tells whether an index serves the filter; when the
  choice of strategy would change within a factor of 4 of that estimate, or the filter
  reads JSON values (:func:`reads_json`: Postgres keeps no statistics of a JSON path and
  guesses, 0.5% for ``==`` and 33% for ``>``, whatever the data), the planner has a sample of
  the table counted instead (:func:`sample_filter`);
- the recall filtered plans actually delivered (:class:`RecallRecord`): shadow queries
  (:func:`vecpg.shadow.shadow`) run some searches' query vectors exactly as well,
  and each sample keeps the recall observed with the recall the planner's model predicted,
  so the model can be corrected per filter (:meth:`StatsCache.recall_shift`).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import sql

from . import distributed
from .errors import ServerError
from .query import Query
from .schema import META_COLUMN, DataType
from .session import Db

RESERVOIR = 100  # query vectors kept per field for calibration
# Recall samples: the shift is only applied from MIN_SAMPLES on; the last RECALL_WINDOW are
# kept per strategy (data drifts). One query's recall@10 varies a lot where the model's
# error on the dev set's filters was about 0.03, so the model counts as PRIOR_SAMPLES
# samples of no shift ((0.08 / 0.03)^2 ~ 7). Measured with the model counting as 2 samples
# (50k x 128, 30%, no correlation): three shadows of an accurate model (0.977 seen, ~0.98
# modelled) moved HNSW at 1,400 QPS to an exact plan at 190 QPS.
# Tried: letting the model stand until 16 samples unless they contradicted it outright
# (a standard error of 0.08 at three samples sends HNSW plans exact early): sixteen first
# samples of a filter that HNSW served at 0.895 (c < 200, ef 40) happened to show 0.97,
# and auto delivered 0.904 for the rest of the run; the early exact plan's probes find the
# way back instead (see vecpg.planner.probe_plan).
MIN_SAMPLES, RECALL_WINDOW, PRIOR_SAMPLES = 3, 64, 6.0
# One query's recall is mostly 1.0 with rare deep misses (0.0-0.5), which a few samples
# rarely show: its variance is taken as at least SPREAD * m (1 - m) at mean recall m (that
# of all-or-nothing answers, scaled). Measured at ef 40 on 50k x 128 (200 queries): sd 0.182
# at mean 0.899, 0.163 at 0.931, 0.085 at 0.984 (SPREAD 0.4 gives 0.190, 0.160, 0.079).
# Sixteen samples with a spread of 0.1 once put a 0.93 filter at 0.96.
SPREAD = 0.4
# From REGRESS_SAMPLES samples on, the mean is a regression estimate on each search's k-th
# distance (see RecallRecord.shift): measured on 50k x 128 at ef 40 (200 queries), one
# query's recall correlated with its k-th distance at -0.72 (a filter keeping 20% of rows
# at one end of the space), -0.71 (30%) and -0.62 (30%, uncorrelated filter).
REGRESS_SAMPLES = 8
# Samples are kept per width of the setting (HNSW's ef, IVF's nprobe), in powers of two: a
# filtered scan's shortfall shrinks as the beam widens, so one shift for all widths mixes
# them (50k x 128, 30% at one end of the space: 0.036 short at ef 40, 0.013 at ef 400;
# samples of probes at ef 300 pooled with those at ef 40 moved auto back to ef 40-55, which
# delivered 0.935). A width's corrected recall is at least a narrower width's (on the dev
# set, three samples of ef 40 put it 0.06 short where fifteen of ef 16-31 said 0.003); one
# without samples takes the nearest narrower width's shortfall shrunk NARROWER_GROWTH times
# per power of two, or with nothing narrower the nearest wider one's, grown as much (the
# measurement above: 2.8x over ten times the ef).
WIDTH_KNOBS = ("ef", "nprobe")
NARROWER_GROWTH = 1.4
# Stamps of a RecallRecord's state (next() of a count is atomic under the GIL, so two
# threads adding samples at once never leave one stamp on two states)
_STAMPS = itertools.count(1)


@dataclass(frozen=True)
class Stats:
    """What the planner knows of the rows a search looks at."""

    rows: float                   # rows in the collection
    rows_source: str              # "pg_class" | "count" | "pages" | "not measured"
    matching: float               # rows the filter lets through (= rows when unfiltered)
    selectivity_source: str       # "none" (no filter) | "planner" | "sample" | "count"
    filter_access: str | None     # "index" | "seq": how Postgres reaches the matching rows
    planner_matching: float | None = None  # Postgres' estimate, when a sample replaced it

    @property
    def selectivity(self) -> float:
        """The share of rows the filter lets through (1 without one)."""
        return min(1.0, self.matching / self.rows) if self.rows > 0 else 1.0


@dataclass(frozen=True)
class RecallShift:
    """The correction of a strategy's modelled recall under one filter, from shadow
    samples: ``shift`` is added to every option's recall (at most 0)."""

    shift: float
    samples: int
    mean: float                   # mean of observed - predicted
    se: float                     # its standard error
    point: float = 0.0            # the mean shrunk toward the model, not less its error
    margin: float = 0.0           # point - se, not capped at 0 (> 0: the model holds)
    predicted: float = 0.0        # the samples' mean predicted recall
    floor: float = -math.inf      # the least correction: a narrower width's corrected recall

    @property
    def credit(self) -> float:
        """How far the samples put the recall above the model, two standard errors below
        their (shrunk) mean: a shortfall is corrected at one, but a recall raised above the
        model is a promise the samples must bear out more surely. At one, 26 samples of a
        filter at one end of the space (50k x 128, 30%) credited ef 40 0.011 above its
        model, to 0.951, and it delivered 0.943."""
        return self.margin - self.se

    @property
    def short(self) -> bool:
        """Whether the samples show a shortfall at all (their mean is below the model; a
        lower bound below it may be their error alone)."""
        return self.mean < 0

    def applied(self, headroom: float = 0.0) -> float:
        """The correction an option gets: ``shift``, or up to ``headroom`` above its model
        when the samples bear it out (:attr:`credit` > 0); never below ``floor``. The
        headroom is what a filtered calibration measured beyond the model (vecpg.planner's
        HnswStrategy): the model stays the prior, so a filter that correlates with the
        vectors is not promised an independent one's recall before its samples say so."""
        if headroom > 0 and self.credit > 0:
            return max(self.floor, min(self.credit, headroom))
        return max(self.floor, self.shift)


@dataclass
class RecallRecord:
    """What shadow queries measured under one filter of one table, for one index (its
    ``fingerprint``): recall samples per strategy label and width (:func:`sample_key`),
    ``(observed, predicted, k-th distance)``, the k-th distances of all searches under
    that key, and the budget spent (searches and their milliseconds, shadows and theirs)."""

    fingerprint: str
    at: float = 0.0
    # per sample key: (observed, predicted, the k-th distance the approximate answer had)
    samples: dict[str, deque[tuple[float, float, float | None]]] = field(default_factory=dict)
    # per sample key: count and sum of the k-th distance of every search's answers
    kth: dict[str, list[float]] = field(default_factory=dict)
    searches: int = 0
    search_ms: float = 0.0
    shadows: int = 0
    shadow_ms: float = 0.0
    first_ms: float = 0.0         # of which the first shadows (outside the budget)
    failures: int = 0
    probes: int = 0               # probes run (beside an exact plan, or a shadow)
    # vecpg.shadow's last answer to "are the first shadows still due?": (shadows, key, due)
    first_check: tuple[int, str, bool] | None = None
    # query vectors whose shadows wait for a batch (vecpg.shadow's _Waiting)
    pending: list[Any] = field(default_factory=list)
    # shift() per sample key, with the stamp of the state it was computed on: planning
    # corrects a dozen options, each reading its width's and its neighbours' shifts (1 ms
    # per plan computed afresh with four widths of 64 samples, 0.1 ms once each)
    stamp: int = field(default=0, init=False, compare=False)
    _shifts: dict[str, tuple[int, RecallShift | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def add(self, label: str, observed: float, predicted: float, kth: float | None) -> None:
        """Keep one shadow sample under sample key ``label`` (see StatsCache.record_recall)."""
        self.samples.setdefault(label, deque(maxlen=RECALL_WINDOW)).append(
            (observed, predicted, kth))
        self.stamp = next(_STAMPS)

    def note(self, label: str, kth: float) -> None:
        """Count the k-th distance of one search's answer by plan ``label``."""
        acc = self.kth.setdefault(label, [0.0, 0.0])
        acc[0] += 1
        acc[1] += kth
        self.stamp = next(_STAMPS)

    def count(self, label: str, params: dict[str, Any]) -> int:
        """How many samples of plan ``label`` at the width of ``params`` are kept."""
        return len(self.samples.get(sample_key(label, params), ()))

    def shift_for(self, label: str, params: dict[str, Any], model: float | None = None
                  ) -> RecallShift | None:
        """The recall correction of plan ``label`` run with ``params`` (whose modelled
        recall is ``model``): :meth:`shift` of its width's samples (:func:`sample_key`); a
        width without samples borrows the nearest narrower width's shortfall, shrunk, else
        the nearest wider one's, grown (see NARROWER_GROWTH). Given ``model``, the corrected
        recall is at least the nearest narrower width's corrected recall (``floor``: a wider
        beam finds no less, and a few samples of a width probed late have a large error).
        Compared as shifts instead, a narrower width's lucky samples can lift a wider one
        whose model stands higher (the likely cause, not traced, of a 20% filter at one
        end of the space run at ef 64 for a whole run, delivering 0.906, on 50k x 128).
        None when no width has MIN_SAMPLES."""
        key = sample_key(label, params)
        own = self.shift(key)
        width = _split_key(key)[1]
        if width is None:
            return own
        narrower: tuple[int, RecallShift] | None = None
        wider: tuple[int, RecallShift] | None = None
        floor = -math.inf
        for other in list(self.samples):
            of, b = _split_key(other)
            if b is None or b == width or of != label:
                continue
            s = self.shift(other)
            if s is None:
                continue
            if b < width and (narrower is None or b > narrower[0]):
                narrower = (b, s)
            elif b > width and (wider is None or b < wider[0]):
                wider = (b, s)
        if narrower is not None and model is not None:
            # (the nearest one only: the largest of several widths' lower bounds is biased
            # upward; 50k x 128, 30% at one end of the space, with the floor of any
            # narrower width: auto ran ef 50 and delivered 0.940)
            s = narrower[1]
            floor = s.predicted + s.shift - model
        out = own
        if out is not None and narrower is not None and narrower[1].short:
            b, s = narrower
            lent = None
            if out.samples < s.samples:
                # fewer samples than the nearest narrower width's do not outweigh its
                # measured shortfall (borrowed as below): eight samples of ef 64 under a
                # filter at one end of the space put it 0.013 short where twenty of ef 32-63
                # said 0.054, and ef 64 delivered 0.939 (50k x 128, 30%); nor do a few that
                # left the model standing. Nor is it at its model when its samples show no
                # shortfall: its own lower bound stands (eleven samples of ef 64-127 at their
                # model, beside twenty-five of ef 16-31 0.026 under theirs, ran ef 84 at
                # 0.945 where ef 150 was needed; 50k x 128, 30% at one end of the space)
                lent = min(0.0, s.margin) * NARROWER_GROWTH ** (b - width)
                if out.samples >= REGRESS_SAMPLES:
                    lent = min(lent, out.margin)
            elif not out.short:
                # nor do more that show no shortfall erase the narrower one's (its mean,
                # shrunk): fourteen samples of ef 256 at its model, beside eight of ef
                # 128-255 corrected 0.1 under theirs, ran ef 256 at 0.932 (50k x 128, 20% at
                # one end of the space)
                lent = s.point * NARROWER_GROWTH ** (b - width)
            if lent is not None and lent < out.shift:
                out = replace(out, shift=lent)
        # (a width's surplus is no other's: only a shortfall is borrowed)
        if out is None and narrower is not None:
            # shrunk per power of two as a narrower width's is grown: taken whole, a
            # shortfall of 0.016 at ef 64 kept every width to ef 255 under the target and
            # a filter ran ef 256 all run, 0.30x the QPS of ef 30 (dev set, 20%
            # uncorrelated). Where the shortfall does not shrink (a filter at one end of
            # the space) the wider width's own first samples correct it: a width the plan
            # runs gets shadows of its own until it has REGRESS_SAMPLES (vecpg.shadow)
            b, s = narrower
            keep = NARROWER_GROWTH ** (b - width)
            out = replace(s, shift=s.shift * keep, point=s.point * keep,
                          margin=min(0.0, s.margin) * keep)
        elif out is None and wider is not None:
            b, s = wider
            grow = NARROWER_GROWTH ** (b - width)
            out = replace(s, shift=s.shift * grow, point=s.point * grow,
                          margin=min(0.0, s.margin) * grow)
        if out is not None and floor > out.shift:
            out = replace(out, floor=floor)
        return out

    def shift(self, label: str) -> RecallShift | None:
        """:meth:`_shift` of ``label``, computed once per state of the samples."""
        stamp = self.stamp  # (read first: a sample added meanwhile makes the entry stale)
        hit = self._shifts.get(label)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = self._shift(label)
        self._shifts[label] = (stamp, value)
        return value

    def _shift(self, label: str) -> RecallShift | None:
        """The recall correction for ``label``: the mean of observed - predicted, shrunk
        toward 0 (the model, worth PRIOR_SAMPLES samples), less its standard error (a
        conservative shortfall), never positive; None below MIN_SAMPLES.

        One query's recall varies a lot (most find all k, some half) and few are sampled,
        but every search tells how far its k-th answer lies, and queries whose answers lie
        far are the ones a filtered scan misses. So from REGRESS_SAMPLES samples on the
        mean is the regression estimate (survey sampling's): observed - predicted fitted
        as a line in the k-th distance over the samples, read at the mean k-th distance of
        all searches; lucky samples (close answers) then count for what they are, and the
        error is the residuals' (with the line's own error at that point)."""
        # a copy first: list() of a deque runs under the GIL, a Python loop over it may
        # meet another thread's append ("deque mutated during iteration")
        got = list(self.samples.get(label, ()))
        if len(got) < MIN_SAMPLES:
            return None
        d = [o - p for o, p, _ in got]
        n = len(d)
        mean = sum(d) / n
        ss = sum((x - mean) ** 2 for x in d)
        m = (sum(o for o, _, _ in got) + 0.5) / (n + 1)  # (never quite 1 on few samples)
        extra, dof, floor = 0.0, n - 1, SPREAD * m * (1.0 - m)
        acc = self.kth.get(label)
        hs = [h for _, _, h in got if h is not None]
        if n >= REGRESS_SAMPLES and acc and acc[0] >= n and len(hs) == n:
            mh = sum(hs) / n
            sxx = sum((h - mh) ** 2 for h in hs)
            if sxx > 1e-12:
                beta = sum((x - mean) * (h - mh) for x, h in zip(d, hs)) / sxx
                gap = acc[1] / acc[0] - mh  # all searches' mean k-th distance - samples'
                mean += beta * gap
                ss = sum((x - mean - beta * (h - mh - gap)) ** 2 for x, h in zip(d, hs))
                # the distance explained about half the variance (correlations -0.62..-0.72)
                extra, dof, floor = gap * gap / sxx, n - 2, floor / 2
        var = max(ss / dof, floor) if dof > 0 else floor
        se = math.sqrt(var * (1.0 / (n + PRIOR_SAMPLES) + extra))
        point = n * mean / (n + PRIOR_SAMPLES)
        shift = min(0.0, point - se)
        if n < REGRESS_SAMPLES and mean + math.sqrt(var / n) >= 0:
            # A few samples that do not contradict the model leave it standing: their
            # lower bound (margin) is still below it, as the standard error of so few is
            # large, so no credit and no end of the first shadows, but a plan does not
            # widen on them. Taken as the shift, four samples that all found everything
            # put an option the model gave 0.95 at 0.91, so the first shadows always
            # widened or went exact (50k x 128, 30% uncorrelated: ef 43 -> exact -> ef 143
            # -> 64, where ef 30 delivered 0.96)
            shift = 0.0
        elif mean >= 0:
            # More samples that show no shortfall at all leave it standing too: a lower
            # bound under the model is their error alone, and the model stood before them
            # with no less. Taken as the shift, eight samples 0.008 above the model put ef
            # 40 0.036 under it and the plan went to ef 128, sixteen 0.017 above it kept
            # ef 64, where ef 10 delivered 0.956 (dev set, 20% uncorrelated)
            shift = 0.0
        return RecallShift(shift, n, mean, se, min(0.0, point), point - se,
                           sum(p for _, p, _ in got) / n)

    def as_dict(self) -> dict[str, Any]:
        """The shadow budget as explain reports it."""
        return {"searches": self.searches, "search_ms": round(self.search_ms, 1),
                "shadows": self.shadows, "shadow_ms": round(self.shadow_ms, 1),
                "first_shadows_ms": round(self.first_ms, 1),
                "failures": self.failures, "probes": self.probes, "waiting": len(self.pending),
                "samples": {k: len(v) for k, v in list(self.samples.items())}}


def sample_key(label: str, params: dict[str, Any]) -> str:
    """Under what recall samples of plan ``label`` run with ``params`` are kept: the label
    and the power of two of its width (``hnsw@5`` for ef 32-63; see WIDTH_KNOBS)."""
    width = next((params[k] for k in WIDTH_KNOBS if k in params), None)
    if not isinstance(width, (int, float)) or width < 1:
        return label
    return f"{label}@{int(math.log2(width))}"


def _split_key(key: str) -> tuple[str, int | None]:
    """A :func:`sample_key`'s label and power of two (None: a setting without width)."""
    label, at, b = key.partition("@")
    return label, int(b) if at else None


def index_fingerprint(ix: Any) -> str:
    """What recall samples are valid for: the index (name, version) and its calibration
    (a rebuild or a new calibration changes both the graph and the model's predictions)."""
    if ix is None:
        return ""
    cal = ix.calibration if isinstance(ix.calibration, dict) else {}
    return f"{ix.index_name}:{ix.version}:{cal.get('measured_at')}"


class StatsCache:
    """Row counts, filter selectivities and measured latencies, kept for ``ttl`` seconds
    (the ratios of measured to estimated cost for ``observed_ttl``, recall samples for
    ``recall_ttl`` after their filter's last shadow, and while the index is the same)."""

    def __init__(self, ttl: float = 10.0, observed_ttl: float = 60.0,
                 recall_ttl: float = 3600.0) -> None:
        self.ttl = ttl
        self.observed_ttl = observed_ttl
        self.recall_ttl = recall_ttl
        self._recall: dict[tuple[str, str], RecallRecord] = {}
        # shadow milliseconds and search milliseconds of every filter (the global budget)
        self.shadow_totals = [0.0, 0.0]
        self._rows: dict[str, tuple[float, tuple[float, str]]] = {}
        self._filters: dict[tuple[str, str], tuple[float, tuple[float, str | None, str,
                                                                 float | None]]] = {}
        self._observed: dict[tuple[str, str, str], tuple[float, float]] = {}
        # the first query vectors searched per (table, field): real queries to calibrate with
        self.queries: dict[tuple[str, str], list[Any]] = {}

    def rows(self, db: Db, table: str, dim: int, fresh: bool) -> tuple[float, str]:
        """Rows in ``table`` (cached for ``ttl`` seconds unless ``fresh``) and the source."""
        now = time.monotonic()
        hit = self._rows.get(table)
        if hit is not None and not fresh and now - hit[0] < self.ttl:
            return hit[1]
        value = measure_rows(db, table, dim)
        self._rows[table] = (now, value)
        return value

    def filter(self, q: Query, table: str, fresh: bool
               ) -> tuple[float, str | None, str, float | None] | None:
        """Cached (matching, access, source, planner estimate) of ``q``'s filter, or None."""
        hit = self._filters.get((table, q.filter_key))
        if hit is not None and not fresh and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return None

    def forget_table(self, table: str) -> None:
        """Drop what is known of a dropped table (its remembered queries above all: a
        collection made again under the name may have another dimension)."""
        for key in [k for k in self.queries if k[0] == table]:
            del self.queries[key]
        for rkey in [k for k in list(self._recall) if k[0] == table]:
            self._recall.pop(rkey, None)
        self._rows.pop(table, None)

    def forget_filters(self, table: str) -> None:
        """Drop the filter statistics of ``table`` (an index now serves some filter)."""
        for key in [k for k in self._filters if k[0] == table]:
            self._filters.pop(key, None)

    def put_filter(self, table: str, q: Query, value: tuple[float, str | None, str, float | None]
                   ) -> None:
        """Cache what was measured of ``q``'s filter."""
        if len(self._filters) > 4096:  # many distinct filters: start over rather than grow
            self._filters.clear()
        self._filters[(table, q.filter_key)] = (time.monotonic(), value)

    def remember(self, table: str, field: str, vectors: list[Any]) -> bool:
        """Keep float query vectors until RESERVOIR are kept; False once full."""
        kept = self.queries.setdefault((table, field), [])
        for v in vectors[:RESERVOIR - len(kept)]:
            kept.append(v.to_numpy())
        return len(kept) < RESERVOIR

    def ratio(self, table: str, filter_key: str, label: str) -> float | None:
        """Measured / estimated cost of strategy ``label`` under this filter, if measured."""
        hit = self._observed.get((table, filter_key, label))
        if hit is None or time.monotonic() - hit[0] > self.observed_ttl:
            return None
        return hit[1]

    def ratios(self, table: str, filter_key: str) -> list[float]:
        """The measured / estimated costs of every strategy measured under this filter."""
        now = time.monotonic()
        return [r for (t, f, _), (at, r) in list(self._observed.items())
                if t == table and f == filter_key and now - at <= self.observed_ttl]

    def record(self, table: str, filter_key: str, label: str, ratio: float) -> None:
        """Keep the measured / estimated cost of strategy ``label`` under this filter."""
        if len(self._observed) > 4096:
            self._observed.clear()
        self._observed[(table, filter_key, label)] = (time.monotonic(), ratio)

    def recall_record(self, table: str, filter_key: str, fingerprint: str, *,
                      create: bool = False) -> RecallRecord | None:
        """The shadow record of this filter for the index ``fingerprint`` (a new one when
        ``create``; a record of another index, or older than ``recall_ttl``, is dropped)."""
        key = (table, filter_key)
        rec = self._recall.get(key)
        if rec is not None and (rec.fingerprint != fingerprint
                                or time.monotonic() - rec.at > self.recall_ttl):
            self._recall.pop(key, None)
            rec = None
        if rec is None and create:
            if len(self._recall) > 4096:  # many distinct filters: start over rather than grow
                self._recall.clear()
            rec = self._recall[key] = RecallRecord(fingerprint, time.monotonic())
        return rec

    def record_recall(self, rec: RecallRecord, label: str, observed: float,
                      predicted: float, kth: float | None = None) -> None:
        """Keep one shadow sample of strategy ``label``: the recall a query got, the
        recall the model predicted for the option that ran, and the k-th distance of the
        answer (None: fewer than k rows)."""
        rec.add(label, observed, predicted, kth)
        rec.at = time.monotonic()

    def recall_shift(self, table: str, filter_key: str, label: str, params: dict[str, Any],
                     fingerprint: str, model: float | None = None) -> RecallShift | None:
        """The correction of the modelled recall (``model``) of ``label`` run with
        ``params`` under this filter (see :meth:`RecallRecord.shift_for`), if enough
        samples were taken."""
        rec = self.recall_record(table, filter_key, fingerprint)
        return None if rec is None else rec.shift_for(label, params, model)


def reads_json(q: Query) -> bool:
    """True when ``q``'s filter reads a JSON field or the dynamic fields: Postgres has no
    statistics of a path inside a JSON value and estimates such conditions with fixed
    guesses (measured on the dev set: a JSON filter matching 1.8% estimated at 33%, one
    matching 30% at 99.5%)."""
    if not q.filtered:
        return False
    schema = q.info.schema
    names = [f.name for f in schema.fields if f.dtype is DataType.JSON]
    if schema.enable_dynamic_field:
        names.append(META_COLUMN)
    text = q.filter_key
    return any(sql.Identifier(n).as_string(None) in text for n in names)


def measure_rows(db: Db, table: str, dim: int) -> tuple[float, str]:
    """Rows in ``table``: reltuples scaled by the current page count (as Postgres' planner
    does); an exact count when the table was never analyzed (or analyzed empty) and is small."""
    row = db.execute(
        "SELECT c.reltuples::float8, c.relpages, pg_relation_size(c.oid)"
        " / current_setting('block_size')::int FROM pg_class c WHERE c.oid = %s::regclass",
        (table,), prepare=False).fetchone()
    if row is None:
        raise ServerError(f"table {table} has no pg_class row")
    reltuples, relpages, pages = float(row[0]), int(row[1]), int(row[2])
    if reltuples >= 0 and relpages > 0:
        return reltuples / relpages * max(pages, 1), "pg_class"
    if pages <= 10000:  # up to 80 MB: counting is cheap and right
        cur = db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table)), prepare=False)
        n = cur.fetchone()
        return float(n[0] if n else 0), "count"
    return pages * 8192 / (4 * dim + 64), "pages"


def measure_filter(db: Db, q: Query) -> tuple[float, str]:
    """Postgres' estimate of the rows matching ``q``'s filter, and whether it reaches them
    through an index ("index") or a sequential scan ("seq")."""
    where, params = q.filter_sql
    stmt = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {}").format(q.table, where)
    row = db.execute(stmt, params, prepare=False).fetchone()
    if row is None:
        raise ServerError("EXPLAIN returned no plan")
    doc = row[0]
    if isinstance(doc, str):
        doc = json.loads(doc)
    plan, tasks = doc[0]["Plan"], 1
    if distributed.of(q.info) is not None:
        # Citus: one shard's estimate times the shard tasks (see citus_remote_plan)
        plan, tasks = distributed.citus_remote_plan(doc) or (plan, 1)
    access = "seq"
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.get("Node Type") in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan",
                                     "Bitmap Index Scan"):
            access = "index"
        stack.extend(node.get("Plans", []))
    return float(plan.get("Plan Rows", 1)) * tasks, access


def sample_filter(db: Db, q: Query, rows: float) -> tuple[float, str] | None:
    """Rows matching ``q``'s filter, counted exactly (small tables) or in a block sample of
    about 10,000 rows (``TABLESAMPLE SYSTEM``), ten times that when fewer than 20 rows
    of the sample matched (a count so small is a coarse share); None when the sample came
    back empty."""
    where, params = q.filter_sql
    if rows <= 20000:
        cur = db.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(q.table, where),
                           params, prepare=False)
        n = cur.fetchone()
        return float(n[0] if n else 0), "count"
    if not q.info.sees_all:
        return None  # a sample counts only the rows this role sees, not the share of all
    got = None
    for size in (10000, 100000):
        pct = min(100.0, 100.0 * size / rows)
        cur = db.execute(sql.SQL("SELECT count(*) FILTER (WHERE {}), count(*) FROM {} "
                                 "TABLESAMPLE SYSTEM (%s)").format(where, q.table),
                         [*params, pct], prepare=False)
        got = cur.fetchone()
        if not got or not got[1]:
            return None
        if got[0] >= 20 or pct >= 100.0:
            break
    assert got is not None  # the loop ran
    return rows * got[0] / got[1], "sample" if pct < 100.0 else "count"


