"""spectro doctor: what this machine offers and what train would choose on it."""

from __future__ import annotations

import json

import pytest
import torch

from spectro.cli.main import main
from spectro.utils.device import choose_precision, cpu_features


def test_doctor_prints_the_machine_and_trains_choices(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert {"cpu", "memory", "cuda", "mps", "train", "data", "versions", "platform"} <= set(lines)
    cpu = cpu_features()
    assert f"{cpu['usable_cores']} of {cpu['cores']} cores" in lines["cpu"]
    assert ("AMX" in lines["cpu"]) == cpu["amx"]
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        assert choose_precision("cpu").describe() in lines["train"]
    assert f"on {device}" in lines["train"] and "resident on" in lines["data"]
    assert f"torch {torch.__version__}" in lines["versions"]


def test_doctor_json_is_one_object(capsys):
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cpu"]["cores"] >= 1 and report["memory"]["total"] > 0
    assert isinstance(report["cuda"], list) and report["train"]["device"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_doctor_on_cuda_without_one_is_one_line(capsys):
    assert main(["doctor", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no CUDA device" in err
