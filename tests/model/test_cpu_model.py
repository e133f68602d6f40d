"""model.device.cpu_model: the CPU named with its family and model numbers, as every
card, table, log and benchmark records it (a VM's "AMD EPYC" alone says no generation)."""

from __future__ import annotations

from pathlib import Path

from xraydesk.model.device import cpu_model

AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu avx2 avx512f avx512_bf16

processor\t: 1
cpu family\t: 6
model\t\t: 207
model name\t: Something Else
"""


def test_the_first_processor_is_named_with_family_and_model(tmp_path: Path):
    info = tmp_path / "cpuinfo"
    info.write_text(AMD)
    assert cpu_model(info) == "AMD EPYC (family 25 model 17)"


def test_without_the_numbers_or_the_file_it_still_names_something(tmp_path: Path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Apple M2\n")  # an ARM-style block
    assert cpu_model(info) == "Apple M2"
    assert cpu_model(tmp_path / "missing")  # platform's name: never empty


def test_this_machine_is_named():
    name = cpu_model()
    assert name
    info = Path("/proc/cpuinfo")
    if info.is_file() and "cpu family" in info.read_text():
        assert "(family " in name and " model " in name, name
