"""Every checkable claim in README.md, docs/ and results/README.md is checked against the repository.

A command the docs show must exist with every option they give it (and answer ``--help``); a script they run
must exist and take the options they pass; a file or folder they name must exist; a ``ganzoo.x.y`` they name
must import; a relative link must resolve, to a heading where it names one; and the numbers they quote from
results/ must be what those files hold.
"""

import functools
import importlib
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from readme_zoo import ZOO_KINDS, components_trained, zoo_table

from ganzoo.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md"]

# Named in docs/plugins.md ahead of the plugin kit's merge (`ganzoo new-plugin --kind`, the checks of the last
# three kinds): checked like everything else once the code is on the branch, skipped (saying so) until then.


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@functools.cache
def code_of(path: Path) -> list[str]:
    """The doc's code: each line of its fenced blocks and each inline code span (which may wrap a line)."""
    text = path.read_text()
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.S | re.M)
    spans = [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]
    return [line for block in fenced for line in block.splitlines()] + spans


def _claims(pattern: str) -> list[tuple[str, str, tuple]]:
    """(doc, code, match groups) for every match of ``pattern`` in the docs' code."""
    found = []
    for path in DOCS:
        for code in code_of(path):
            for match in re.finditer(pattern, code):
                found.append((_rel(path), code, match.groups()))
    return found


# -- commands ----------------------------------------------------------------------------------------------

def _ganzoo_commands() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(doc, code, subcommand, options) for each `ganzoo SUB ...` the docs show, options up to the next command."""
    out = []
    for doc, code, _ in _claims(r"^(.*)$"):
        code = re.split(r"\s#\s", code)[0]  # a shell comment is prose
        parts = re.split(r"(?<![\w./-])ganzoo (?=[a-z])", code)
        for part in parts[1:]:
            part = re.split(r"&&|\s#\s|\|\s*$", part)[0]
            sub = re.match(r"[a-z][a-z-]*", part).group(0)
            out.append((doc, code, sub, tuple(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", part))))
    return out


COMMANDS = _ganzoo_commands()


def test_the_docs_show_commands():
    assert {sub for _, _, sub, _ in COMMANDS} >= set(main.commands), "some command is never shown in the docs"


@pytest.mark.parametrize("doc,code,sub,options", COMMANDS, ids=[f"{d}:{c[:60]}" for d, c, _, _ in COMMANDS])
def test_every_command_shown_exists_with_every_option_shown(doc, code, sub, options):
    assert sub in main.commands, f"{doc} shows `ganzoo {sub}`, which is no command: {code}"
    command = main.commands[sub]
    known = {"--help"} | {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for option in options:
        assert option in known, f"{doc} shows `ganzoo {sub} {option}`, which `ganzoo {sub}` does not take: {code}"


@pytest.mark.parametrize("sub", sorted({sub for _, _, sub, _ in COMMANDS if sub in main.commands}))
def test_every_command_shown_answers_help(sub):
    result = CliRunner().invoke(main, [sub, "--help"])
    assert result.exit_code == 0 and f"Usage: main {sub}" in result.output.replace("ganzoo", "main"), result.output


SCRIPTS = _claims(r"(?:python3?|bash) ((?:benchmarks|scripts)/[\w/.-]+\.(?:py|sh))((?: +[^\s&|]+)*)")


@pytest.mark.parametrize("doc,code,groups", SCRIPTS, ids=[f"{d}:{g[0]}" for d, _, g in SCRIPTS])
def test_every_script_run_exists_and_takes_the_options_shown(doc, code, groups):
    script, arguments = groups
    path = ROOT / script
    assert path.is_file(), f"{doc} runs {script}, which does not exist"
    source = path.read_text()
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", arguments):
        assert f'"{option}"' in source or f"'{option}'" in source or f" {option}" in source, \
            f"{doc} runs {script} {option}, an option it does not define"


# -- files and names ---------------------------------------------------------------------------------------

TOP = "|".join(re.escape(p.name) for p in ROOT.iterdir() if not p.name.startswith((".git", ".venv")))
PATHS = sorted({(doc, groups[0]) for doc, _, groups in _claims(rf"(?<![\w/.~<-])((?:{TOP}|\.ci)(?:/[\w.-]+)*/?)")})


def _placeholder(path: str) -> bool:
    """RUNS/NAME, <id>, *.toml: a pattern the reader fills in, not a file."""
    return any(re.fullmatch(r"[A-Z_]+", part) or "<" in part or "*" in part for part in path.split("/"))


@pytest.mark.parametrize("doc,path", PATHS, ids=[f"{d}:{p}" for d, p in PATHS])
def test_every_file_named_exists(doc, path):
    if _placeholder(path):
        pytest.skip(f"{path} is a pattern")
    assert (ROOT / path).exists(), f"{doc} names {path}, which does not exist"


NAMES = sorted({(doc, groups[0]) for doc, _, groups in _claims(r"(?<![\w/.-])(ganzoo(?:\.[A-Za-z_]\w*)+)(?![\w-])")
                if not groups[0].endswith(".sqlite")})


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("doc,name", NAMES, ids=[f"{d}:{n}" for d, n in NAMES])
def test_every_python_name_resolves(doc, name):
    try:
        _resolve(name)
    except (ImportError, AttributeError) as error:
        raise AssertionError(f"{doc} names {name}, which does not import: {error}") from error


# -- links --------------------------------------------------------------------------------------------------

def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return [h.strip() for h in re.findall(r"^#{1,6} (.+)$", text, re.M)]


LINKS = [(_rel(path), target, section) for path in DOCS
         for target, section in re.findall(r"\]\(([^)\s]+)\)(?:,?\s+\"([^\"]+)\")?", path.read_text())
         if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("doc,target,section", LINKS, ids=[f"{d}->{t}" for d, t, _ in LINKS])
def test_every_relative_link_resolves_to_its_heading(doc, target, section):
    """A link's file exists; its #anchor, or the "Section" quoted right after it, is a heading there."""
    file, _, anchor = target.partition("#")
    path = (ROOT / doc).parent / file if file else ROOT / doc
    assert path.exists(), f"{doc} links {target}: {path.relative_to(ROOT) if ROOT in path.parents else path} is missing"
    if anchor:
        assert anchor in {_slug(h) for h in _headings(path)}, f"{doc} links {target}: no such heading"
    section = " ".join(section.split())
    if section and path.suffix == ".md":
        assert section in _headings(path), f'{doc} cites {file}, "{section}": no such heading there'


# -- numbers quoted from results/ ---------------------------------------------------------------------------

def _text(doc: str) -> str:
    return " ".join((ROOT / doc).read_text().split())


def _runs(folder: str) -> pd.DataFrame:
    return pd.read_csv(ROOT / "results" / folder / "runs.csv")


def _seeds_per_row(runs: pd.DataFrame, dataset: str) -> pd.Series:
    return runs[runs["dataset"] == dataset].groupby("experiment").size()


def test_the_default_run_counts_quoted_are_the_committed_ones():
    runs = _runs("default")
    assert len(runs) == 87 and "87 runs" in _text("README.md") and "87 runs" in _text("docs/reading-results.md")
    assert runs["status"].isin(["done", "diverged"]).all()
    assert runs.groupby("dataset").size().to_dict() == {"ring8": 47, "digits": 40}
    # scaling.md's vectorised timings are of the first default, kept as a pilot (benchmarks/pilots)
    pilot = pd.read_csv(ROOT / "benchmarks" / "pilots" / "default-8x16-runs.csv")
    scaling = _text("docs/scaling.md")
    assert pilot.groupby("dataset").size().to_dict() == {"ring8": 59, "digits": 51}
    assert "the first default's 59 ring8 runs" in scaling and "The first default's 51 digits runs" in scaling
    assert (_seeds_per_row(pilot, "ring8") == 1).sum() == 11
    assert "the first default's 11 one-seed ring8 rows" in scaling


@pytest.mark.parametrize("folder", ["default", "default-replicate"])
def test_the_default_design_quoted_is_the_committed_one(folder):
    """ring8: a 12-seed baseline, 4 rows at 6 seeds; digits: a 10-seed baseline, rows at 4, 4, 4, 8 and 8; every
    other row one seed; ring8 2,000 and digits 1,000 G steps."""
    runs = _runs(folder)
    expected = {"ring8": {12: 1, 6: 4, 1: 11}, "digits": {10: 1, 8: 2, 4: 3, 1: 2}}
    for dataset, counts in expected.items():
        assert _seeds_per_row(runs, dataset).value_counts().to_dict() == counts, dataset
    assert runs.groupby("dataset")["g_steps"].max().to_dict() == {"ring8": 2000, "digits": 1000}
    summary = _text("docs/reading-results.md")
    assert "digits 1,000 G steps, ring8 2,000 G steps" in summary
    assert "ring8 tests 4 rows (6 seeds each) against a 12-seed baseline" in summary
    assert "digits 5 rows (4, 4, 4, 8 and 8 seeds) against a 10-seed one" in summary
    assert "is the baseline at 10 seeds, 5 rows that change one component are tested at 4 to 8 seeds each" in \
        _text("README.md")


def test_the_readme_names_the_digits_baseline_and_the_machine():
    runs = _runs("default")
    baseline = _seeds_per_row(runs, "digits").idxmax()
    assert runs.loc[runs["experiment"] == baseline, ["generator", "discriminator", "loss", "stack"]].drop_duplicates(
    ).values.tolist() == [["dcgan", "dcgan", "ns", "none"]]
    assert "(`dcgan/dcgan/ns/none`) is the baseline" in _text("README.md")
    device = runs["device"].unique().tolist()
    assert len(device) == 1 and "AMD EPYC" in device[0]
    assert f"e.g. `{device[0]}`" in _text("docs/robustness.md"), "robustness.md's device example is not the record"


def test_the_replicate_decides_the_same_comparisons():
    """README: the replicate 'decides the same nine comparisons, on both datasets, the same way'."""
    def verdicts(folder):
        board = pd.read_csv(ROOT / "results" / folder / "leaderboard.csv", keep_default_na=False)
        board = board[board["verdict"].isin(["better", "worse", "equivalent"])]
        return dict(zip(board["dataset"] + ":" + board["generator"] + "/" + board["discriminator"] + "/" +
                        board["loss"] + "/" + board["stack"], board["verdict"], strict=True))

    assert verdicts("default") == verdicts("default-replicate") and len(verdicts("default")) == 9
    assert "decides the same nine comparisons, on both datasets, the same way" in _text("README.md")


def test_the_wall_times_quoted_are_the_provenance_ones():
    provenance = _text("results/default/PROVENANCE.md")
    assert "28 min 7 s" in provenance and "34 min 19 s" in provenance
    assert "took 28 min 7 s on the 2-core AMD EPYC exposing AVX2 only" in _text("README.md")
    assert "this one took 28 min 7 s on the AVX2 EPYC" in _text("benchmarks/README.md")
    conditional = _runs("conditional-digits")
    assert len(conditional) == 16 and "5 min 3 s" in _text("results/conditional-digits/PROVENANCE.md")
    assert "16 runs, 5 min 3 s on 2 cores" in _text("docs/conditional.md")


def test_the_mixtures_table_is_the_committed_runs():
    """results/README.md's PacGAN table: each row's seeds, mean ± sd of modes and per-seed modes from runs.csv."""
    runs = _runs("mixtures-short")
    text = _text("results/README.md")
    for (dataset, stack), group in runs.groupby(["dataset", "stack"]):
        variant = "GAN" if stack == "none" else "PacGAN2"
        modes = group.sort_values("seed")["modes"]
        row = (f"| {dataset} | {variant} | {len(group)} | {modes.mean():.1f} ± {modes.std():.1f} [")
        assert row in text, f"results/README.md has no row starting {row!r}"
        per_seed = ", ".join(str(int(m)) for m in modes)
        assert f"] | {per_seed} |" in text, f"{dataset} {variant}: the per-seed modes are {per_seed}"


# -- judgements quoted in docs/reading-results.md -----------------------------------------------------------

JUDGEMENT_ROWS = re.findall(r"^\| (`\w+`(?:, `\w+`)*) \| (.*?) \| (.*?) \| final ([<>]) best × ([0-9.]+) \|$",
                            (ROOT / "docs" / "reading-results.md").read_text(), re.M)


def test_the_judgement_table_covers_the_datasets_with_their_own_judgement():
    import ganzoo

    own = {c.name for c in ganzoo.get_registry().list("dataset") if c.judgement is not None}
    documented = {name for row in JUDGEMENT_ROWS for name in re.findall(r"`(\w+)`", row[0])}
    assert own <= documented, f"docs/reading-results.md's judgement table omits {sorted(own - documented)}"


@pytest.mark.parametrize("names,headline,collapse,direction,factor", JUDGEMENT_ROWS, ids=[r[0] for r in JUDGEMENT_ROWS])
def test_each_judgement_row_is_the_registered_judgement(names, headline, collapse, direction, factor):
    """Headline and direction, collapse criterion and degradation factor, as each dataset registers them."""
    import ganzoo

    for name in re.findall(r"`(\w+)`", names):
        judgement = ganzoo.get_registry().get("dataset", name).judgement
        assert headline.startswith(f"`{judgement.headline}`"), f"{name} ranks by {judgement.headline}"
        assert ("lower is better" in headline) == judgement.lower_is_better, f"{name}: direction"
        if judgement.tiebreak:
            assert f"ties: `{judgement.tiebreak}`" in headline, f"{name}: tiebreak {judgement.tiebreak}"
        (criterion,) = judgement.collapse
        bound = re.fullmatch(r"(\w+) <= (\d+)", criterion)
        quoted = f"`{criterion}`" in collapse or f"{bound.group(2)} of {judgement.ceiling:g}" in collapse
        assert quoted, f"{name} collapses when {criterion}, the table says {collapse}"
        expected = 1 - judgement.degrade_tolerance if not judgement.lower_is_better else 1 + judgement.degrade_tolerance
        assert direction == (">" if judgement.lower_is_better else "<") and float(factor) == pytest.approx(expected)


def test_the_vectorised_agreement_tables_single_runs_are_the_committed_baselines():
    """docs/scaling.md's 'single runs (mean)' column: the first default's 16-seed baselines, kept as a pilot (its
    ring8 runs came out bit for bit as committed then, its digits FIDs within 1e-13: the table prints 3 digits)."""
    import numpy as np

    runs = pd.read_csv(ROOT / "benchmarks" / "pilots" / "default-8x16-runs.csv")
    table = {(m[0], m[1]): m[2:] for m in re.findall(r"^\| (ring8|digits) \| (\w+) \(.*?\) \| (\d+) \| ([0-9.]+) \|",
                                                    (ROOT / "docs" / "scaling.md").read_text(), re.M)}
    assert set(table) == {("ring8", "mode_kl"), ("ring8", "modes"), ("digits", "fid"), ("digits", "classes")}
    for (dataset, metric), (seeds, single) in table.items():
        rows = runs[runs["dataset"] == dataset]
        baseline = rows[rows["experiment"] == _seeds_per_row(runs, dataset).idxmax()][metric]
        centre = np.exp(np.log(baseline).mean()) if metric in ("mode_kl", "fid") else baseline.mean()
        assert int(seeds) == len(baseline) and single == f"{centre:.3f}", (dataset, metric, centre)


@functools.cache
def _trained_by(suite_name: str) -> frozenset[tuple[str, str]]:
    import ganzoo
    from ganzoo.run.grid import Filters, build_grid
    from ganzoo.run.suite import load_suite

    specs = build_grid(load_suite(suite_name), ganzoo.get_registry(), Filters(), seeds=[0]).specs
    return frozenset(components_trained(spec.canonical() for spec in specs))


def test_the_readme_zoo_lists_every_built_in_component_with_its_reference():
    import ganzoo

    registry = ganzoo.get_registry()
    built_in = {(kind, c.name): c.reference for kind in ZOO_KINDS for c in registry.list(kind)
                if c.distribution == "ganzoo"}
    table = zoo_table()
    assert set(table) == set(built_in), f"README's zoo table vs the registry: {sorted(set(table) ^ set(built_in))}"
    for key, (reference, _) in table.items():
        # Every paper the table cites for a component is one its registration cites, and the first one is there.
        cited, registered = re.findall(r"arXiv:[\d.]+", reference), re.findall(r"arXiv:[\d.]+", built_in[key])
        assert set(cited) <= set(registered) and (not registered or registered[0] in cited), (key, cited, registered)


@pytest.mark.parametrize("suite", sorted({s for _, suites in zoo_table().values() for s in suites}))
def test_every_suite_the_zoo_table_names_trains_those_components(suite):
    claimed = {key for key, (_, suites) in zoo_table().items() if suite in suites}
    missing = claimed - _trained_by(suite)
    assert not missing, f"README says suite {suite} trains {sorted(missing)}, its grid does not"


def test_the_default_trains_every_built_in_component_but_the_conditional_ones_and_the_modern_zoo():
    """README: the default trains every component of its zoo table marked `default`; the rest, the class-conditional
    ones and the modern zoo, train in the suites the table names."""
    left_out = {key for key, (_, suites) in zoo_table().items() if "default" not in suites}
    assert {key for key in zoo_table() if key not in _trained_by("default")} == left_out
    assert "at least once except the class-conditional ones and the modern zoo" in _text("README.md")


CONDITIONAL_ROWS = re.findall(r"^\| (`\w+`(?:, `\w+`)*) \| (generator|discriminator|stabilizer) \|",
                              (ROOT / "docs" / "conditional.md").read_text(), re.M)


@pytest.mark.parametrize("names,kind", CONDITIONAL_ROWS, ids=[r[0] for r in CONDITIONAL_ROWS])
def test_the_conditional_components_listed_are_registered_as_conditional(names, kind):
    import ganzoo

    for name in re.findall(r"`(\w+)`", names):
        tags = ganzoo.get_registry().get(kind, name).tags
        assert {"conditional", "auxiliary_classifier"} & set(tags), f"{kind} {name} is not tagged conditional"


def test_every_built_in_conditional_component_is_listed():
    import ganzoo

    listed = {name for names, _ in CONDITIONAL_ROWS for name in re.findall(r"`(\w+)`", names)}
    conditional = {c.name for kind in ("generator", "discriminator", "stabilizer")
                   for c in ganzoo.get_registry().list(kind)
                   if c.distribution == "ganzoo" and {"conditional", "auxiliary_classifier"} & set(c.tags)}
    assert conditional == listed, f"docs/conditional.md's table: {sorted(conditional ^ listed)}"
