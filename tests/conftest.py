"""Test isolation: only ganzoo's own plugins load, nothing is downloaded, caches go to a temp folder."""

import os

import pytest
import torch

# Set before any test imports the registry, so a developer's installed plugins cannot leak in.
os.environ["GANZOO_PLUGINS"] = "ganzoo"
os.environ["GANZOO_OFFLINE"] = "1"
# The test models are tiny: one thread is as fast as two and immune to oversubscription when other
# processes share the cores (two threads each on a busy 2-core machine slowed the suite tenfold).
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    previous = os.environ.get("GANZOO_CACHE")
    os.environ["GANZOO_CACHE"] = str(tmp_path_factory.mktemp("ganzoo-cache"))
    yield
    if previous is None:
        os.environ.pop("GANZOO_CACHE", None)
    else:
        os.environ["GANZOO_CACHE"] = previous
