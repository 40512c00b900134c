"""Where committed numbers are promised bit for bit: each results folder's machine.json, and CI's pinned torch."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from ganzoo.system import cpu

ROOT = Path(__file__).parents[1]
RECORDED = sorted(path.parent for path in (ROOT / "results").glob(f"*/{cpu.MACHINE_FILE}"))


def test_the_default_and_its_replicate_record_their_machine():
    assert {ROOT / "results" / "default", ROOT / "results" / "default-replicate"} <= set(RECORDED)


@pytest.mark.parametrize("folder", RECORDED, ids=lambda p: p.name)
def test_a_folders_machine_is_the_one_its_runs_record(folder):
    """machine.json says what every run's own device record says (describe_cpu's format), and a torch version."""
    machine = json.loads((folder / cpu.MACHINE_FILE).read_text())
    assert set(cpu.MACHINE_KEYS) <= set(machine) and re.fullmatch(r"\d+\.\d+\.\d+\S*", machine["torch"])
    devices = set(pd.read_csv(folder / "runs.csv")["device"])
    assert devices == {f"cpu (1 thread; {machine['cpu_model']}, {machine['isa']}; {machine['kernels']})"}


def test_ci_installs_the_torch_that_computed_the_committed_default():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / ".ci" / "constraints.txt").read_text(), re.M))
    machine = json.loads((ROOT / "results" / "default" / cpu.MACHINE_FILE).read_text())
    assert pins["torch"] == machine["torch"]
    assert "PIP_CONSTRAINT" in (ROOT / ".ci" / "run").read_text()


def test_only_another_cpu_model_instruction_set_kernel_setting_or_torch_rules_out_bit_for_bit():
    here = cpu.this_machine()
    assert cpu.bit_for_bit_mismatch(here) is None
    # numpy/scipy's float64 BLAS is not pinned: an AVX2-only EPYC gave digits FIDs off in their last bits
    assert "isa: " in cpu.bit_for_bit_mismatch({**here, "isa": "something else"})
    intel = cpu.bit_for_bit_mismatch({**here, "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"})
    assert intel == f"cpu_model: {here['cpu_model']!r} here, 'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz' there"
    assert "torch: " in cpu.bit_for_bit_mismatch({**here, "torch": "0.0.1"})
    assert "kernels: " in cpu.bit_for_bit_mismatch({**here, "kernels": "libraries' choice"})
