"""Reading results needs no training: ``ganzoo.report``, ``ganzoo report`` and ``ganzoo compare`` import neither the
training loop nor the zoo's networks.

Checked in a fresh interpreter (this one has imported everything already), on a small store written through the
``Store`` API, so the test costs one interpreter start.
"""

import json
import subprocess
import sys

from ganzoo.api.judgement import DEFAULT_JUDGEMENT
from ganzoo.api.plugins import BUILTIN_DISTRIBUTION
from ganzoo.core.records import DONE, DatasetRecord, RunResult, SuiteRecord
from ganzoo.core.registry import get_registry
from ganzoo.core.spec import Budget, ComponentRef, EvalProtocol, Optim, RunSpec
from ganzoo.core.store import Store

# The training loop, the sweep that drives it, and the built-in zoo (networks, losses, stabilizers, datasets).
FORBIDDEN = ("ganzoo.run.train", "ganzoo.run.build", "ganzoo.sweep.driver", "ganzoo.sweep.executors",
             "ganzoo_plugins")

PROBE = """
import json, sys
from click.testing import CliRunner

FORBIDDEN = {forbidden!r}

def loaded():
    return sorted(m for m in sys.modules if m.startswith(FORBIDDEN))

steps = {{}}
import ganzoo.report
steps["import ganzoo.report"] = loaded()
from ganzoo.cli import main
steps["import ganzoo.cli"] = loaded()
for args in ({report!r}, {compare!r}):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    steps[" ".join(args[:1])] = loaded()
import ganzoo.sweep
ganzoo.sweep.bench  # the public name still works, loading the driver on first use
steps["ganzoo.sweep.bench"] = loaded()
print(json.dumps(steps))
"""


def _spec(stack: str, seed: int) -> RunSpec:
    return RunSpec(dataset=ComponentRef("blobs"), generator=ComponentRef("lin"), discriminator=ComponentRef("small"),
                   loss=ComponentRef("logistic"), stack_name=stack,
                   stack=(ComponentRef(stack),) if stack != "none" else (), seed=seed, budget=Budget(kimg=1.0),
                   optim=Optim(), protocol=EvalProtocol(metrics=("fid",)))


def _tiny_store(root):
    """Two experiments of three seeds, finished, with the suite's baseline and judgement recorded as bench does."""
    store = Store(root)
    baseline = {"generator": "lin", "discriminator": "small", "loss": "logistic", "stack": "none"}
    store.set_suite_record("tiny", SuiteRecord(datasets={"blobs": DatasetRecord(baseline, DEFAULT_JUDGEMENT)}))
    specs = [_spec(stack, seed) for stack in ("none", "r1") for seed in range(3)]
    store.add_many(specs, "tiny")
    for i, spec in enumerate(specs):
        store.claim(spec.run_id, {})
        store.record(RunResult(spec.run_id, DONE, kimg=1.0, g_steps=10,
                               evals=[{"kimg": 1.0, "g_steps": 10, "metrics": {"fid": 10.0 + i}}]))
    store.close()


def test_reading_results_imports_no_training_loop_and_no_zoo(tmp_path):
    _tiny_store(tmp_path / "results")
    report = ["report", "--results-dir", str(tmp_path / "results"), "--out", str(tmp_path / "out")]
    compare = ["compare", "stack=none", "stack=r1", "--suite", "tiny", "--results-dir", str(tmp_path / "results")]
    code = PROBE.format(forbidden=FORBIDDEN, report=report, compare=compare)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    for step in ("import ganzoo.report", "import ganzoo.cli", "report", "compare"):
        assert steps[step] == [], f"{step} imported {steps[step]}"
    assert (tmp_path / "out" / "tiny" / "leaderboard.md").is_file()
    # The probe sees the training loop once something asks for it: it can fail.
    assert {"ganzoo.sweep.driver", "ganzoo.run.train"} <= set(steps["ganzoo.sweep.bench"])


def test_the_built_in_zoo_registers_no_metric():
    """Reports read the metrics from a registry without the zoo's entry points (``metric_registry``): that loses
    nothing only while the zoo registers none (the core registers the built-in metrics)."""
    registry = get_registry()
    zoo = [info for info in registry.plugins.values()
           if info.distribution == BUILTIN_DISTRIBUTION and info.module.startswith("ganzoo_plugins")]
    assert zoo, "the built-in zoo's plugins are not in the registry"
    assert not [info.name for info in zoo if "register_metrics" in info.hooks]
