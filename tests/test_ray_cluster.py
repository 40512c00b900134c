"""The Ray executor on a cluster that loses a node, or its driver, in the middle of a sweep.

One Ray cluster of three nodes on this machine (``ray.cluster_utils.Cluster``) serves the module: a head that
offers no run slots (0 CPUs) and two worker nodes of one CPU each. A test kills a worker node while a run trains
on it: the run's stack holds testzoo's ``gate``, which waits after G step 3 (its checkpoint of step 2 written)
until the test opens the gate, so the test knows where the run stands when it kills the node it runs on (the node
its attempt log names). Every sweep's numbers are compared with the same specs trained inline at one thread.
Skips when Ray is not installed (``pip install 'ganzoo[ray]'``).
"""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import testzoo

from ganzoo.core.records import DONE, FAILED
from ganzoo.core.store import Store, StoreError
from ganzoo.run import artifacts
from ganzoo.run.attempts import read_attempts
from ganzoo.run.suite import parse_suite
from ganzoo.sweep import bench

ray = pytest.importorskip("ray")
# Their own marker (pytest -m cluster): starting the three nodes took 47-55 s and one node-loss sweep 59 s on the busy
# 2-core machine, more than CI's slow run has room for; run them where a cluster's behaviour matters.
pytestmark = pytest.mark.cluster

WORKER_NODES = 2
PATIENCE_S = 600  # how long a test waits for a sweep to reach the point it acts at (a busy 2-core machine took
# 90 s to start a Ray worker)


class _SlowClock:
    """The ``time`` module with ``monotonic`` running ``factor`` times slower (see ``patient_node_starts``)."""

    def __init__(self, factor: float):
        self.factor = factor

    def __getattr__(self, name):
        return getattr(time, name)

    def monotonic(self) -> float:
        return time.monotonic() / self.factor


@contextlib.contextmanager
def patient_node_starts(factor: float = 10):
    """Ray waits a fixed 30 s for a new node to register with the cluster (``ray._private.node``), and on a busy
    2-core machine starting one took longer: inside this, that wait runs on a clock ``factor`` times slower."""
    import ray._private.node

    real = ray._private.node.time
    ray._private.node.time = _SlowClock(factor)
    try:
        yield
    finally:
        ray._private.node.time = real


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Head (no CPUs: it trains nothing) and two 1-CPU worker nodes whose workers load testzoo's entry point."""
    from ray.cluster_utils import Cluster

    # The nodes' workers (and a driver run as a subprocess) are new interpreters: they find testzoo through PYTHONPATH.
    with testzoo.visible_to_new_interpreters(tmp_path_factory.mktemp("dist")):
        with patient_node_starts():
            nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            with patient_node_starts():
                for _ in range(WORKER_NODES):
                    nodes.add_node(num_cpus=1)
            nodes.wait_for_nodes()
            ray.init(address=nodes.address, include_dashboard=False, configure_logging=False)
            yield nodes
        finally:
            ray.shutdown()
            nodes.shutdown()


@pytest.fixture
def workers(cluster, gate):
    """Two live worker nodes (a node the last test killed is replaced) and a closed gate."""
    gate.unlink(missing_ok=True)
    with patient_node_starts():
        for _ in range(WORKER_NODES - len(cluster.worker_nodes)):
            cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    _wait_for(lambda: ray.cluster_resources().get("CPU", 0) == WORKER_NODES, "the replacement node to join")
    return cluster


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """The file the gated runs wait for: one path, so every test trains the same specs as the reference."""
    return tmp_path_factory.mktemp("gate") / "open"


def suite_raw(gate: Path) -> dict:
    """Four runs of 6 G steps, checkpointed every 2: two plain, then two gated at G step 3."""
    return testzoo.suite_dict(
        budget={"unit": "g_steps", "g_steps": 6, "eval_every_g_steps": 2, "batch_size": 64},
        stacks={"gated": [{"name": "gate", "step": 3, "path": str(gate)}]},
        components={"loss": ["logistic"], "generator": ["lin"], "discriminator": ["small"], "stack": ["none", "gated"]})


def quiet(**kwargs):
    from ganzoo.core.registry import build_registry

    return {"registry": build_registry(), "progress": False, "echo": lambda line: None, **kwargs}


@pytest.fixture(scope="module")
def reference(cluster, gate, tmp_path_factory):
    """The same four runs trained inline at one thread (the gate open): every run's evaluations, by run id."""
    import torch

    results = tmp_path_factory.mktemp("inline")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gate.touch()
    try:
        bench(parse_suite(suite_raw(gate), source="test"), results, **quiet(executor="inline"))
    finally:
        gate.unlink()
        torch.set_num_threads(threads)
    store = Store(results, readonly=True)
    return {row["run_id"]: store.evals(row["run_id"]) for row in store.runs("tiny")}


def _wait_for(condition, what: str, patience: float = PATIENCE_S):
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {patience:.0f} s for {what}")


def runs_so_far(results: Path) -> list[dict]:
    """The store's runs while a sweep writes it: none before it exists or while it is being created (no schema)."""
    try:
        return Store(results, readonly=True).runs("tiny") if (results / "ganzoo.sqlite").exists() else []
    except (sqlite3.Error, StoreError):
        return []


def gated_run_dirs(results: Path) -> list[Path]:
    return [results / "runs" / row["run_id"] for row in runs_so_far(results) if row["stack"] == "gated"]


def node_of(cluster, run_dir: Path):
    """The worker node the run's last start ran on, from its attempt log."""
    node_id = read_attempts(run_dir)[-1]["node"]
    return next(node for node in cluster.worker_nodes if node.node_id == node_id)


def kill_node_of_a_gated_run(cluster, results: Path, gate: Path, ready, killed: dict) -> None:
    """Once a gated run is ``ready`` (e.g. its checkpoint written), kill its node without warning and every process
    the run had on it, then open the gate. What went wrong, if anything, is left in ``killed["error"]``."""
    try:
        run_dir = _wait_for(lambda: next((d for d in gated_run_dirs(results) if read_attempts(d) and ready(d)), None),
                            "a gated run to reach its gate")
        pid, node = read_attempts(run_dir)[-1]["pid"], node_of(cluster, run_dir)
        killed["run_id"], killed["node"] = run_dir.name, node.node_id
        cluster.remove_node(node, allow_graceful=False)
        # A lost machine loses every process on it at once; a Ray worker outlives its killed raylet for a moment,
        # long enough to pass the gate opened below and finish its run on a node the cluster has given up (seen).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: not _alive(pid), f"the lost node's worker {pid} to be gone")
    except BaseException as error:
        killed["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        gate.touch()  # whatever happened, the sweep must be able to end


def sweep_losing_a_node(cluster, results: Path, gate: Path, ready, **ray_settings):
    """A Ray sweep of the four runs during which a thread kills the node of the first gated run that is ``ready``."""
    killed: dict = {}
    killer = threading.Thread(target=kill_node_of_a_gated_run, args=(cluster, results, gate, ready, killed))
    killer.start()
    try:
        summary = bench(parse_suite(suite_raw(gate), source="test"), results,
                        **quiet(executor="ray", ray_settings=ray_settings))
    finally:
        gate.touch()
        killer.join()
    assert "run_id" in killed and "error" not in killed, f"no node was killed ({killed.get('error')})"
    return summary, killed["run_id"]


def numbers(evals: list[dict]) -> list[dict]:
    """A run's evaluations without their wall-clock seconds: everything its spec decides."""
    return [{key: value for key, value in evaluation.items() if key != "seconds"} for evaluation in evals]


def assert_same_numbers(results: Path, reference: dict, run_ids) -> None:
    store = Store(results, readonly=True)
    for run_id in run_ids:
        assert numbers(store.evals(run_id)) == numbers(reference[run_id]), \
            f"run {run_id} differs from the same spec trained inline"


def test_a_run_on_a_lost_node_resumes_on_another_from_its_checkpoint(workers, gate, reference, tmp_path):
    def checkpointed(run_dir):
        return (run_dir / artifacts.CHECKPOINT).exists()

    summary, interrupted = sweep_losing_a_node(workers, tmp_path, gate, checkpointed)
    rows = {row["run_id"]: row for row in Store(tmp_path, readonly=True).runs("tiny")}
    assert sorted(rows) == sorted(reference) and set(summary.results.values()) == {DONE}
    assert {run_id: row["status"] for run_id, row in rows.items()} == dict.fromkeys(reference, DONE)
    # Bit for bit the numbers of the runs trained inline, the interrupted one's whole curve included.
    assert_same_numbers(tmp_path, reference, reference)
    # The interrupted run started twice, the second time from its checkpoint at G step 2, on the other node.
    assert (rows[interrupted]["attempts"], rows[interrupted]["resumed_from"]) == (2, 2)
    log = read_attempts(tmp_path / "runs" / interrupted)
    assert [entry["resumed_from"] for entry in log] == [0, 2] and log[0]["node"] != log[1]["node"]
    for run_id in set(rows) - {interrupted}:
        assert (rows[run_id]["attempts"], rows[run_id]["resumed_from"]) == (1, 0)


def test_a_shipped_run_on_a_lost_node_starts_again_from_zero_and_finishes(workers, gate, reference, tmp_path):
    def started(run_dir):  # its checkpoint is on the node, in a temporary folder: only its start is seen here
        return True

    summary, interrupted = sweep_losing_a_node(workers, tmp_path, gate, started, storage="ship")
    rows = {row["run_id"]: row for row in Store(tmp_path, readonly=True).runs("tiny")}
    assert {run_id: row["status"] for run_id, row in rows.items()} == dict.fromkeys(reference, DONE)
    assert_same_numbers(tmp_path, reference, reference)
    assert (rows[interrupted]["attempts"], rows[interrupted]["resumed_from"]) == (2, 0)
    assert [entry["resumed_from"] for entry in read_attempts(tmp_path / "runs" / interrupted)] == [0, 0]
    assert (tmp_path / "runs" / interrupted / artifacts.CHECKPOINT).is_file()  # shipped back whole


def test_a_run_whose_node_is_lost_beyond_the_retry_budget_fails_alone_and_resumes_on_rerun(
        workers, gate, reference, tmp_path):
    def checkpointed(run_dir):
        return (run_dir / artifacts.CHECKPOINT).exists()

    summary, lost = sweep_losing_a_node(workers, tmp_path, gate, checkpointed, max_retries=0)
    assert summary.results == {**dict.fromkeys(reference, DONE), lost: FAILED}
    row = next(row for row in Store(tmp_path, readonly=True).runs("tiny") if row["run_id"] == lost)
    assert row["error"].startswith("the node training this run was lost 1 time, more than --ray-max-retries 0 "
                                   "allows (last: NodeDiedError"), row["error"]
    assert "the sweep went on. Rerun the same command to train it again (it resumes from its last checkpoint)" \
        in row["error"]
    assert (row["attempts"], row["resumed_from"]) == (1, 0)
    assert_same_numbers(tmp_path, reference, set(reference) - {lost})

    # The same command again: the lost run resumes from its checkpoint, and nothing else trains.
    again = bench(parse_suite(suite_raw(gate), source="test"), tmp_path, **quiet(executor="ray"))
    assert again.results == {lost: DONE} and len(again.skipped) == 3
    row = next(row for row in Store(tmp_path, readonly=True).runs("tiny") if row["run_id"] == lost)
    # From a checkpoint, not from zero: at least the one it had at the gate (step 2). Seen here once: step 6, when
    # the lost node's worker process outlived its raylet long enough to pass the opened gate and checkpoint again.
    assert row["attempts"] == 2 and row["resumed_from"] >= 2, (row["attempts"], row["resumed_from"])
    assert_same_numbers(tmp_path, reference, reference)


def test_a_sweep_whose_driver_was_killed_finishes_on_rerun_without_repeating_a_run(workers, gate, reference,
                                                                                     tmp_path):
    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(toml_of(suite_raw(gate)))
    results = tmp_path / "results"
    command = [sys.executable, "-m", "ganzoo", "bench", "--all", "--suite", str(suite_file), "--results-dir",
               str(results), "--executor", "ray", "--address", workers.address, "--ray-max-retries", "3",
               "--no-progress"]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def two_done_and_two_at_the_gate():
            if driver.poll() is not None:
                raise AssertionError(f"the driver ended before it was killed:\n{driver.stdout.read()}")
            statuses = [row["status"] for row in runs_so_far(results)]
            gated = gated_run_dirs(results)
            return statuses.count(DONE) == 2 and len(gated) == 2 and all((d / artifacts.CHECKPOINT).exists()
                                                                         for d in gated)

        _wait_for(two_done_and_two_at_the_gate, "two runs done and two waiting at their gate")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.communicate()
    before = {row["run_id"]: row for row in Store(results, readonly=True).runs("tiny")}
    done = [run_id for run_id, row in before.items() if row["status"] == DONE]
    mtimes = {run_id: (results / "runs" / run_id / artifacts.CHECKPOINT).stat().st_mtime_ns for run_id in done}
    # Ray stops a dead driver's tasks: wait for the gated runs' workers to be gone before they could go on.
    for run_dir in gated_run_dirs(results):
        for entry in read_attempts(run_dir):
            _wait_for(lambda pid=entry["pid"]: not _alive(pid), f"worker {entry['pid']} of the dead driver to stop")
    gate.touch()

    rerun = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=PATIENCE_S)
    assert rerun.returncode == 0, rerun.stdout
    assert "4 runs (2 already finished, 0 running elsewhere, 2 to train)" in rerun.stdout, rerun.stdout
    after = {row["run_id"]: row for row in Store(results, readonly=True).runs("tiny")}
    assert {run_id: row["status"] for run_id, row in after.items()} == dict.fromkeys(reference, DONE)
    assert_same_numbers(results, reference, reference)
    for run_id in done:  # not trained again: the same record, the same checkpoint file
        assert (after[run_id]["attempts"], after[run_id]["finished"]) == (1, before[run_id]["finished"])
        assert (results / "runs" / run_id / artifacts.CHECKPOINT).stat().st_mtime_ns == mtimes[run_id]
    for run_dir in gated_run_dirs(results):  # resumed where the killed sweep left them
        assert [entry["resumed_from"] for entry in read_attempts(run_dir)] == [0, 2]
        assert (after[run_dir.name]["attempts"], after[run_dir.name]["resumed_from"]) == (2, 2)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: a zombie does not (a killed worker whose parent raylet died first may
    wait for a reaper that a container's first process never is)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def toml_of(raw: dict) -> str:
    """The suite dict as TOML (the few shapes ``suite_raw`` uses)."""
    import json

    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, bool):
            return str(v).lower()
        return json.dumps(v)

    lines = [f"{key} = {value(raw[key])}" for key in ("name", "design", "seeds", "auto_stacks")]
    for table in ("budget", "eval", "components", "stacks"):
        lines += [f"[{table}]", *(f"{k} = {value(v)}" for k, v in raw[table].items())]
    lines += [f"[[datasets]]\n{k} = {value(v)}" if i == 0 else f"{k} = {value(v)}"
              for dataset in raw["datasets"] for i, (k, v) in enumerate(dataset.items())]
    return "\n".join(lines) + "\n"
