"""Suites: TOML files that fix a benchmark's datasets, budget, seeds, protocol and design.

A suite is looked up by path, then by name among the suites that ship with ganzoo
(``benchmarks/suites/``, installed as ``ganzoo_suites``). See benchmarks/README.md for the format.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api.judgement import EVAL_SIZES, Judgement, parse_criterion
from ..core.records import CROSSED_DESIGNS, DESIGNS
from ..core.spec import Budget, ComponentRef, Compute, EvalProtocol, Optim

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_SUITE = "default"
AXES = ("generator", "discriminator", "loss", "stack")
TOP_LEVEL_KEYS = {"name", "description", "design", "seeds", "budget", "optim", "eval", "stacks", "auto_stacks",
                  "datasets", "components", "hparams", "compute"}
DATASET_KEYS = {"name", "hparams", "baseline", "budget", "optim", "eval", "components", "component_hparams",
                "success", "extra", "seeds", "baseline_seeds", "row_seeds", "judgement", "compute", "design"}


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the key."""


@dataclass
class DatasetPlan:
    """One dataset of a suite with everything resolved for it."""

    dataset: ComponentRef
    baseline: dict[str, str]
    budget: Budget
    optim: Optim
    protocol: EvalProtocol
    components: dict[str, dict[str, list[str]]]  # axis -> {"include": [...], "exclude": [...]}
    component_hparams: dict[str, dict[str, dict[str, Any]]]  # kind -> name -> overrides
    success: list[str] | None = None  # success criterion at this budget; None: the dataset's own
    seeds: list[int] | None = None  # this dataset's seeds; None: the suite's
    # The baseline row's seeds, when it needs more than the others: every other row is compared with it, so
    # with m comparisons about sqrt(m) times a row's seeds minimise the runs for a given power (Dunnett 1955).
    baseline_seeds: list[int] | None = None
    # Rows with seeds of their own: the rows a suite tests get enough seeds to decide, the others may train one
    # seed each (shown, never tested: a row with one seed is not in the table's Holm family). Each entry names
    # a row as ``extra`` does (axes it changes from the baseline), with ``seeds``: {"axes": {...}, "seeds": [...]}.
    row_seeds: list[dict[str, Any]] = field(default_factory=list)
    judgement: dict[str, Any] = field(default_factory=dict)  # overrides of the dataset's Judgement at this budget
    extra: list[dict[str, str]] = field(default_factory=list)  # combinations beyond the design (axes -> names)
    compute: Compute = Compute()  # fp32, no channels_last, no compile: the leaderboards' default
    eval_keys: tuple[str, ...] = ()  # the [eval] keys the suite sets; the dataset's declared sizes fill the others
    # This dataset's own design, where it differs from the suite's (None: the suite's). A suite may test one
    # dataset's rows against a baseline and cross another's components: each is analysed by its own design.
    design: str | None = None
    fraction: Fraction | None = None  # its fractional design's size and seed (None: the suite's)

    def protocol_for(self, judgement: Judgement | None) -> EvalProtocol:
        """The suite's protocol, with the evaluation sizes it leaves out taken from the dataset's judgement.

        A suite for ring8 without ``[eval]`` would otherwise compare against all 100,000 real points; its
        judgement declares the 2,500 of VEEGAN and PacGAN. What the suite sets always wins.
        """
        declared = {k: v for k, v in (judgement.eval_sizes() if judgement else {}).items() if k not in self.eval_keys}
        if self.protocol.reference is not None:  # a statistics file measured its own samples: it decides n_real
            declared.pop("n_real", None)
        return dataclasses.replace(self.protocol, **declared) if declared else self.protocol


@dataclass(frozen=True)
class Fraction:
    """How many cells of the crossed grid a fractional design trains, and the seed that picks them.

    ``cells`` or ``fraction`` (of the compatible cells); neither: enough cells for every pair of levels of
    the two largest axes to appear once. The same seed picks the same cells.
    """

    cells: int | None = None
    fraction: float | None = None
    seed: int = 0

    def __post_init__(self):
        if self.cells is not None and self.fraction is not None:
            raise ValueError("give the fractional design's size as cells or as fraction, not both")
        if self.cells is not None and (not isinstance(self.cells, int) or isinstance(self.cells, bool)
                                       or self.cells < 1):
            raise ValueError(f"cells must be a positive integer, got {self.cells!r}")
        if self.fraction is not None and (isinstance(self.fraction, bool) or not isinstance(self.fraction, int | float)
                                          or not 0 < self.fraction <= 1):
            raise ValueError(f"fraction must be a number in (0, 1], got {self.fraction!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


@dataclass
class Suite:
    name: str
    description: str
    design: str
    seeds: list[int]
    stacks: dict[str, list[ComponentRef]]
    auto_stacks: bool
    datasets: list[DatasetPlan]
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    fraction: Fraction = Fraction()  # the fractional design's size and seed (fractional designs only)

    def design_of(self, plan: DatasetPlan) -> str:
        """The design ``plan``'s dataset trains under: its own, else the suite's."""
        return plan.design or self.design

    def fraction_of(self, plan: DatasetPlan) -> Fraction:
        return plan.fraction or self.fraction


SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def available_suites() -> dict[str, Path]:
    """Suites that ship with ganzoo, by name."""
    root = importlib.resources.files("ganzoo_suites")
    return {Path(entry.name).stem: Path(str(entry)) for entry in root.iterdir() if entry.name.endswith(".toml")}


def find_suite(name_or_path: str | None) -> Path:
    if not name_or_path:
        name_or_path = DEFAULT_SUITE
    path = Path(name_or_path)
    # A file, or a .toml name, is a path; a folder that happens to share a suite's name (a results folder
    # named after its suite) is not.
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise SuiteError(f"Suite file {path} does not exist")
        return path
    shipped = available_suites()
    if name_or_path in shipped:
        return shipped[name_or_path]
    raise SuiteError(f'Unknown suite "{name_or_path}". Shipped suites: {", ".join(sorted(shipped))}; '
                     "or give the path of a .toml file")


def load_suite(name_or_path: str | None = None) -> Suite:
    path = find_suite(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"Suite {path} is not valid TOML: {exc}") from exc
    return parse_suite(raw, source=str(path), default_name=path.stem)


def parse_suite(raw: dict[str, Any], source: str = "<suite>", default_name: str = "suite") -> Suite:
    where = f"Suite {source}"
    _no_unknown(raw, TOP_LEVEL_KEYS, where)
    design, fraction = _design(raw.get("design", "one-factor"), where)
    seeds = _seeds(raw.get("seeds", 1), where)
    stacks = {"none": []}
    for stack_name, entries in raw.get("stacks", {}).items():
        stacks[stack_name] = [_stack_entry(e, f"{where}, stack {stack_name}") for e in entries]
    if not raw.get("datasets"):
        raise SuiteError(f'{where}: needs at least one [[datasets]] table with a "name"')
    # A relative eval.reference is read from the suite's folder, wherever the sweep is started.
    folder = Path(source).parent if Path(source).is_file() else Path.cwd()
    plans = [_dataset_plan(entry, raw, f"{where}, dataset #{i + 1}", folder)
             for i, entry in enumerate(raw["datasets"])]
    name, description = raw.get("name", default_name), raw.get("description", "")
    if not isinstance(name, str) or not SUITE_NAME.match(name):
        raise SuiteError(f"{where}: name must be letters, digits, '_', '.' or '-' (it names the results folder), "
                         f"got {name!r}")
    if not isinstance(description, str):
        raise SuiteError(f"{where}: description must be a string, got {description!r}")
    return Suite(
        name=name,
        description=description,
        design=design,
        seeds=seeds,
        stacks=stacks,
        auto_stacks=bool(raw.get("auto_stacks", True)),
        datasets=plans,
        source=source,
        raw=raw,
        fraction=fraction,
    )


def with_design(suite: Suite, design: str | None, fraction: Fraction | None = None) -> Suite:
    """``suite`` under another design (``bench --design``), its fraction's size and seed replaced by ``fraction``.

    A design other than the suite's own trains under the name SUITE-DESIGN, so that its runs never join the
    suite's own in one leaderboard. Crossing a one-factor suite drops its ``baseline_seeds`` and ``row_seeds``:
    they weigh the rows a baseline is compared with, and every cell of a crossed design trains the same seeds.
    """
    design = design or suite.design
    if design not in DESIGNS:
        raise SuiteError(f'design must be one of {", ".join(DESIGNS)}, got "{design}"')
    if fraction is not None and design != "fractional":
        raise SuiteError(f"--cells, --fraction and --design-seed size a fractional design; suite {suite.name} "
                         f'has design "{design}": add --design fractional')
    if design == suite.design and fraction is None and not any(plan.design for plan in suite.datasets):
        return suite
    own = [suite.design_of(plan) for plan in suite.datasets]
    # --design decides every dataset's design, whatever the suite gave each.
    datasets = [dataclasses.replace(plan, design=None, fraction=None) for plan in suite.datasets]
    if design == "one-factor":
        for plan in datasets:
            missing = [axis for axis in AXES if axis not in plan.baseline]
            if missing:
                raise SuiteError(f"--design one-factor needs a baseline for every axis; suite {suite.name}, dataset "
                                 f"{plan.dataset.name} has none for {missing}: add baseline = {{ ... }} there")
    else:
        datasets = [dataclasses.replace(plan, baseline_seeds=None, row_seeds=[]) if was == "one-factor" else plan
                    for plan, was in zip(datasets, own, strict=True)]
    name = suite.name if all(was == design for was in own) else f"{suite.name}-{design}"
    return dataclasses.replace(suite, name=name, design=design, datasets=datasets, fraction=fraction or suite.fraction)


def with_seed_offset(suite: Suite, offset: int) -> Suite:
    """The same suite on seeds shifted by ``offset``: a replicate on disjoint seeds (``bench --seed-offset``)."""
    if offset == 0:
        return suite

    def shift(seeds: list[int] | None) -> list[int] | None:
        return None if seeds is None else [seed + offset for seed in seeds]

    return dataclasses.replace(suite, seeds=shift(suite.seeds), datasets=[
        dataclasses.replace(plan, seeds=shift(plan.seeds), baseline_seeds=shift(plan.baseline_seeds),
                            row_seeds=[{**row, "seeds": shift(row["seeds"])} for row in plan.row_seeds])
        for plan in suite.datasets])


def _design(value: Any, where: str) -> tuple[str, Fraction]:
    """``design = "full"``, or a table for a fractional design: ``{ name = "fractional", cells = 24, seed = 0 }``."""
    example = 'e.g. design = "full" or design = { name = "fractional", cells = 24, seed = 0 }'
    table = value if isinstance(value, dict) else {"name": value}
    name = table.get("name")
    if name not in DESIGNS:
        raise SuiteError(f'{where}: design must be one of {DESIGNS}, got "{name}"; {example}')
    size = {k: v for k, v in table.items() if k != "name"}
    unknown = sorted(set(size) - {"cells", "fraction", "seed"})
    if unknown or (size and name != "fractional"):
        raise SuiteError(f"{where}: design {name!r} takes no {', '.join(unknown or sorted(size))}; only a "
                         f"fractional design takes cells or fraction, and seed; {example}")
    try:
        return name, Fraction(**size)
    except ValueError as exc:
        raise SuiteError(f"{where}: design: {exc}") from exc


def _row_seeds(value: Any, where: str) -> list[dict[str, Any]]:
    """``row_seeds = [{ stack = "ttur", seeds = 8 }, ...]`` -> [{"axes": {"stack": "ttur"}, "seeds": [0..7]}]."""
    example = 'e.g. row_seeds = [{ stack = "ttur", seeds = 8 }] (axes not named: the baseline\'s)'
    if not isinstance(value, list):
        raise SuiteError(f"{where}: row_seeds must be a list of tables, {example}")
    rows = []
    for entry in value:
        if not isinstance(entry, dict) or "seeds" not in entry or not set(entry) - {"seeds"} \
                or not set(entry) - {"seeds"} <= set(AXES):
            raise SuiteError(f"{where}: each row_seeds entry names one component per axis among {AXES} and its "
                             f"seeds; got {entry!r}; {example}")
        rows.append({"axes": {k: str(v) for k, v in entry.items() if k != "seeds"},
                     "seeds": _seeds(entry["seeds"], f"{where}: row_seeds {entry!r}")})
    return rows


def _check_judgement(overrides: Any, where: str) -> None:
    """A dataset's ``judgement`` table: fields of ``Judgement`` (the headline, its scale, the criteria...)."""
    fields = sorted(set(Judgement.__dataclass_fields__) - set(EVAL_SIZES))
    if isinstance(overrides, dict) and set(overrides) & set(EVAL_SIZES):
        raise SuiteError(f"{where}: judgement sets {sorted(set(overrides) & set(EVAL_SIZES))}: a suite sets the "
                         "evaluation sizes in its [eval] (or [datasets.eval]) table, e.g. n_fake = 2500")
    if not isinstance(overrides, dict) or set(overrides) - set(fields):
        unknown = sorted(set(overrides) - set(fields)) if isinstance(overrides, dict) else overrides
        raise SuiteError(f"{where}: judgement must be a table of Judgement fields ({', '.join(fields)}); "
                         f"got {unknown!r}")
    try:
        Judgement(**overrides)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{where}: judgement: {exc}") from exc


def _seeds(value: Any, where: str) -> list[int]:
    """A count (``5`` -> seeds 0..4), a count from a first seed (``{ first = 100, count = 5 }`` -> 100..104: seeds
    disjoint from a pilot's), or an explicit list of integers."""
    if isinstance(value, dict) and set(value) == {"first", "count"} and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value.values()) and value["count"] > 0:
        return list(range(value["first"], value["first"] + value["count"]))
    seeds = list(range(value)) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                            for s in seeds):
        raise SuiteError(f"{where}: seeds must be a positive count, {{ first = N, count = K }} or a non-empty list "
                         f"of integers, got {value!r}")
    return seeds


def _no_unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise SuiteError(f"{where}: unknown keys {unknown}; known keys: {sorted(known)}")


def _stack_entry(entry: str | dict[str, Any], where: str) -> ComponentRef:
    if isinstance(entry, str):
        return ComponentRef(entry, {})
    if isinstance(entry, dict) and "name" in entry:
        params = {k: v for k, v in entry.items() if k != "name"}
        return ComponentRef(entry["name"], params)
    raise SuiteError(f'{where}: each entry is a stabilizer name or a table with "name" and its hyperparameters, '
                     f"got {entry!r}")


def _reference_file(value: Any, folder: Path, where: str) -> str:
    """``eval.reference``: a statistics file (``ganzoo stats``), as an absolute path; it must exist."""
    if not isinstance(value, str) or not value.endswith(".npz"):
        raise SuiteError(f'{where}: eval.reference must be the path of a statistics file written by ganzoo stats, '
                         f'such as "cifar10-train.npz", got {value!r}')
    path = (folder / Path(value).expanduser()).resolve()
    if not path.is_file():
        raise SuiteError(f"{where}: eval.reference {value} is not a file (looked for {path}); write it with: "
                         f"ganzoo stats REAL --out {value}")
    return str(path)


def _dataset_plan(entry: dict[str, Any], raw: dict[str, Any], where: str, folder: Path) -> DatasetPlan:
    if "name" not in entry:
        raise SuiteError(f'{where}: missing "name"')
    _no_unknown(entry, DATASET_KEYS, where)
    budget_table = {**raw.get("budget", {}), **entry.get("budget", {})}
    own_unit = entry.get("budget", {}).get("unit", budget_table.get("unit", "kimg"))
    if own_unit != raw.get("budget", {}).get("unit", "kimg"):
        # A dataset that counts its budget in the other unit does not inherit the suite's amounts.
        inherited = {"kimg", "eval_every_kimg", "g_steps", "eval_every_g_steps"} - set(entry.get("budget", {}))
        budget_table = {k: v for k, v in budget_table.items() if k not in inherited}
    if budget_table.get("unit", "kimg") == "kimg" and "kimg" not in budget_table:
        raise SuiteError(f'{where}: the budget needs kimg (images shown to D, in thousands), or unit = "g_steps" '
                         "and g_steps")
    optim_table = {**raw.get("optim", {}), **entry.get("optim", {})}
    eval_table = {**raw.get("eval", {}), **entry.get("eval", {})}
    compute_table = {**raw.get("compute", {}), **entry.get("compute", {})}
    if "reference" in eval_table:
        eval_table["reference"] = _reference_file(eval_table["reference"], folder, where)
    try:
        compute = Compute(**compute_table)
        budget = Budget(**budget_table)
        optim = Optim(**{k: (tuple(v) if k == "betas" else v) for k, v in optim_table.items()})
        if isinstance(eval_table.get("metrics"), list):  # TOML lists; a bare string is refused by EvalProtocol
            eval_table["metrics"] = tuple(eval_table["metrics"])
        protocol = EvalProtocol(**eval_table)
    except TypeError as exc:
        raise SuiteError(f"{where}: {exc}. Budget keys: {[f.name for f in dataclasses.fields(Budget)]}; "
                         f"optim keys: {list(Optim.KEYS)}; "
                         f"compute keys: {[f.name for f in dataclasses.fields(Compute)]}; "
                         f"eval keys: {[f.name for f in dataclasses.fields(EvalProtocol)]}") from exc
    except ValueError as exc:  # a value out of range (a budget in the wrong unit, a negative count)
        raise SuiteError(f"{where}: {exc}") from exc
    baseline = dict(entry.get("baseline", {}))
    missing = [axis for axis in AXES if axis not in baseline]
    own_design, own_fraction = _design(entry["design"], where) if "design" in entry else (None, None)
    design = own_design or _design(raw.get("design", "one-factor"), where)[0]
    if missing and design == "one-factor":
        raise SuiteError(f"{where}: a one-factor design needs a baseline for every axis; missing {missing}")
    if design in CROSSED_DESIGNS and ("baseline_seeds" in entry or "row_seeds" in entry):
        raise SuiteError(f"{where}: baseline_seeds and row_seeds weigh the rows of a one-factor design; in a "
                         f"{design} design every cell trains the same seeds (seeds = N)")
    baseline.setdefault("stack", "none")
    components: dict[str, dict[str, list[str]]] = {}
    for table in (raw.get("components", {}), entry.get("components", {})):
        for axis, patterns in table.items():
            key, axis_name = ("exclude", axis[len("exclude_"):]) if axis.startswith("exclude_") else ("include", axis)
            if axis_name not in AXES:
                raise SuiteError(f'{where}: components key "{axis}" must name an axis among {AXES} '
                                 "(optionally exclude_<axis>)")
            components.setdefault(axis_name, {"include": [], "exclude": []})[key] = list(patterns)
    hparams: dict[str, dict[str, dict[str, Any]]] = {}
    for table in (raw.get("hparams", {}), entry.get("component_hparams", {})):
        for kind, by_name in table.items():
            for name, values in by_name.items():
                hparams.setdefault(kind, {}).setdefault(name, {}).update(values)
    success = entry.get("success")
    if success is not None:
        if not isinstance(success, list) or not all(isinstance(c, str) for c in success):
            raise SuiteError(f'{where}: success must be a list of criteria such as ["modes >= 7", "fid <= 30"]')
        for criterion in success:
            try:
                parse_criterion(criterion)
            except ValueError as exc:
                raise SuiteError(f"{where}: {exc}") from exc
    judgement = entry.get("judgement", {})
    _check_judgement(judgement, where)
    extra = entry.get("extra", [])
    if not isinstance(extra, list) or not all(isinstance(e, dict) and set(e) <= set(AXES) and e for e in extra):
        raise SuiteError(f"{where}: extra must be a list of tables naming one component per axis among {AXES}, "
                         'e.g. extra = [{ loss = "wasserstein", stack = "wgan_gp" }] (missing axes: the baseline)')
    return DatasetPlan(
        dataset=ComponentRef(entry["name"], dict(entry.get("hparams", {}))),
        baseline=baseline,
        budget=budget,
        optim=optim,
        protocol=protocol,
        components=components,
        component_hparams=hparams,
        success=success,
        seeds=_seeds(entry["seeds"], where) if "seeds" in entry else None,
        baseline_seeds=_seeds(entry["baseline_seeds"], where) if "baseline_seeds" in entry else None,
        row_seeds=_row_seeds(entry.get("row_seeds", []), where),
        judgement=dict(judgement),
        extra=[{k: str(v) for k, v in e.items()} for e in extra],
        compute=compute,
        eval_keys=tuple(sorted(eval_table)),
        design=own_design,
        fraction=own_fraction if own_design == "fractional" else None,
    )
