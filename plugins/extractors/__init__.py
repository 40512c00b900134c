"""Built-in feature extractors: the TF-ported Inception-v3 and the embedded classifiers of the offline datasets."""

from ganzoo import hookimpl

from . import digits, identity, inception, mnist5k


@hookimpl
def register_feature_extractors(register):
    inception.register_all(register)
    digits.register_all(register)
    mnist5k.register_all(register)
    identity.register_all(register)
