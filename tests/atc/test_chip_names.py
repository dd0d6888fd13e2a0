"""Chip names as ATC spells them on every verb: ``atc`` takes exact chips only, ``kernel-sim`` takes exact
chips and a family only through the documented alias table."""

from __future__ import annotations

import numpy as np
import pytest

from rope_onnx.atc.soc import family_of
from rope_onnx.cli.app import main
from rope_onnx.errors import InputError
from rope_onnx.kernel.chips import ALIASES, CHIPS, SOCS, chip


def test_every_chip_is_named_as_atc_spells_it_and_belongs_to_its_family():
    assert set(SOCS) >= {"Ascend910B1", "Ascend910B2", "Ascend910B3", "Ascend910B4", "Ascend310P3"}
    for name, spec in SOCS.items():
        assert spec.soc_version == name and family_of(name) == spec.family
    assert chip("Ascend910B3").cores == 40 and chip("Ascend910B1").cores == 48  # platform ini figures
    for family, target in ALIASES.items():  # the alias table is the only way a family name is accepted
        assert chip(family) is SOCS[target] and CHIPS[family] is SOCS[target]
    for bad in ("Ascend910B", "ascend910", "Ascend910B9", "Ascend310P1"):
        with pytest.raises(InputError):
            chip(bad)


def test_atc_refuses_a_family(tmp_path, capsys):
    from test_atc_catalog import tiny_prefill

    model = tiny_prefill(tmp_path)
    assert (
        main(["atc", str(model), "--profile", "tiny-llama_ascend910b3", "--dry-run", "--soc", "ascend910b"])
        == 2
    )
    assert "chip family" in capsys.readouterr().err
    assert (
        main(["atc", str(model), "--profile", "tiny-llama_ascend910b3", "--dry-run", "--soc", "Ascend910B2"])
        == 0
    )


@pytest.mark.parametrize(
    ("soc", "chip_name"), [("Ascend910B3", "Ascend910B3"), ("ascend310p", "Ascend310P3")]
)
def test_kernel_sim_takes_an_exact_chip_or_an_alias(tmp_path, capsys, soc, chip_name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 16)).astype(np.float16)
    cos = rng.uniform(-1, 1, (4, 16)).astype(np.float16)
    sin = rng.uniform(-1, 1, (4, 16)).astype(np.float16)
    np.savez(tmp_path / "in.npz", x=x, cos=cos, sin=sin)
    args = ["kernel-sim", "--inputs", str(tmp_path / "in.npz"), "--output", str(tmp_path / "y.npz")]
    assert main([*args, "--soc", soc]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{chip_name}:")
    assert main([*args, "--soc", "Ascend910B"]) == 2
    assert "Ascend910B2" in capsys.readouterr().err  # the error lists the chips and aliases
