"""The hooks a ganzoo plugin can implement: one ``register_<kind>s(register)`` per component kind, and metrics.

Each hook receives a ``register`` callback owned by the core; plugins never touch core state.
See docs/plugins.md ("Hooks") for the signature of ``register`` and a worked example.
"""

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def register_generators(register):
    """Register generator factories: ``register(name, factory, ...)``; factory(data_spec, **hparams) -> nn.Module."""


@hookspec
def register_discriminators(register):
    """Register discriminator factories: factory(data_spec, **hparams) -> nn.Module giving one logit per sample."""


@hookspec
def register_losses(register):
    """Register adversarial losses: factory(**hparams) -> ganzoo.Loss."""


@hookspec
def register_stabilizers(register):
    """Register stabilizers (penalties, augmentation, normalisation, EMA, ...).

    factory(**hparams) -> ganzoo.Stabilizer.
    """


@hookspec
def register_datasets(register):
    """Register datasets: factory(**hparams) -> ganzoo.Dataset (the harness calls .to(device))."""


@hookspec
def register_feature_extractors(register):
    """Register feature extractors for metrics: factory(**hparams) -> ganzoo.FeatureExtractor."""


@hookspec
def register_metrics(register):
    """Register metrics evaluations can compute: ``register(name, compute, *, lower_is_better, description, ...)``.

    compute(real, fake, protocol) -> float | dict[str, float], with ``real`` the protocol's
    ``ganzoo.metrics.ReferenceSet``, ``fake`` the generated ``ganzoo.Features``; see ``ganzoo.api.components.Metric``.
    The built-in FID, IS, KID, precision/recall and density/coverage register through this hook too.
    """


@hookspec
def register_trackers(register):
    """Register experiment trackers for ``--log NAME``: ``register(name, factory, *, description, modules=(),
    install="", prepare=None)``; factory(run, target) -> ganzoo.Tracker, built in the process that trains the run.

    See ``ganzoo.api.trackers``. The built-in TensorBoard and MLflow trackers register through this hook too.
    """
