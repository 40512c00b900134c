"""Experiment trackers (``--log``): every evaluation, the spec and the sample grid reach the tracker, read back with
the libraries' own readers and compared with the run's record; a tracker that fails never fails the run."""

import io
import json
import math
import pickle
import re
import types
import warnings
from pathlib import Path

import pytest
import testzoo
from click.testing import CliRunner
from PIL import Image

import ganzoo
import ganzoo_plugins.trackers as trackers_plugin
from ganzoo.cli import main
from ganzoo.core.records import DONE
from ganzoo.run import tracking
from ganzoo.run.tracking import TrackerSettings, TrackerWarning, prepare_trackers
from ganzoo.run.train import RunOptions, run
from ganzoo.sweep.executors import ProcessExecutor
from ganzoo.testing import plugin_registry

PLUGINS_MD = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()


def docs_tracker() -> types.ModuleType:
    """The minimal tracker of docs/plugins.md ("register_trackers"), executed as the plugin a user would write."""
    body = PLUGINS_MD.split("### register_trackers(register)")[1].split("\n## ")[0]
    module = types.ModuleType("ganzoo_acme_tracker")
    module.ganzoo = ganzoo
    exec(compile(re.search(r"```python\n(.*?)```", body, re.S).group(1), "docs/plugins.md", "exec"), module.__dict__)
    return module


class Failing(ganzoo.Tracker):
    """Raises at its first evaluation; counts what it is asked afterwards."""

    calls: list[str] = []

    def __init__(self, run, target):
        Failing.calls.clear()

    def log_metrics(self, metrics, step):
        Failing.calls.append("log_metrics")
        raise RuntimeError("the tracking server said no")

    def log_image(self, name, path, step):
        Failing.calls.append("log_image")


def needs_a_missing_module(run, target):
    import ganzoo_no_such_tracker_library  # noqa: F401


class _TestTrackers:
    @ganzoo.hookimpl
    def register_trackers(self, register):
        register("failing", Failing, description="Raises while logging an evaluation")
        register("missing_library", needs_a_missing_module, description="Imports a library that is not installed",
                 install="pip install ganzoo-no-such-tracker-library")


@pytest.fixture(scope="module")
def registry():
    plugins = {"testzoo": testzoo, "trackers": trackers_plugin, "acme": docs_tracker(), "test": _TestTrackers()}
    with plugin_registry(plugins, load_entry_points=False) as reg:
        assert not reg.errors
        yield reg


SPEC = testzoo.tiny_spec("pixels", g_steps=6, eval_every_g_steps=2)  # three evaluations and an image grid
LIBRARIES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # tracker -> the library it needs


@pytest.fixture(scope="module")
def logged(registry, tmp_path_factory):
    """One tiny run logged to every tracker at once (those whose library is installed): two that fail, the docs'
    tracker, TensorBoard and MLflow; its result, its results folder and the tracker warnings it gave."""
    folder = tmp_path_factory.mktemp("tracked")
    names = ["failing", "missing_library", "acme_jsonl",
             *(name for name, library in LIBRARIES.items() if tracking._importable(library))]
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = prepare_trackers([(name, None) for name in names], folder, "tiny", registry, print)
        assert [s.name for s in settings] == names
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run(SPEC, folder / "runs" / SPEC.run_id, "cpu", registry, RunOptions(trackers=settings))
    assert result.status == DONE and len(result.evals) == 3
    return result, folder, [str(w.message) for w in caught if issubclass(w.category, TrackerWarning)]


def logged_values(evaluation: dict) -> dict[str, float]:
    """What each evaluation must show in a tracker: its metrics and its mean losses, from the run's record."""
    return {**evaluation["metrics"], "d_loss": evaluation["d_loss"], "g_loss": evaluation["g_loss"],
            "kimg": evaluation["kimg"]}


def check_throughput(evaluation: dict, imgs_per_s: float) -> None:
    """Training images per training second: at least images per second of the run so far, evaluations included."""
    assert math.isfinite(imgs_per_s) and imgs_per_s >= evaluation["kimg"] * 1000 / evaluation["seconds"] * (1 - 1e-6)


def test_a_failing_tracker_warns_once_is_turned_off_and_the_run_and_other_trackers_go_on(logged):
    result, folder, messages = logged
    assert len(messages) == 2, messages  # once per failing tracker, though the run evaluated three times
    failing, missing = sorted(messages)
    assert failing.startswith('tracker "failing" failed while logging the evaluation at G step 2')
    assert "the tracking server said no" in failing and "leave out --log failing" in failing
    assert missing.startswith('tracker "missing_library" failed while starting')
    assert "Install it: pip install ganzoo-no-such-tracker-library" in missing
    assert Failing.calls == ["log_metrics"]  # turned off: never asked again

    # The docs' tracker, beside the failing ones, saw the whole run: its spec, each evaluation, the grid, the end.
    lines = [json.loads(line) for line in (folder / "acme-log" / f"{SPEC.run_id}.jsonl").read_text().splitlines()]
    params, *evaluations, image, end = lines
    assert params["params"]["generator"] == SPEC.generator.name and params["params"]["seed"] == SPEC.seed
    assert params["params"]["generator.latent_dim"] == SPEC.generator.hparams["latent_dim"]
    assert params["params"]["budget.g_steps"] == 6 and params["params"]["run_id"] == SPEC.run_id
    assert [e["step"] for e in evaluations] == [e["g_steps"] for e in result.evals] == [2, 4, 6]
    for record, evaluation in zip(evaluations, result.evals, strict=True):
        assert {k: v for k, v in record["metrics"].items() if k != "imgs_per_s"} == logged_values(evaluation)
        check_throughput(evaluation, record["metrics"]["imgs_per_s"])
    assert image == {"image": "samples", "path": result.artifacts["samples"], "step": 6}
    assert end == {"status": DONE}


def test_tensorboard_holds_every_evaluation_the_spec_and_the_sample_grid(logged):
    pytest.importorskip("tensorboard", reason="pip install 'ganzoo[tensorboard]' to test --log tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    result, folder, _ = logged
    # Offline, one folder per run under the results folder.
    events = EventAccumulator(str(folder / "tensorboard" / SPEC.run_id),
                              size_guidance={"scalars": 0, "images": 0}).Reload()
    for name in logged_values(result.evals[0]):
        scalars = events.Scalars(name)
        assert [s.step for s in scalars] == [e["g_steps"] for e in result.evals]
        # Event files keep float32.
        assert [s.value for s in scalars] == pytest.approx([logged_values(e)[name] for e in result.evals], rel=1e-6)
    for evaluation, speed in zip(result.evals, events.Scalars("imgs_per_s"), strict=True):
        check_throughput(evaluation, speed.value)
    hparams = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info.hparams
    assert hparams["generator"].string_value == SPEC.generator.name and hparams["loss"].string_value == SPEC.loss.name
    assert hparams["dataset"].string_value == SPEC.dataset.name and hparams["stack"].string_value == SPEC.stack_name
    assert hparams["seed"].number_value == SPEC.seed and hparams["budget.g_steps"].number_value == 6
    assert hparams["discriminator.width"].number_value == SPEC.discriminator.hparams["width"]
    end = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_end_info"]).session_end_info
    assert end.status == 1  # STATUS_SUCCESS: the run is done
    (image,) = events.Images("samples")
    pixels = Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB")
    assert image.step == 6 and pixels.tobytes() == Image.open(result.artifacts["samples"]).convert("RGB").tobytes()


def test_mlflow_holds_every_evaluation_the_spec_and_the_sample_grid(logged, tmp_path):
    pytest.importorskip("mlflow", reason="pip install 'ganzoo[mlflow]' to test --log mlflow")
    from mlflow.tracking import MlflowClient

    result, folder, _ = logged
    # The SQLite store in the results folder, an experiment named after the suite.
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.tags["ganzoo_run_id"] == SPEC.run_id
    for name in logged_values(result.evals[0]):
        history = sorted(client.get_metric_history(mlflow_run.info.run_id, name), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(e["g_steps"], logged_values(e)[name]) for e in result.evals]
    speed = sorted(client.get_metric_history(mlflow_run.info.run_id, "imgs_per_s"), key=lambda m: m.step)
    for evaluation, metric in zip(result.evals, speed, strict=True):
        check_throughput(evaluation, metric.value)
    params = mlflow_run.data.params
    assert (params["generator"], params["discriminator"], params["seed"]) == (SPEC.generator.name,
                                                                            SPEC.discriminator.name, str(SPEC.seed))
    assert params["dataset.n"] == str(SPEC.dataset.hparams["n"]) and params["eval.n_fake"] == "32"
    downloaded = client.download_artifacts(mlflow_run.info.run_id, "samples/samples.png", str(tmp_path))
    assert Path(downloaded).read_bytes() == Path(result.artifacts["samples"]).read_bytes()
    assert (folder / "mlflow-artifacts").is_dir()  # beside the store, not in the working directory

    # The same run, resumed in another process, goes on in the same MLflow run.
    from ganzoo_plugins.trackers.mlflow_tracker import MlflowTracker

    store = f"sqlite:///{folder / 'mlflow.db'}"
    resumed = MlflowTracker(ganzoo.TrackedRun(SPEC.run_id, "resumed", "tiny", folder), store)
    assert resumed.run_id == mlflow_run.info.run_id
    assert client.get_run(resumed.run_id).info.status == "RUNNING"


def test_settings_travel_to_worker_processes_as_plain_values(registry, tmp_path):
    settings = (TrackerSettings("tensorboard", str(tmp_path), "tiny", str(tmp_path / "tb")),)
    options = RunOptions(keep_checkpoints=True, trackers=settings)
    assert pickle.loads(pickle.dumps(options)) == options
    executor = ProcessExecutor("cpu", jobs=2, options=options)
    assert executor.options.trackers == settings and executor.options.keep_checkpoints


def test_log_refuses_an_unknown_tracker_and_a_missing_library_before_anything_trains(tmp_path, monkeypatch):
    args = ["train", "--dataset", "blobs", "--generator", "mlp", "--discriminator", "mlp", "--results-dir",
            str(tmp_path)]
    unknown = CliRunner().invoke(main, [*args, "--log", "tensorbaord"])
    assert unknown.exit_code == 2 and 'Unknown tracker "tensorbaord". Did you mean "tensorboard"?' in unknown.output
    monkeypatch.setattr(tracking, "_importable", lambda module: module != "mlflow")
    missing = CliRunner().invoke(main, [*args, "--log", "tensorboard", "--log", "mlflow"])
    assert missing.exit_code == 2
    assert "--log mlflow needs mlflow, which is not installed: pip install 'ganzoo[mlflow]'" in missing.output
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_tracker_whose_destination_cannot_be_made_is_left_out_of_the_sweep_with_a_warning(registry, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    said = []
    settings = prepare_trackers([("tensorboard", str(blocker / "tb")), ("acme_jsonl", None)], tmp_path, "tiny",
                                registry, said.append)
    assert [s.name for s in settings] == ["acme_jsonl"]
    assert len(said) == 1 and said[0].startswith('warning: tracker "tensorboard" failed while preparing')
    assert "is writable" in said[0]


def test_a_bad_or_clashing_tracker_registration_is_that_plugins_error_and_its_other_trackers_stay():
    class Careless:
        @ganzoo.hookimpl
        def register_trackers(self, register):
            register("tensorboard", Failing, description="Takes the built-in name")
            register("Bad Name", Failing, description="Not a name --log can take")
            register("silent", Failing, description="")
            register("careful", Failing, description="Registers despite its siblings")

    registry = ganzoo.build_registry({"careless": Careless()})
    errors = sorted(error.error for error in registry.errors if error.plugin == "careless")
    assert len(errors) == 3
    assert errors[0].startswith('Invalid tracker name "Bad Name"')
    assert errors[1] == ('tracker "silent": description must be one non-empty line')
    assert errors[2].startswith('tracker "tensorboard" is already registered by plugin "trackers" (ganzoo)')
    assert registry.tracker("tensorboard").factory is not Failing  # the built-in one kept its name
    assert registry.tracker("careful").factory is Failing
