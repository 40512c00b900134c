"""The HTML report: one static folder per suite (``index.html``, PNG plots, sample pictures, CSVs).

It shows what the Markdown leaderboard shows (same rows, same statistics: ``ganzoo.report.leaderboard``) and
what a table cannot: each experiment's headline over training, one line per seed (and each value its
stabilizers report, such as ADA's augmentation probability); the spread of its seeds; each seed's samples.
Plots come from ``ganzoo.report.plots``; the page is a Jinja2 template with autoescaping, so plugin-provided
text (names, descriptions) can never inject markup.
It needs no server and no network, and renders from a sweep that is still running (unfinished runs are
listed as such) and from a store whose run folders are gone (each missing picture says so).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..api.judgement import DEFAULT_JUDGEMENT, Judgement
from ..core.records import FINISHED, ReferenceRow, SuiteRecord
from ..core.store import Store
from .effects import effects
from .findings import effects_power_line, of_table, power_line, table_findings
from .leaderboard import AXES, leaderboard, metric_directions, row_label, run_values
from .markdown import design_sentence
from .runs import judgements_of, read_runs
from .samples import SamplePictures
from .stability import curve
from .tables import budget_text, effects_table, headline_column, metric_label, metrics_table, ranking_table

# Numeric sort keys of the ranking table's columns (the rest sort by their text).
RANK_SORT_KEYS = {"rank": "rank", "seeds": "finished", "median (IQR)": "median", "worst": "worst",
                  "success": "success", "unstable": "unstable", "Δ vs baseline [95% CI]": "diff",
                  "ratio vs baseline [95% CI]": "ratio",
                  "p (Holm)": "p_holm", "G steps": "g_steps", "imgs/s": "imgs_per_s"}


def write_html_report(store: Store, out_dir: Path, suite: str, registry=None) -> Path:
    """Write ``out_dir/index.html`` with its plots, samples and CSVs for ``suite``; returns the page's path."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from .plots import learning_curves, performance_profiles, seed_spread

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs, stored, evals = read_runs(store, suite)
    rows = {row["run_id"]: row for row in stored}
    record = store.read_suite_record(suite)
    judgements = judgements_of(store, suite, set(runs["dataset"])) if not runs.empty else {}
    board = leaderboard(runs, record, judgements)
    analysis = effects(runs, record, judgements) if record.crossed(runs["dataset"]) and not board.empty else None
    references = store.references(suite)
    pictures = SamplePictures(out_dir, store.run_dir, registry)

    tables, experiments = [], []
    if not board.empty:
        for (dataset, fingerprint), group in board.groupby(["dataset", "fingerprint"], sort=False):
            judgement = judgements.get(dataset, DEFAULT_JUDGEMENT)
            table_id = _slug(f"{dataset}-{fingerprint}")
            reference = references.get((dataset, fingerprint))
            seeds_of = {key: runs[(runs["dataset"] == dataset) & (runs["experiment"] == key)]
                        for key in group["experiment"]}
            finals = [(row_label(r), _finals(seeds_of[r["experiment"]], judgement)) for _, r in group.iterrows()]
            spread = (seed_spread(finals, metric_label(judgement.headline), out_dir / "plots" / f"{table_id}-seeds.png",
                                  reference=reference.metrics.get(judgement.headline) if reference else None)
                      if any(values for _, values in finals) else None)  # a table of failed runs has no values
            tables.append(_table(dataset, fingerprint, group, judgement, record, reference, table_id,
                                 spread.relative_to(out_dir) if spread else None, analysis))
            crossed = of_table(analysis, dataset, fingerprint)
            if crossed and len(crossed[0]):
                in_table = runs[(runs["dataset"] == dataset) & (runs["fingerprint"].fillna("") == fingerprint)]
                png = _profiles(in_table, crossed[0], judgement, out_dir / "plots" / f"{table_id}-profiles.png",
                                performance_profiles)
                tables[-1]["profile_png"] = png.relative_to(out_dir).as_posix()
            for _, row in group.iterrows():
                experiments.append(_experiment(row, seeds_of[row["experiment"]], rows, evals, judgement, table_id,
                                               out_dir, pictures, learning_curves))
        board.to_csv(out_dir / "leaderboard.csv", index=False)
        if analysis is not None:
            analysis[0].to_csv(out_dir / "effects.csv", index=False)
    runs.drop(columns=["error"], errors="ignore").to_csv(out_dir / "runs.csv", index=False)

    env = Environment(loader=PackageLoader("ganzoo.report", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["code_spans"] = _code_spans
    page = env.get_template("report.html").render(
        suite=suite, record=record.to_dict(), tables=tables, experiments=experiments,
        unfinished=_unfinished(rows), n_runs=len(rows), versions=_versions(rows.values()),
        components=_components(rows.values(), registry), ganzoo_version=__version__,
        written=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        has_board=not board.empty)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _profiles(runs: pd.DataFrame, table_effects: pd.DataFrame, judgement: Judgement, path: Path, draw) -> Path:
    """The performance profiles of a crossed table: per axis of its effects, each level's finished runs."""
    finished = runs[runs["status"].isin(FINISHED)]
    panels = []
    for axis in dict.fromkeys(table_effects["axis"]):
        levels = [table_effects.loc[table_effects["axis"] == axis, "reference"].iloc[0],
                  *table_effects.loc[table_effects["axis"] == axis, "component"]]
        values = run_values(finished, judgement)
        panels.append((axis, {level: values[finished[axis].astype(str) == level].tolist() for level in levels}))
    return draw(panels, metric_label(judgement.headline), judgement.lower_is_better,
                table_effects["scale"].iloc[0] == "log", path)


def _table(dataset, fingerprint, group: pd.DataFrame, judgement: Judgement, record: SuiteRecord,
           reference: ReferenceRow | None, table_id: str, spread_png: Path | None, analysis=None) -> dict[str, Any]:
    """The ranking and all-metrics columns side by side, each cell with the number it sorts by."""
    ranking = ranking_table(group, judgement)
    metrics = metrics_table(group).drop(columns=[c for c in ("rank", "G", "D", "loss", "stack", "variant")
                                                  if c in ranking.columns])
    display = pd.concat([ranking.reset_index(drop=True), metrics.reset_index(drop=True)], axis=1)
    keys = _sort_keys(group.reset_index(drop=True), display.columns, judgement)
    headline = headline_column(group, judgement)
    rows = []
    for i, (_, r) in enumerate(group.iterrows()):
        cells = [{"text": str(display.iloc[i][c]), "key": keys[c][i], "column": c} for c in display.columns]
        rows.append({"cells": cells, "anchor": _slug(f"{dataset}-{r['experiment']}"), "verdict": r.get("verdict"),
                     "is_baseline": bool(r.get("is_baseline"))})
    first = group.iloc[0]
    baseline = record.datasets[dataset].baseline if dataset in record.datasets else None
    return {
        "id": table_id, "dataset": dataset, "fingerprint": fingerprint, "columns": list(display.columns),
        "headline_column": headline, "rows": rows, "judgement": judgement,
        "direction": "lower is better" if judgement.lower_is_better else "higher is better",
        "headline": metric_label(judgement.headline),
        "protocol": f"extractor {first.get('extractor')} (weights {first.get('weights_hash')}), "
                    f"{first.get('n_fake')} generated vs {first.get('n_real') or 'all'} real samples",
        "budget": budget_text(group), "baseline": "/".join(baseline[a] for a in AXES) if baseline else None,
        "design": design_sentence(group) if baseline and group["is_baseline"].any() else None,
        "scale": "log" if group["scale"].iloc[0] == "log" else None, "scale_note": group["scale_note"].iloc[0],
        "power": (effects_power_line(of_table(analysis, dataset, fingerprint)[0], judgement)
                  if _effects_rows(of_table(analysis, dataset, fingerprint)) else power_line(group, judgement)),
        "findings": [line[2:] for line in table_findings(group, judgement, analysis)],
        "effects": _effects_rows(of_table(analysis, dataset, fingerprint)), "profile_png": None,
        "reference": reference, "reference_value": reference.metrics.get(judgement.headline) if reference else None,
        "spread_png": spread_png.as_posix() if spread_png else None,
    }


def _effects_rows(crossed: tuple[pd.DataFrame, ...]) -> dict[str, Any] | None:
    """A crossed table's effects as the page prints them (the Markdown's cells), or None."""
    if not crossed or not len(crossed[0]):
        return None
    display = effects_table(crossed[0])
    return {"columns": list(display.columns),
            "rows": [[str(v) for v in row] for row in display.itertuples(index=False)]}


def _sort_keys(group: pd.DataFrame, columns, judgement: Judgement) -> dict[str, list]:
    by_label = {f"{metric_label(m)} {'↓' if lower else '↑'}": m for m, lower in metric_directions().items()}
    by_label.update({"KID×10³ ↓": "kid_mean", "KID (raw) ↓": "kid_mean"})
    keys = {}
    for column in columns:
        source = (RANK_SORT_KEYS.get(column) or by_label.get(column)
                  or ("center" if column.endswith("mean [95% CI]") else None))
        if source and source in group:
            keys[column] = [None if pd.isna(v) else float(v) for v in group[source]]
        else:
            keys[column] = [str(v) for v in group[column]] if column in group else [None] * len(group)
    return keys


def _experiment(row, seeds: pd.DataFrame, rows: dict, evals: dict, judgement: Judgement, table_id: str,
                out_dir: Path, pictures: SamplePictures, learning_curves) -> dict[str, Any]:
    """One experiment's section: its curves (one line per seed) and each seed's status and samples."""
    anchor = _slug(f"{row['dataset']}-{row['experiment']}")
    metrics = [judgement.headline] + ([judgement.tiebreak] if judgement.tiebreak else [])
    unit = "g_steps"
    panels = []
    for metric in metrics:
        by_seed = {}
        for run_id, seed in zip(seeds["run_id"], seeds["seed"], strict=True):
            run_evals = evals.get(run_id, [])
            points = list(zip([e.get(unit) for e in run_evals], curve(run_evals, metric), strict=True))
            if points:
                by_seed[int(seed)] = ([p[0] for p in points], [p[1] for p in points])
        if by_seed:
            panels.append((metric_label(metric), by_seed))
    panels += _stabilizer_panels(seeds, evals, unit)
    curves_png = (learning_curves(panels, "G steps", out_dir / "plots" / f"{anchor}-curves.png").relative_to(out_dir)
                  if panels else None)
    seed_rows = []
    # Plain dicts of the columns read below, not iterrows: a Series of every column per seed cost more than the
    # rest of the section in a large sweep. A column that is absent reads as None either way.
    read = [c for c in ("run_id", "seed", "status", "collapsed", "degraded", "success") if c in seeds]
    seeds = seeds.assign(_value=run_values(seeds, judgement))
    for run in seeds.sort_values("seed")[[*read, "_value"]].to_dict("records"):
        stored = rows[run["run_id"]]
        picture = pictures.picture(stored)
        headline = run["_value"]
        seed_rows.append({
            "seed": int(run["seed"]), "run_id": run["run_id"], "status": run["status"],
            "headline": None if headline is None or pd.isna(headline) else headline,
            "flags": [f for f in ("collapsed", "degraded") if bool(run.get(f)) is True],
            "success": run.get("success"), "error": (stored.get("error") or "").strip().splitlines()[:1],
            "picture": picture.path.relative_to(out_dir).as_posix() if picture.path else None,
            "picture_note": picture.note,
        })
    pictured = {s["picture_note"] for s in seed_rows if s["picture"]}
    shared_note = pictured.pop() if len(pictured) == 1 and all(s["picture"] for s in seed_rows) else None
    return {"anchor": anchor, "table_id": table_id, "dataset": row["dataset"], "label": row_label(row),
            "samples_note": shared_note,
            "variant": row.get("variant") or "", "headline": metric_label(judgement.headline),
            "curves_png": curves_png.as_posix() if curves_png else None, "seeds": seed_rows}


def _stabilizer_panels(seeds: pd.DataFrame, evals: dict, unit: str) -> list[tuple[str, dict]]:
    """One panel per value the runs' stabilizers reported with their evaluations (``ada.p``), one line per seed."""
    reported: dict[str, dict[int, tuple[list, list]]] = {}
    for run_id, seed in zip(seeds["run_id"], seeds["seed"], strict=True):
        for e in evals.get(run_id, []):
            for name, value in (e.get("stabilizers") or {}).items():
                x, y = reported.setdefault(name, {}).setdefault(int(seed), ([], []))
                x.append(e.get(unit))
                y.append(value)
    return [(name, reported[name]) for name in sorted(reported)]


def _finals(seeds: pd.DataFrame, judgement: Judgement) -> list[float]:
    """The finished seeds' headline values, as the table ranks them."""
    return [float(v) for v in run_values(seeds[seeds["status"].isin(FINISHED)], judgement) if not pd.isna(v)]


def _unfinished(rows: dict[str, dict]) -> list[dict[str, Any]]:
    return [{"run_id": r["run_id"], "label": "/".join(str(r[a]) for a in ["dataset", *AXES]), "seed": r["seed"],
             "status": r["status"]} for r in rows.values() if r["status"] not in FINISHED]


def _versions(rows) -> list[tuple[str, str]]:
    """Every distribution (ganzoo, torch, each plugin's) and the versions the runs were trained with."""
    seen: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for name, version in (row.get("versions") or {}).items():
            seen[name].add(str(version) or "?")
    return [(name, ", ".join(sorted(versions))) for name, versions in sorted(seen.items())]


def _components(rows, registry) -> list[dict[str, Any]]:
    """The components these runs used, with the description and reference their plugin registered."""
    named = sorted({("dataset", r["dataset"]) for r in rows} | {(k, r[k]) for r in rows for k in
                   ("generator", "discriminator", "loss")} |
                   {("stabilizer", ref["name"]) for r in rows for ref in r["spec"].get("stack", [])})
    out = []
    for kind, name in named:
        try:
            from ..core.registry import get_registry

            component = (registry or get_registry()).get(kind, name)
            out.append({"kind": kind, "name": name, "description": component.description,
                        "reference": component.reference,
                        "source": f"{component.distribution} {component.version}".strip()})
        except Exception:  # not installed where the report is written: name it, say so
            out.append({"kind": kind, "name": name, "description": "(not installed here)", "reference": "",
                        "source": ""})
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(text))


def _code_spans(text: str):
    """A Findings line as HTML: its Markdown `code` spans as <code>, everything else escaped."""
    from markupsafe import Markup, escape

    parts = str(text).split("`")
    return Markup("".join(str(escape(part)) if i % 2 == 0 else f"<code>{escape(part)}</code>"
                          for i, part in enumerate(parts)))
