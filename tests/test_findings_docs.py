"""Prose that cannot drift from the data: the docs' summaries of the default quote the committed Findings.

docs/reading-results.md's "What the default leaderboard says" states no comparison of its own: each table's
findings appear between ``<!-- findings SOURCE DATASET FINGERPRINT -->`` and ``<!-- /findings -->``, verbatim as
``ganzoo report`` wrote them in SOURCE/leaderboard.md (the default's, and the replicate's for the replicate). The
README quotes one of them the same way.
"""

import re
from pathlib import Path

import pytest

from ganzoo.report import findings_of_markdown

ROOT = Path(__file__).parents[1]
QUOTE = re.compile(r"<!-- findings (?P<source>\S+) (?P<dataset>\S+) (?P<fingerprint>\S+) -->\n(?P<block>.*?)\n"
                   r"<!-- /findings -->", re.S)


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _summary() -> str:
    return _section((ROOT / "docs" / "reading-results.md").read_text(), "What the default leaderboard says")


def _quotes() -> list[re.Match]:
    """Every quoted Findings block in the README and docs/."""
    return [q for path in DOCS for q in QUOTE.finditer(path.read_text())]


def test_the_summary_quotes_every_table_of_the_committed_default_verbatim():
    committed = findings_of_markdown((ROOT / "results" / "default" / "leaderboard.md").read_text())
    assert committed, "results/default/leaderboard.md has no Findings: rerun ganzoo report --suite default"
    quoted = {(q["dataset"], q["fingerprint"]) for q in QUOTE.finditer(_summary()) if q["source"] == "results/default"}
    assert quoted == set(committed), "docs/reading-results.md must quote the Findings of every table of results/default"


def test_the_readme_quotes_one_committed_table():
    quoted = list(QUOTE.finditer((ROOT / "README.md").read_text()))
    assert [q["source"] for q in quoted] == ["results/default"], "the README quotes one table of results/default"


@pytest.mark.parametrize("quote", _quotes(), ids=lambda q: f"{q['source']}:{q['dataset']}")
def test_each_quoted_finding_is_the_reports_own_text(quote):
    board = ROOT / quote["source"] / "leaderboard.md"
    findings = findings_of_markdown(board.read_text())
    key = (quote["dataset"], quote["fingerprint"])
    assert key in findings, f"{board} has no table {key}"
    assert quote["block"] == findings[key], f"the docs' quote of {board} {key} differs from the report's Findings"


def test_no_file_cites_a_document_the_repository_does_not_hold():
    names = {path.name for path in ROOT.rglob("*.md") if ".venv" not in path.parts}
    cited = re.compile(r"\b([A-Z][A-Z_]*\.md)\b")
    missing = []
    for path in [*ROOT.glob("*.md"), *ROOT.glob("[a-z]*/**/*.md"), *ROOT.glob("[a-z]*/**/*.py"),
                 *ROOT.glob("[a-z]*/**/*.toml")]:
        if ".venv" in path.parts:
            continue
        for name in set(cited.findall(path.read_text(errors="replace"))) - names:
            missing.append(f"{path.relative_to(ROOT)} cites {name}")
    assert not missing, "; ".join(missing)


@pytest.fixture(scope="module")
def default_boards():
    """The leaderboards ganzoo computes now from the committed runs of the default and of its replicate (the same
    suite on seeds shifted by 1000), beside the leaderboard.csv each folder committed."""
    import pandas as pd

    from ganzoo.core.registry import get_registry
    from ganzoo.report.leaderboard import leaderboard
    from ganzoo.run.suite import load_suite
    from ganzoo.sweep.driver import suite_record

    record = suite_record(load_suite("default"), get_registry())
    judgements = {name: record.judgement(name) for name in record.datasets}
    boards = {}
    for folder in ("default", "default-replicate"):
        runs = pd.read_csv(ROOT / "results" / folder / "runs.csv")
        committed = pd.read_csv(ROOT / "results" / folder / "leaderboard.csv", keep_default_na=False)
        boards[folder] = (leaderboard(runs, record.to_dict(), judgements).set_index(BOARD_KEYS),
                          committed.set_index(BOARD_KEYS))
    return boards


BOARD_KEYS = ["dataset", "generator", "discriminator", "loss", "stack"]


@pytest.mark.parametrize("folder", ["default", "default-replicate"])
def test_the_leaderboard_code_decides_what_each_committed_sweep_says(default_boards, folder):
    """The statistics, run now on a committed sweep's runs, give the verdicts and intervals its report printed:
    a change to the tests, their corrections or the headline's scale shows up here, not in a stale table."""
    computed, committed = default_boards[folder]
    assert sorted(computed.index) == sorted(committed.index)
    computed = computed.loc[committed.index]
    # A committed table may predate the three verdicts: its "n.s." (not decided) is now "undecided", or
    # "equivalent" where the interval lies inside the declared margin; better and worse must be decided again.
    now_allowed = {"n.s.": {"undecided", "equivalent"}}
    for key, was, now in zip(committed.index, committed["verdict"], computed["verdict"].fillna(""), strict=True):
        assert now in now_allowed.get(was, {was}), f"{folder} {key}: committed {was}, decided {now} now"
    tested = committed["p_holm"] != ""
    assert computed.loc[tested.values, "p_holm"].to_numpy() == pytest.approx(
        committed.loc[tested, "p_holm"].astype(float).to_numpy(), rel=1e-9)


def test_every_verdict_the_default_decides_points_the_same_way_on_disjoint_seeds(default_boards):
    """What holds across machines and seeds is the verdicts: none that the default decides reverses in its
    replicate, as the leaderboard code decides them now from each sweep's runs."""
    default, replicate = default_boards["default"][0], default_boards["default-replicate"][0]
    decided = default[default["verdict"].isin(["better", "worse"])]
    assert len(decided) >= 3, "the default decides fewer than 3 comparisons"
    opposite = {"better": "worse", "worse": "better"}
    for key, row in decided.iterrows():
        again = replicate.loc[key]
        assert again["verdict"] != opposite[row["verdict"]], f"{key}: {row['verdict']} in default, the opposite again"
        assert (float(again["diff"]) > 0) == (float(row["diff"]) > 0), f"{key}: the replicate points the other way"


def test_the_quickstart_writes_beside_the_committed_results_not_over_them():
    # `ganzoo bench --all` on a user's machine (other seeds, other numbers) must leave results/ as committed,
    # or this file's quotes would no longer match it.
    from ganzoo.cli.common import RESULTS_DIR

    assert RESULTS_DIR.name != "results"
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert RESULTS_DIR.name in ignored
