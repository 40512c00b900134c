"""One evaluation path: a run's saved samples and the report's pictures are the samples its evaluations measured."""

from dataclasses import replace
from pathlib import Path

import testzoo
import torch

from ganzoo.report.samples import final_samples
from ganzoo.run import artifacts, evaluate, train
from ganzoo.testing import plugin_registry


def test_the_saved_and_reported_samples_are_the_ones_the_last_evaluation_measured(tmp_path, monkeypatch):
    """Same latents, same batches, same first samples: batches of 5 latents are not the first rows of one draw of
    2,000 (torch draws short and long normals differently), so a copy that drew its own way would fail here."""
    measured: list[list[torch.Tensor]] = []  # the generated batches of each evaluation, as the evaluator got them
    saved: list[torch.Tensor] = []

    def recording(sample, evaluator, dataset, labels=None):
        batches = measured.append([]) or measured[-1]
        return evaluate_samples(lambda n: batches.append(sample(n)) or batches[-1], evaluator, dataset, labels)

    evaluate_samples, save_samples = evaluate.evaluate_samples, artifacts.save_samples
    monkeypatch.setattr(evaluate, "evaluate_samples", recording)
    monkeypatch.setattr(artifacts, "save_samples", lambda x, *args: saved.append(x) or save_samples(x, *args))
    with plugin_registry({"testzoo": testzoo}, load_entry_points=False) as registry:
        spec = testzoo.tiny_spec(g_steps=4, eval_every_g_steps=2)
        spec = replace(spec, protocol=replace(spec.protocol, batch_size=5))
        result = train.train(spec, tmp_path, torch.device("cpu"), registry)
        reported, reported_spec = final_samples(Path(result.artifacts["checkpoint"]), registry)
    assert len(measured) == len(result.evals) == 2 and [len(b) for b in measured[-1]] == [5] * 6 + [2]
    last = torch.cat(measured[-1])
    assert not torch.equal(torch.cat(measured[0]), last)  # G moved between the evaluations: a real check
    assert reported_spec == spec and torch.equal(reported, last)  # the report's picture: the final metrics' samples
    (picture,) = saved
    assert len(picture) == 2000 and torch.equal(picture[: len(last)], last)  # the run's own picture starts with them
