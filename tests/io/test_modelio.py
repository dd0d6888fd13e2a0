"""Graph-only model I/O: external data stays on disk, is validated, and is shared by outputs.

Every test builds a small model whose weight ``w`` lives in an external data file, so the rules
for 140 GB models (never read a weight byte, never write a half-made folder) are checked in
milliseconds.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from rope_graphs import SiteSpec, build

from rope_onnx.errors import InputError
from rope_onnx.fusion.pipeline import fuse_file
from rope_onnx.io import datafiles, load, save
from rope_onnx.io.load import external_refs, load_model
from rope_onnx.io.save import save_model

WEIGHT = np.arange(32 * 32, dtype=np.float32).reshape(32, 32) / 7.0


def _rope_with_weight(folder: Path, location: str = "weights.bin") -> Path:
    """A one-site RoPE model plus ``z = x @ w`` with ``w`` (4 KiB) stored externally."""
    spec = SiteSpec(head_dim=32, rotary_dim=32)
    model = build(spec)
    model.graph.initializer.append(numpy_helper.from_array(WEIGHT, "w"))
    model.graph.node.append(helper.make_node("MatMul", ["x", "w"], ["z"], name="proj"))
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    path = folder / "model.onnx"
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path), save_as_external_data=True, location=location, size_threshold=1024)
    return path


def _weight_of(path: Path) -> np.ndarray:
    """``w`` as the model at ``path`` references it, read by hand.

    Not ``onnx.load``: onnx >= 1.21 refuses data files with several hard links, which is what a
    linked output is (ONNX Runtime and ATC read them; see rope_onnx.io.datafiles).
    """
    model = onnx.load(str(path), load_external_data=False)
    (ref,) = [r for r in external_refs(model) if r.tensor == "w"]
    raw = (path.parent / ref.location).read_bytes()[ref.offset : ref.offset + ref.length]
    return np.frombuffer(raw, dtype=np.float32).reshape(WEIGHT.shape)


def _set_location(path: Path, location: str) -> None:
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(path))


@pytest.fixture(name="src")
def src_fixture(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return _rope_with_weight(folder)


def test_load_leaves_weights_on_disk(src: Path) -> None:
    loaded = load_model(src)
    (w,) = [t for t in loaded.model.graph.initializer if t.name == "w"]
    assert w.data_location == TensorProto.EXTERNAL and not w.raw_data
    refs = [(r.tensor, r.location, r.length) for r in loaded.external]
    assert refs == [("w", "weights.bin", WEIGHT.nbytes)]


def test_output_in_same_folder_references_the_same_data(src: Path) -> None:
    before = sorted(p.name for p in src.parent.iterdir())
    result = fuse_file(src, src.parent / "fused.onnx")
    assert result.fused == 1
    assert sorted(p.name for p in src.parent.iterdir()) == sorted([*before, "fused.onnx"])
    fused = onnx.load(str(src.parent / "fused.onnx"), load_external_data=False)
    assert external_refs(fused) == load_model(src).external
    np.testing.assert_array_equal(_weight_of(src.parent / "fused.onnx"), WEIGHT)


def test_output_in_another_folder_hard_links_the_data_on_request(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    fuse_file(src, out_dir / "fused.onnx", link_data=True)
    data, original = out_dir / "weights.bin", src.parent / "weights.bin"
    assert data.samefile(original) and original.stat().st_nlink == 2
    np.testing.assert_array_equal(_weight_of(out_dir / "fused.onnx"), WEIGHT)
    fuse_file(src, out_dir / "again.onnx", link_data=True)  # the link already there: reused
    assert original.stat().st_nlink == 2


def test_data_in_a_subfolder_gets_its_folder(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    src = _rope_with_weight(tmp_path / "in", location="shards/part-0.bin")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    fuse_file(src, out_dir / "fused.onnx")
    copy = out_dir / "shards" / "part-0.bin"
    assert copy.read_bytes() == (src.parent / "shards" / "part-0.bin").read_bytes()
    assert copy.stat().st_nlink == 1
    np.testing.assert_array_equal(_weight_of(out_dir / "fused.onnx"), WEIGHT)


def _other_device_folder(path: Path) -> Path | None:
    """A writable folder on another file system than ``path`` (where hard links fail), if any."""
    for candidate in ("/dev/shm", tempfile.gettempdir()):
        usable = os.path.isdir(candidate) and os.access(candidate, os.W_OK)
        if usable and os.stat(candidate).st_dev != path.stat().st_dev:
            return Path(candidate)
    return None


def test_copy_across_file_systems_shows_progress(src: Path) -> None:
    other = _other_device_folder(src.parent)
    if other is None:
        pytest.skip("no second file system to copy across")
    with tempfile.TemporaryDirectory(dir=other) as out_dir:
        out = Path(out_dir) / "fused.onnx"
        progress = io.StringIO()
        save_model(load_model(src).model, out, load_model(src), progress=progress)
        copy = Path(out_dir) / "weights.bin"
        assert not copy.samefile(src.parent / "weights.bin") and copy.stat().st_nlink == 1
        np.testing.assert_array_equal(_weight_of(out), WEIGHT)
        assert "100%" in progress.getvalue() and "weights.bin" in progress.getvalue()
        assert sorted(p.name for p in Path(out_dir).iterdir()) == ["fused.onnx", "weights.bin"]


def _no_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args, **_kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(datafiles.os, "link", refuse)


def test_copy_fallback_when_links_are_impossible(src: Path, tmp_path: Path, monkeypatch) -> None:
    _no_links(monkeypatch)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    progress = io.StringIO()
    loaded = load_model(src)
    save_model(loaded.model, out_dir / "fused.onnx", loaded, share="link", progress=progress)
    assert not (out_dir / "weights.bin").samefile(src.parent / "weights.bin")
    np.testing.assert_array_equal(_weight_of(out_dir / "fused.onnx"), WEIGHT)
    assert progress.getvalue().rstrip().endswith("MiB/s") and "100%" in progress.getvalue()


def test_copy_on_request_gives_files_onnx_loads(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    loaded = load_model(src)
    shared = save_model(loaded.model, out_dir / "fused.onnx", loaded, share="copy", progress=io.StringIO())
    assert shared.copied == ["weights.bin"] and not shared.linked
    for model in (out_dir / "fused.onnx", src):  # no second hard link anywhere: onnx loads both
        weights = {t.name: t for t in onnx.load(str(model)).graph.initializer}
        np.testing.assert_array_equal(numpy_helper.to_array(weights["w"]), WEIGHT)


def test_interrupted_copy_leaves_nothing(src: Path, tmp_path: Path, monkeypatch) -> None:
    _no_links(monkeypatch)
    monkeypatch.setattr(datafiles, "COPY_CHUNK", 1024)

    def interrupt(self, done: int) -> None:
        if done:
            raise KeyboardInterrupt

    monkeypatch.setattr(datafiles._Progress, "update", interrupt)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    loaded = load_model(src)
    with pytest.raises(KeyboardInterrupt):
        save_model(loaded.model, out_dir / "fused.onnx", loaded)
    assert list(out_dir.iterdir()) == []


def test_failed_model_write_removes_shared_data_and_folders(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "in").mkdir()
    src = _rope_with_weight(tmp_path / "in", location="shards/part-0.bin")
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def disk_full(data: bytes, out: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(save, "write_bytes_atomically", disk_full)
    loaded = load_model(src)
    with pytest.raises(OSError):
        save_model(loaded.model, out_dir / "fused.onnx", loaded)
    assert list(out_dir.iterdir()) == []
    assert (src.parent / "shards" / "part-0.bin").stat().st_nlink == 1


def test_a_different_data_file_in_the_output_folder_is_refused(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "weights.bin").write_bytes(b"someone else's weights")
    with pytest.raises(InputError, match="different file"):
        fuse_file(src, out_dir / "fused.onnx")
    assert sorted(p.name for p in out_dir.iterdir()) == ["weights.bin"]


@pytest.mark.parametrize(
    ("location", "blocker"), [("weights.bin", "weights.bin"), ("shards/part-0.bin", "shards")]
)
def test_a_data_file_in_the_way_is_refused_before_the_fuse(
    location: str, blocker: str, tmp_path: Path, monkeypatch
) -> None:
    """The conflict is known from the paths alone: a run must not spend a whole fuse to report it."""
    from rope_onnx.fusion import pipeline

    (tmp_path / "in").mkdir()
    source = _rope_with_weight(tmp_path / "in", location)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / blocker).write_bytes(b"someone else's file")
    fused: list[str] = []
    monkeypatch.setattr(pipeline, "fuse_model", lambda *a, **k: fused.append("ran"))
    with pytest.raises(InputError, match=r"different file|needs a folder"):
        fuse_file(source, out_dir / "fused.onnx")
    assert fused == []
    assert sorted(p.name for p in out_dir.iterdir()) == [blocker]


@pytest.mark.parametrize("location", ["../weights.bin", "/etc/passwd", "sub/../../weights.bin"])
def test_references_outside_the_folder_are_refused(src: Path, location: str, cli) -> None:
    _set_location(src, location)
    with pytest.raises(InputError, match="outside the model's folder"):
        load_model(src, need_external_data=False)
    run = cli("fuse", str(src), "-o", str(src.parent / "fused.onnx"))
    assert run.returncode == 2
    assert "path traversal" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (src.parent / "fused.onnx").exists()


def test_symlink_escaping_the_folder_is_refused(src: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.bin"
    (src.parent / "weights.bin").rename(outside)
    (src.parent / "weights.bin").symlink_to(outside)
    with pytest.raises(InputError, match="resolves outside"):
        load_model(src)


def test_missing_data_is_refused_unless_only_the_graph_is_needed(src: Path, cli) -> None:
    (src.parent / "weights.bin").unlink()
    with pytest.raises(InputError, match="missing"):
        load_model(src)
    assert load_model(src, need_external_data=False).external[0].location == "weights.bin"
    run = cli("fuse", str(src), "-o", str(src.parent / "fused.onnx"))
    assert run.returncode == 2 and "weights.bin" in run.stderr and "missing" in run.stderr


def test_truncated_data_is_refused(src: Path) -> None:
    data = src.parent / "weights.bin"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(InputError, match="truncated"):
        load_model(src)


def test_files_over_the_protobuf_limit_are_refused_before_reading(src: Path, monkeypatch) -> None:
    monkeypatch.setattr(load, "PROTOBUF_LIMIT", 100)
    with pytest.raises(InputError, match="2 GiB") as refused:
        load_model(src)
    assert "external data" in str(refused.value)


def test_outputs_over_the_protobuf_limit_are_refused_and_nothing_written(src: Path, monkeypatch) -> None:
    loaded = load_model(src)
    monkeypatch.setattr(save, "PROTOBUF_LIMIT", 100)
    out = src.parent / "fused.onnx"
    with pytest.raises(InputError, match="2 GiB"):
        save_model(loaded.model, out, loaded)
    assert not out.exists()


def test_output_over_the_input_data_file_is_refused(src: Path) -> None:
    before = (src.parent / "weights.bin").read_bytes()
    with pytest.raises(InputError, match="destroy the weights"):
        fuse_file(src, src.parent / "weights.bin")
    assert (src.parent / "weights.bin").read_bytes() == before
