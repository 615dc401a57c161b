"""Benchmark output: a JSON lines file written as results arrive, text tables, PNG plots.

Every record is a flat dict with a ``kind``: ``run`` (machine, versions, options), ``load``,
``ingest``, ``build``, ``search``, ``skip`` (an index type that is not available), ``error``,
``scale``. ``search`` records carry ``system`` (``vecpg``, ``pgvector-sql`` for the raw SQL
baseline, ``hnswlib``, ``faiss``, ``milvus-lite``), ``index``, the swept ``param`` and its
``value``, ``filter`` (None when unfiltered), ``recall`` (at ``k``), ``qps``, ``p50_ms``,
``p99_ms``; vecpg rows that have a raw baseline also carry ``vecpg_over_raw`` (QPS ratio at
the same setting, measured interleaved) and ``same_ids``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO


class Report:
    """Collects records and appends each to ``<out>/results.jsonl`` as soon as it is made,
    so an interrupted run keeps what it measured."""

    def __init__(self, out_dir: str | Path, *, stream: TextIO | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / "results.jsonl"
        self.path.write_text("")
        self.records: list[dict[str, Any]] = []
        self.stream = stream
        self.start = time.monotonic()

    @classmethod
    def read(cls, out_dir: str | Path) -> Report:
        """The records of an earlier run's ``results.jsonl`` (to draw its tables and plots
        again); new records are not written back."""
        path = Path(out_dir) / "results.jsonl"
        report = cls.__new__(cls)
        report.out_dir, report.path, report.stream = Path(out_dir), path, None
        report.start = time.monotonic()
        report.records = [json.loads(line) for line in path.read_text().splitlines() if line]
        return report

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Keep ``record`` and append it to the file, stamped with the seconds since the
        run started (``elapsed_s``: where the time of a run goes)."""
        record.setdefault("elapsed_s", round(time.monotonic() - self.start, 1))
        self.records.append(record)
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=_json_default) + "\n")
        return record

    def note(self, text: str) -> None:
        """A line for the reader (skipped indexes, errors): printed now and kept."""
        if self.stream is not None:
            print(text, file=self.stream, flush=True)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The records of one ``kind`` ("search", "build", "skip", ...), in order."""
        return [r for r in self.records if r.get("kind") == kind]


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------------------- tables


def _fmt(v: Any, spec: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and spec:
        return format(v, spec)
    return str(v)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table (also readable as plain text)."""
    rows = [list(r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def search_table(records: Sequence[dict[str, Any]], filter_name: str | None) -> str:
    """The search records of one filter (None: unfiltered) as a markdown table."""
    recs = [r for r in records if r.get("kind") == "search" and r.get("filter") == filter_name]
    k = recs[0]["k"] if recs else 10
    deep = k > 10  # also show recall@10 of the first 10 results
    rows = []
    for r in recs:
        setting = f"{r['param']}={r['value']}" if r.get("param") else ""
        row = [r["system"], r["index"], setting, f"{r['recall']:.3f}"]
        if deep:
            row.append(_fmt(r.get("recall@10"), ".3f"))
        row += [_qps(r["qps"]), _fmt(r.get("p50_ms"), ".2f"), _fmt(r.get("p99_ms"), ".2f"),
                _fmt(r.get("mean_results"), ".1f"), _fmt(r.get("vecpg_over_raw"), ".2f")]
        rows.append(row)
    header = ["system", "index", "setting", f"recall@{k}"] + (["recall@10"] if deep else [])
    header += ["QPS", "p50 ms", "p99 ms", "rows", "vecpg/raw"]
    return markdown_table(header, rows)


def build_table(records: Sequence[dict[str, Any]]) -> str:
    """The index builds as a markdown table: time, size, bytes per vector."""
    rows = [[r["system"], r["index"], json.dumps(r.get("params", {}), sort_keys=True),
             f"{r['build_s']:.1f}", _fmt(_mb(r.get("index_bytes")), ".1f"),
             _fmt(r.get("bytes_per_vector"), ".0f")]
            for r in records if r.get("kind") == "build"]
    return markdown_table(["system", "index", "params", "build s", "index MB", "bytes/vector"],
                          rows)


def _qps(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _mb(b: Any) -> float | None:
    return None if b is None else float(b) / 1e6


def ingest_table(records: Sequence[dict[str, Any]]) -> str:
    """The ingest paths as a markdown table, each against raw ``COPY`` (the ceiling)."""
    rows = [[r["path"], f"{r['rows']:,}", f"{r['rows_per_s']:,.0f}",
             _fmt(r.get("ratio_to_raw"), ".2f")]
            for r in records if r.get("kind") == "ingest"]
    return markdown_table(["path", "rows", "rows/s", "vs raw COPY"], rows)


def full_report(report: Report) -> str:
    """Every table of a dataset run, as markdown (printed, and saved as ``tables.md``)."""
    recs = report.records
    parts: list[str] = []
    run = next((r for r in recs if r.get("kind") == "run"), None)
    if run is not None:
        parts.append(f"dataset {run.get('dataset')}: {run.get('n_train')} x {run.get('dim')} "
                     f"{run.get('metric')}, {run.get('queries')} queries, k={run.get('k')}; "
                     f"Postgres {run.get('postgres')}, pgvector {run.get('pgvector')}")
    if report.of_kind("load"):
        ld = report.of_kind("load")[0]
        parts.append(f"load: {ld['rows']:,} rows in {ld['seconds']:.1f} s "
                     f"({ld['rows_per_s']:,.0f} rows/s), table {ld['table_bytes'] / 1e6:.1f} MB")
    if report.of_kind("ingest"):
        parts.append("### Ingest\n\n" + ingest_table(recs))
    if report.of_kind("build"):
        parts.append("### Index builds\n\n" + build_table(recs))
    filters = [None] + sorted({r["filter"] for r in report.of_kind("search") if r.get("filter")},
                              key=lambda f: _selectivity(recs, f))
    for f in filters:
        if any(r.get("filter") == f for r in report.of_kind("search")):
            title = "unfiltered" if f is None else \
                f"filter {f} (selectivity {_selectivity(recs, f):.2%})"
            parts.append(f"### Search, {title}\n\n" + search_table(recs, f))
    for r in report.of_kind("skip") + report.of_kind("error"):
        parts.append(f"- {r['kind']}: {r.get('system', 'vecpg')} {r.get('index', '')}: "
                     f"{r.get('reason', '')}")
    return "\n\n".join(parts) + "\n"


def _selectivity(records: Sequence[dict[str, Any]], f: str | None) -> float:
    if f is None:
        return 1.0
    for r in records:
        if r.get("filter") == f and r.get("selectivity") is not None:
            return float(r["selectivity"])
    return 1.0


# ----------------------------------------------------------------------------- plots


# legend order, and the colour (tab10) of each system; one marker per index type; the
# planner's own choice (``auto``, ``auto/IVF_PQ``) is vecpg's colour, a star, a dashed line
_SYSTEM_ORDER = {"vecpg": 0, "pgvector-sql": 1, "hnswlib": 2, "faiss": 3, "milvus-lite": 4}
_INDEX_MARKER = {"FLAT": "s", "HNSW": "o", "IVF_FLAT": "^", "IVF_SQ8": "v", "IVF_PQ": "D",
                 "ANNOY": "p", "BIN_FLAT": "s", "BIN_IVF_FLAT": "^"}
_KNOB_SHORT = {"nprobe": "np", "search_k": "sk", "ef": "ef", "reorder_k": "rk"}


def series_label(r: dict[str, Any]) -> str:
    """A plot line's legend label: ``"vecpg HNSW"``, one line per system and index."""
    return f"{r['system']} {r['index']}"


def point_label(r: dict[str, Any]) -> str:
    """The text next to one plotted point: its search setting (``ef 64``, ``np 8``), or for
    a planner point the recall asked for and the strategy that ran (``0.95: hnsw ef 80``)."""
    if str(r.get("index", "")).startswith("auto"):
        ran = str(r.get("strategy") or "?")
        params = r.get("strategy_params") or {}
        knobs = " ".join(f"{_KNOB_SHORT.get(k, k)} {v}" for k, v in sorted(params.items())
                         if isinstance(v, (int, float)) and not isinstance(v, bool))
        return f"{r.get('value')}: {ran}" + (f" {knobs}" if knobs else "")
    if r.get("param") and r.get("value") is not None:
        return f"{_KNOB_SHORT.get(r['param'], r['param'])} {r['value']}"
    return ""


def _series_style(system: str, index: str, cmap: Any) -> dict[str, Any]:
    auto = index.startswith("auto")
    base = index.split("/", 1)[1] if "/" in index else index
    return {"color": cmap(_SYSTEM_ORDER.get(system, 7) % 10),
            "marker": "*" if auto else _INDEX_MARKER.get(base, "x"),
            "markersize": 9 if auto else 5, "linestyle": "--" if auto else "-",
            "linewidth": 1.2,
            "markerfacecolor": "none" if "/" in index else None}


def plot_recall_qps(records: Sequence[dict[str, Any]], path: str | Path, *,
                    filtered: bool = False, title: str = "") -> Path | None:
    """Recall (x) against QPS (y, log scale), one line per system and index, as in
    ann-benchmarks: a colour per system, a marker per index type, each point labelled
    with its setting (planner points: the strategy that ran), one legend outside the
    panels. Unfiltered searches in one panel, or (``filtered``) one panel per filter.
    Returns the path written, or None when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    recs = [r for r in records if r.get("kind") == "search" and r.get("qps")
            and bool(r.get("filter")) == filtered]
    if not recs:
        return None
    panels: list[str | None] = sorted({r["filter"] for r in recs},
                                      key=lambda f: _selectivity(records, f)) \
        if filtered else [None]
    cols = min(2, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(7.5 * cols, 5.6 * nrows), squeeze=False)
    labels = sorted({series_label(r) for r in recs}, key=lambda lab: (
        _SYSTEM_ORDER.get(lab.split(" ", 1)[0], 9), lab.split(" ", 1)[1]))
    cmap = plt.get_cmap("tab10")
    k = recs[0].get("k", 10)
    handles: dict[str, Any] = {}
    for ax, f in zip(axes.flat, panels):
        for lab in labels:
            pts = sorted(((r["recall"], r["qps"], point_label(r)) for r in recs
                          if series_label(r) == lab and r.get("filter") == f),
                         key=lambda p: (p[0], p[1]))
            if not pts:
                continue
            system, index = lab.split(" ", 1)
            style = _series_style(system, index, cmap)
            (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], label=lab, **style)
            handles.setdefault(lab, line)
            for x, y, text in pts:
                if text:
                    ax.annotate(text, (x, y), xytext=(3, 3), textcoords="offset points",
                                fontsize=6, color=style["color"], alpha=0.9)
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, hi + 0.08 * (hi - lo))  # room for the labels of the recall-1 points
        ax.set_yscale("log")
        ax.set_xlabel(f"recall@{k}")
        ax.set_ylabel("queries per second (single client, log)")
        ax.grid(True, which="both", alpha=0.3)
        sub = "unfiltered" if f is None else f"filter {f} ({_selectivity(records, f):.2%} of rows)"
        ax.set_title(f"{title} {sub}".strip(), fontsize=10)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    legend = fig.legend([handles[lab] for lab in labels if lab in handles],
                        [lab for lab in labels if lab in handles], loc="upper left",
                        bbox_to_anchor=(1.0, 0.98), fontsize=8, frameon=False,
                        title="system index (point: setting;\nauto: recall target: strategy)",
                        title_fontsize=7)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110, bbox_inches="tight", bbox_extra_artists=[legend])
    plt.close(fig)
    return out


def plot_scale(records: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """Scale mode: build time, index size and QPS at the target recall against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = sorted((r for r in records if r.get("kind") == "scale"), key=lambda r: r["n"])
    if not recs:
        return None
    n = [r["n"] for r in recs]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    axes[0].plot(n, [r["build_s"] for r in recs], marker="o", label="HNSW build")
    axes[0].plot(n, [r["load_s"] for r in recs], marker="o", label="insert (load)")
    axes[0].set_ylabel("seconds")
    axes[1].plot(n, [r["index_bytes"] / 1e6 for r in recs], marker="o", label="HNSW index")
    axes[1].plot(n, [r["table_bytes"] / 1e6 for r in recs], marker="o", label="table")
    axes[1].set_ylabel("MB on disk")
    target = recs[0].get("target_recall")
    axes[2].plot(n, [r.get("qps_at_target") or float("nan") for r in recs], marker="o",
                 label=f"HNSW at recall >= {target}")
    axes[2].plot(n, [r.get("exact_qps") or float("nan") for r in recs], marker="o",
                 label="exact scan")
    axes[2].set_yscale("log")
    axes[2].set_ylabel("QPS (single client)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("rows (N)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"vecpg scale: generated clustered data, dim {recs[0].get('dim')}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
