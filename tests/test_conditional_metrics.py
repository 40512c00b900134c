"""cond_accuracy and intra_fid: checked against computations written out here, and on constructed generators
whose answers are known (one that ignores its label, one that returns real digits of its class)."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganzoo import EvalProtocol, Features
from ganzoo.api.conditional import evaluation_labels
from ganzoo.core.registry import get_registry
from ganzoo.metrics.conditional import cond_accuracy, intra_fid
from ganzoo.metrics.evaluate import Evaluator, compute_metrics
from ganzoo.metrics.fid import feature_statistics
from ganzoo.metrics.reference import ReferenceSet
from ganzoo.run.evaluate import evaluate_samples


def _reference(features, labels, num_classes, logits=None):
    return ReferenceSet(features, logits, *feature_statistics(features), key={}, labels=labels,
                        num_classes=num_classes)


def _fid_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of two samples, as Heusel et al. define it, with numpy and scipy's sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_intra_fid_is_the_mean_of_the_per_class_fids():
    gen = torch.Generator().manual_seed(0)
    k, d = 3, 4
    real_labels = torch.arange(300) % k
    fake_labels = torch.arange(240) % k
    # Each class its own mean and scale, the fake side shifted by a different amount per class.
    real = torch.randn(300, d, generator=gen, dtype=torch.float64) * (1 + real_labels[:, None]) + real_labels[:, None]
    fake = torch.randn(240, d, generator=gen, dtype=torch.float64) * 1.5 + 2.0 * fake_labels[:, None]
    by_hand = np.mean([_fid_by_hand(real[real_labels == c].numpy(), fake[fake_labels == c].numpy())
                       for c in range(k)])
    value = intra_fid(_reference(real, real_labels, k), Features(fake, labels=fake_labels), EvalProtocol())
    assert value == pytest.approx(by_hand, rel=1e-6)
    # ... and not the FID of the pooled samples, which the class means would inflate or hide.
    assert value != pytest.approx(_fid_by_hand(real.numpy(), fake.numpy()), rel=1e-2)


def test_intra_fid_is_nan_when_a_class_has_no_covariance():
    real, labels = torch.randn(20, 2, dtype=torch.float64), torch.tensor([0] * 19 + [1])
    fake = Features(torch.randn(20, 2, dtype=torch.float64), labels=torch.arange(20) % 2)
    assert math.isnan(intra_fid(_reference(real, labels, 2), fake, EvalProtocol()))


def test_cond_accuracy_counts_the_argmax_that_matches_the_label():
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 0, 3, 2, 3]), 4).float()  # 6 of 8 right
    real = _reference(torch.randn(8, 2), labels, 4)
    assert cond_accuracy(real, Features(torch.randn(8, 2), logits, labels), EvalProtocol()) == pytest.approx(0.75)
    # An extractor with other classes than the data's (Inception's 1,008 on CIFAR-10) gives no accuracy.
    other = Features(torch.randn(8, 2), torch.randn(8, 7), labels)
    assert math.isnan(cond_accuracy(real, other, EvalProtocol()))


def test_the_conditional_metrics_need_labels_on_both_sides_and_no_eval_metrics_entry():
    registry = get_registry()
    real = _reference(torch.randn(40, 2), torch.arange(40) % 2, 2, logits=None)
    protocol = EvalProtocol(metrics=("fid",))
    fake = Features(torch.randn(40, 2), torch.randn(40, 2))
    assert set(compute_metrics(real, fake, protocol, registry)) == {"fid"}  # an unconditional G: none
    labelled = Features(fake.features, fake.logits, torch.arange(40) % 2)
    assert set(compute_metrics(real, labelled, protocol, registry)) == {"fid", "cond_accuracy", "intra_fid"}


# -- on digits, through the Evaluator ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    dataset = get_registry().get("dataset", "digits").build()
    evaluator = Evaluator(dataset, EvalProtocol(n_fake=1000, n_real=1797, metrics=("fid",)), "cpu")
    return dataset, evaluator


def _stream(pick):
    """A sample function that hands ``pick(positions)`` for the stream's next ``n`` positions."""
    drawn = 0

    def sample(n):
        nonlocal drawn
        out = pick(torch.arange(drawn, drawn + n))
        drawn += n
        return out

    return sample


def test_a_generator_that_ignores_its_label_scores_chance(digits):
    dataset, evaluator = digits
    gen = torch.Generator().manual_seed(0)
    order = torch.randint(len(dataset), (1000,), generator=gen)  # real digits, whatever the label asks for
    metrics = evaluate_samples(_stream(lambda i: dataset.data[order[i]]), evaluator, dataset,
                               evaluation_labels(1000, 10))
    assert metrics["cond_accuracy"] == pytest.approx(0.1, abs=0.035)  # 1/K; sd of the share ~0.01


def test_real_digits_of_their_class_score_the_classifiers_accuracy_on_them(digits):
    dataset, evaluator = digits
    by_class = [torch.nonzero(dataset.labels == c).squeeze(1) for c in range(10)]
    labels = evaluation_labels(1000, 10)
    # Position i shows the (i // 10)-th digit of class i mod 10: a "generator" that draws its class perfectly.
    chosen = torch.stack([by_class[int(c)][i // 10 % len(by_class[int(c)])] for i, c in enumerate(labels)])
    perfect = evaluate_samples(_stream(lambda i: dataset.data[chosen[i]]), evaluator, dataset, labels)
    predicted = evaluator.extractor(dataset.data[chosen]).logits.argmax(1)
    assert perfect["cond_accuracy"] == pytest.approx(float((predicted == labels).double().mean()))
    assert perfect["cond_accuracy"] > 0.95  # the embedded classifier's accuracy on digits it mostly trained on

    gen = torch.Generator().manual_seed(1)
    order = torch.randint(len(dataset), (1000,), generator=gen)
    ignoring = evaluate_samples(_stream(lambda i: dataset.data[order[i]]), evaluator, dataset, labels)
    # Each class's samples are all digits for the label-ignoring one: far from that class's reference digits.
    assert perfect["intra_fid"] < ignoring["intra_fid"] / 4
    assert perfect["fid"] == pytest.approx(ignoring["fid"], rel=0.5)  # FID alone cannot tell them apart


# -- the real-data row of a conditional grid -----------------------------------------------------------------


def _real_data_row(conditional_digits_grid_filter, tmp_path):
    """The real-data row ``record_real_data`` stores for conditional-digits' seed-0 grid, filtered; and the grid."""
    from ganzoo.core.store import Store
    from ganzoo.run.grid import build_grid
    from ganzoo.run.suite import load_suite
    from ganzoo.sweep.real_data import record_real_data

    registry = get_registry()
    grid = build_grid(load_suite("conditional-digits"), registry, seeds=[0])
    grid.specs = [spec for spec in grid.specs if conditional_digits_grid_filter(spec)]
    store = Store(tmp_path)
    try:
        record_real_data(grid, store, "conditional-digits", registry, "cpu", echo=pytest.fail)
        (row,) = store.references("conditional-digits").values()
    finally:
        store.close()
    return row.metrics, grid


def test_the_real_data_row_of_a_conditional_grid_scores_real_digits_drawn_for_their_labels(tmp_path):
    from ganzoo.sweep.real_data import real_data_metrics

    registry = get_registry()
    labelled, grid = _real_data_row(lambda spec: True, tmp_path)
    spec = next(spec for spec in grid.specs if spec.generator.name == "cond_dcgan")
    plain, _, _ = real_data_metrics(spec, registry, torch.device("cpu"))
    assert "cond_accuracy" not in plain and {k: labelled[k] for k in plain} == plain  # labels add, change nothing

    # Independently: real digits drawn for their labels score the classifier's accuracy on the digits, and their
    # intra-FID is small next to that of digits whose labels say nothing (a label-ignoring "generator").
    dataset = registry.get("dataset", "digits").build()
    evaluator = Evaluator(dataset, spec.protocol, "cpu")
    predicted = evaluator.extractor(dataset.data).logits.argmax(1)
    accuracy = float((predicted == dataset.labels).double().mean())
    assert labelled["cond_accuracy"] == pytest.approx(accuracy, abs=0.02)  # 1,000 draws, 100 per class
    gen = torch.Generator().manual_seed(3)
    order = torch.randint(len(dataset), (spec.protocol.n_fake,), generator=gen)
    ignoring = evaluate_samples(_stream(lambda i: dataset.data[order[i]]), evaluator, dataset,
                                evaluation_labels(spec.protocol.n_fake, 10))
    assert labelled["intra_fid"] < ignoring["intra_fid"] / 4


def test_the_real_data_row_of_an_unconditional_grid_has_no_conditional_metrics(tmp_path):
    metrics, _ = _real_data_row(lambda spec: spec.generator.name == "dcgan", tmp_path)
    assert "fid" in metrics and "cond_accuracy" not in metrics and "intra_fid" not in metrics
