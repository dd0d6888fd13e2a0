"""verify's deployment data: feeds in every form a deployer has, feeds and goldens saved for the NPU,
per-output tolerances in Polygraphy's syntax.  Real ONNX Runtime runs on the hand-built pairs."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from test_verify import pair
from test_verify_graphs import HEAD_DIM, HEADS, VOCAB

from rope_onnx.cli.app import main
from rope_onnx.errors import InputError
from rope_onnx.verify import VerifyOptions, verify_models
from rope_onnx.verify.feedio import file_stem, read_arrays, save_arrays
from rope_onnx.verify.tolerances import parse_tolerance_options

INPUTS = ("input_ids", "attention_mask", "position_ids", "past_key")
OUTPUTS = ("logits", "present_key")


def feeds(ids_dtype=np.int64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "input_ids": rng.integers(0, VOCAB, (1, 4)).astype(ids_dtype),
        "attention_mask": np.ones((1, 6), np.int64),
        "position_ids": np.arange(2, 6)[None],
        "past_key": rng.standard_normal((1, HEADS, 2, HEAD_DIM)).astype(np.float32),
    }


def rows(result) -> list[tuple[str, bool, float]]:
    return [(r.name, r.passed, r.max_abs) for r in result.results]


@pytest.mark.parametrize("corrupt", ["", "swap"])
def test_saved_feeds_read_back_to_the_same_verdict(tmp_path, capsys, corrupt):
    original, fused = pair(tmp_path, corrupt=corrupt)
    d1, d2 = tmp_path / "D1", tmp_path / "D2"
    code = main(["verify", original, fused, "--save-inputs", str(d1), "--save-outputs", str(d2), "--bin"])
    first = capsys.readouterr().out
    assert code == (1 if corrupt else 0), first
    assert sorted(p.name for p in d1.glob("*.npy")) == sorted(f"{n}.npy" for n in INPUTS)
    assert sorted(p.name for p in d2.glob("*.npy")) == sorted(f"{n}.npy" for n in OUTPUTS)  # no sites
    for folder in (d1, d2):
        for npy in folder.glob("*.npy"):  # the raw .bin is the array's C-order bytes (ais_bench --input)
            assert npy.with_suffix(".bin").read_bytes() == np.load(npy).tobytes()
    manifest = json.loads((d1 / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tensors"]] == list(INPUTS)  # the model's input order
    again = verify_models(original, fused, VerifyOptions(inputs=d1))
    generated = verify_models(original, fused, VerifyOptions())
    assert again.passed == generated.passed == (not corrupt)
    assert rows(again) == rows(generated)
    golden = np.load(d2 / "logits.npy")
    assert golden.shape[-1] == VOCAB and np.isfinite(golden).all()


def test_npz_folder_and_polygraphy_json_give_one_result(tmp_path, monkeypatch):
    original, fused = pair(tmp_path)
    data = feeds()
    npz = tmp_path / "feeds.npz"
    np.savez(npz, **data)
    folder = tmp_path / "npy"
    folder.mkdir()
    for name, array in data.items():
        np.save(folder / f"{name}.npy", array)
    results = [verify_models(original, fused, VerifyOptions(inputs=p)) for p in (npz, folder)]
    monkeypatch.setitem(sys.modules, "torch", None)  # Polygraphy would import torch (10 s) for NumPy arrays
    json_mod = pytest.importorskip("polygraphy.json")
    saved = tmp_path / "inputs.json"
    json_mod.save_json([data, data], str(saved))  # what `polygraphy run --save-inputs` writes
    from_json = verify_models(original, fused, VerifyOptions(inputs=saved))
    assert any("2 iterations" in n and "first" in n for n in from_json.notes)
    results.append(from_json)
    assert all(r.passed for r in results)
    assert rows(results[0]) == rows(results[1]) == rows(results[2])


def test_int32_ids_are_cast_with_a_note_and_values_that_do_not_fit_are_refused(tmp_path, capsys):
    original, fused = pair(tmp_path)
    npz = tmp_path / "ids32.npz"
    np.savez(npz, **feeds(np.int32))
    result = verify_models(original, fused, VerifyOptions(inputs=npz))
    assert result.passed
    assert any("'input_ids' cast from int32 to int64" in n for n in result.notes)
    folder = tmp_path / "f"
    folder.mkdir()
    for name, array in feeds().items():
        np.save(folder / f"{name}.npy", array.astype(np.float64) if name == "past_key" else array)
    assert main(["verify", original, fused, "--inputs", str(folder)]) == 2  # float64 is not cast
    assert "past_key" in capsys.readouterr().err


def test_per_output_tolerances_in_polygraphy_syntax(tmp_path, capsys):
    original, fused = pair(tmp_path, corrupt="swap")
    loose = verify_models(original, fused, VerifyOptions(atol={"logits": 100.0, "": 1e-4}, rtol=0.0))
    by_name = {r.name: r for r in loose.results}
    assert by_name["logits"].atol == 100.0 and by_name["logits"].passed
    assert by_name["present_key"].atol == 1e-4 and not by_name["present_key"].passed
    code = main(["verify", original, fused, "--atol", "logits:100", "--atol", "1e-4", "--rtol", "0"])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED" in out
    assert parse_tolerance_options(["logits:1e-2", "1e-4", "a:b:0.5"], "atol") == {
        "logits": 1e-2,
        "": 1e-4,
        "a:b": 0.5,
    }
    for bad in (["--atol", "logitz:1"], ["--atol", "logits:x"], ["--rtol", ":1"], ["--atol", "logits:-1"]):
        assert main(["verify", original, fused, *bad]) == 2, bad
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
    with pytest.raises(InputError, match="logitz"):
        verify_models(original, fused, VerifyOptions(atol={"logitz": 1.0}))


def test_saving_refuses_what_it_cannot_do(tmp_path, capsys):
    original, fused = pair(tmp_path)
    assert main(["verify", original, fused, "--sites", "--save-inputs", str(tmp_path / "d")]) == 2
    assert "--save-inputs" in capsys.readouterr().err
    assert main(["verify", original, fused, "--bin"]) == 2
    assert "--bin" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["verify", original, fused, "--save-outputs", str(blocker)]) == 2
    assert not (tmp_path / "d").exists()


def test_file_names_of_unsafe_tensor_names_round_trip(tmp_path):
    arrays = {"/model/x:0": np.arange(3, dtype=np.float16), "ids": np.zeros((1, 2), np.int64)}
    save_arrays(tmp_path, arrays, raw=True)
    assert file_stem("/model/x:0") == "_model_x_0"
    back, _ = read_arrays(tmp_path, list(arrays))
    assert set(back) == set(arrays)
    assert all(np.array_equal(back[n], arrays[n]) and back[n].dtype == arrays[n].dtype for n in arrays)
    with pytest.raises(InputError, match="both be saved"):
        save_arrays(tmp_path / "clash", {"a/b": np.zeros(1), "a:b": np.zeros(1)})
    (tmp_path / "bad.json").write_text('[{"x": {"tensor": "AA==", "polygraphy_class": "Tensor"}}]')
    with pytest.raises(InputError, match=r"not an ndarray|Polygraphy"):
        read_arrays(tmp_path / "bad.json", ["x"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no <name>\.npy"):
        read_arrays(empty, [])
