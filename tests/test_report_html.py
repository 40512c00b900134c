"""The static HTML report: every row with its plots and samples, partial and pruned stores, escaping, a real browser."""

import dataclasses
import os
import re
import shutil
from pathlib import Path

import pytest
import testzoo
from click.testing import CliRunner

from ganzoo.cli import main
from ganzoo.core.records import DONE, FINISHED
from ganzoo.core.store import Store
from ganzoo.report import load_runs
from ganzoo.report.html import write_html_report
from ganzoo.report.samples import final_samples
from ganzoo.run.grid import Filters
from ganzoo.run.suite import parse_suite
from ganzoo.sweep import bench
from ganzoo.testing import plugin_registry

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def zoo():
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as registry:
        yield registry


@pytest.fixture(scope="module")
def swept(zoo, tmp_path_factory):
    """A finished sweep of the tiny suite: done, diverged (explode) and failed (crash) rows, 2 seeds each."""
    results = tmp_path_factory.mktemp("results")
    bench(parse_suite(testzoo.suite_dict()), results, registry=zoo, progress=False, echo=lambda _: None,
          executor="inline")
    return results


def report(results, zoo, out, suite="tiny"):
    store = Store(results)
    try:
        return write_html_report(store, out, suite, registry=zoo)
    finally:
        store.close()


def images_of(page: Path) -> list[Path]:
    return [page.parent / src for src in re.findall(r'<img[^>]* src="([^"]+)"', page.read_text())]


def test_every_row_has_its_curves_seed_plot_and_each_seeds_samples(swept, zoo, tmp_path):
    page = report(swept, zoo, tmp_path / "report")
    html = page.read_text()
    runs = load_runs(swept, "tiny")
    experiments = runs["experiment"].nunique()
    assert html.count('<section class="experiment"') == experiments
    tables = runs.drop_duplicates(["dataset", "fingerprint"]).shape[0]  # failed-only rows have no protocol
    assert html.count('<table class="board sortable">') == tables and html.count("<tbody>") == tables + 1
    assert len(re.findall(r'<tr class="(?:baseline)?">', html)) == experiments
    pictures = images_of(page)
    assert pictures and all(p.read_bytes().startswith(PNG) for p in pictures)
    evaluated = runs[runs["status"] == DONE]["experiment"].nunique()  # explode diverges before its first evaluation
    assert sum("-curves.png" in p.name for p in pictures) == evaluated
    assert html.count("No evaluation recorded yet.") == experiments - evaluated > 0
    assert sum(p.name.endswith("-seeds.png") for p in pictures) == 1
    finished = runs[runs["status"] == DONE]
    assert {f"samples/{run_id}.png" for run_id in finished["run_id"]} <= {f"samples/{p.name}" for p in pictures}
    assert "samples of the final evaluation" in html  # 2-D runs are redrawn from their checkpoints
    assert "Fails on purpose" in html and "no samples: the run is failed" in html
    assert (page.parent / "leaderboard.csv").exists() and (page.parent / "runs.csv").exists()
    assert re.search(r'id="versions">Trained with: .*ganzoo \d.*torch \d', html)


def test_redrawn_samples_are_the_ones_the_final_metrics_were_measured_on(tmp_path):
    """The ring's modes and high-quality share recomputed from the checkpoint equal the recorded final values."""
    from ganzoo.core.registry import build_registry
    from ganzoo.run.suite import load_suite

    registry = build_registry()  # the installed zoo (this module's fixture holds the test zoo as the global one)
    summary = bench(load_suite("default"), tmp_path, registry=registry, progress=False, echo=lambda _: None,
                    executor="inline", seeds=[0], g_steps=30,
                    filters=Filters(dataset=("ring8",), loss=("ns",), stabilizer=("none",)))
    assert list(summary.results.values()) == [DONE]
    (row,) = Store(tmp_path).runs("default")
    samples, spec = final_samples(Path(row["artifacts"]["checkpoint"]), registry)
    dataset = registry.get("dataset", "ring8").build(**spec.dataset.hparams)
    recomputed = dataset.extra_metrics(samples)
    assert len(samples) == spec.protocol.n_fake == 2500
    for key in ("modes", "high_quality", "mode_kl"):
        assert recomputed[key] == pytest.approx(row["metrics"][key], abs=1e-12), key


def test_a_running_sweep_and_deleted_run_folders_render_and_say_so(swept, zoo, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(swept, results)
    store = Store(results)
    runs = store.runs("tiny")
    done = [r for r in runs if r["status"] == DONE]
    store.mark_running(done[0]["run_id"], {"ganzoo": "test"})  # as if another sweep were training it now
    store.close()
    for row in done[1:]:
        shutil.rmtree(results / "runs" / row["run_id"])
    page = report(results, zoo, tmp_path / "report")
    html = page.read_text()
    unfinished = [r for r in runs if r["status"] not in FINISHED]  # failed runs are retried: not finished either
    assert f"{len(unfinished) + 1} not finished" in html
    assert f"<code>{done[0]['run_id']}</code>" in html.split('id="unfinished"')[1]
    assert "samples missing:" in html and "run folder deleted or moved?" in html
    assert all(p.exists() for p in images_of(page))


def test_a_store_without_finished_runs_renders_an_empty_report(zoo, tmp_path):
    store = Store(tmp_path)
    store.close()
    page = report(tmp_path, zoo, tmp_path / "report", suite="nothing")
    assert "No finished runs yet." in page.read_text()


def test_plugin_text_is_escaped(swept, zoo, tmp_path):
    class Hostile:
        """The zoo, but every description is markup."""

        def get(self, kind, name):
            return dataclasses.replace(zoo.get(kind, name), description='<img src=x onerror="alert(1)">')

    html = report(swept, Hostile(), tmp_path / "report").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


def test_cli_writes_every_suite_folder_under_out_and_refuses_an_unknown_suite(swept, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["report", "--results-dir", str(swept), "--format", "html", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny" / "leaderboard.md").exists() and (tmp_path / "tiny" / "report" / "index.html").exists()
    assert str(tmp_path / "tiny" / "report" / "index.html") in result.stdout
    unknown = runner.invoke(main, ["report", "--results-dir", str(swept), "--suite", "nope"])
    assert unknown.exit_code == 2 and 'No suite "nope"' in unknown.output and "tiny" in unknown.output


# -- a real browser ---------------------------------------------------------------------------------


def chromium() -> str | None:
    for candidate in (os.environ.get("GANZOO_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.mark.browser
def test_the_report_loads_in_chromium_without_errors_and_sorts(swept, zoo, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the test extra)")
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium found: apt-get install chromium (.ci/run does), or set GANZOO_CHROMIUM")
    page_path = report(swept, zoo, tmp_path / "report")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            assert page.locator("table.sortable tbody tr").count() == load_runs(swept, "tiny")["experiment"].nunique()
            table = page.locator("section.table", has=page.locator("img.spread")).locator("table.sortable")
            broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                                   ".map(i => i.src)")
            assert broken == []
            assert page.locator("img.curves").count() >= 1 and page.locator("img.spread").count() == 1

            def column(name):
                index = [h.strip() for h in table.locator("th").all_inner_texts()].index(name)
                return [c for c in table.locator(f"tbody tr td:nth-child({index + 1})").evaluate_all(
                    "cells => cells.map(c => c.getAttribute('data-sort'))")]

            header = table.locator("th", has_text="stack")
            header.click()
            ascending = column("stack")
            assert ascending == sorted(ascending)
            header.click()
            descending = column("stack")
            assert descending == sorted(descending, reverse=True) and descending != ascending
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert (tmp_path / "report.png").read_bytes().startswith(PNG)


def test_each_table_ends_with_its_power_line_and_the_findings_of_the_markdown_report(swept, zoo, tmp_path):
    from markupsafe import escape

    from ganzoo.report import findings_of_markdown, write_report

    page = report(swept, zoo, tmp_path / "report")
    html = page.read_text()
    store = Store(swept)
    try:
        markdown = write_report(store, tmp_path / "md", suite="tiny")[0].read_text()
    finally:
        store.close()
    written = findings_of_markdown(markdown)
    assert written and html.count("<h3>Findings</h3>") == len(written)
    for block in written.values():
        for line in block.splitlines():  # the same sentences, escaped, with the Markdown `code` spans as <code>
            parts = line[2:].split("`")
            expected = "".join(str(escape(p)) if i % 2 == 0 else f"<code>{escape(p)}</code>"
                               for i, p in enumerate(parts))
            assert f"<li>{expected}</li>" in html
            assert "`" not in expected
        assert "Power: " in block
    assert html.count('class="note power">Power: ') == len(written)
