"""Running a model on ONNX Runtime's CPU provider, weights read by ONNX Runtime from disk.

The graph stays in memory (the verify copies are never written); external weights are read by
ONNX Runtime from the model's folder through the ``model_external_initializers_file_folder_path``
session option, so a full run never copies them into a protobuf (which could not hold more than
2 GiB anyway).  bfloat16 models are the exception: ONNX Runtime's CPU provider has no bfloat16
arithmetic (measured: MatMul, Add, Mul … all fail to load), so they run as float32 copies, which
means reading and converting their weights here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor

from rope_onnx.errors import InputError, RopeOnnxError
from rope_onnx.graph.conventions import subgraphs
from rope_onnx.io.load import PROTOBUF_LIMIT
from rope_onnx.op.decomposition import runnable_copy

_FOLDER_OPTION = "session.model_external_initializers_file_folder_path"


def has_bfloat16(model: ModelProto) -> bool:
    graph = model.graph
    values = (*graph.input, *graph.output, *graph.value_info)
    return (
        any(v.type.tensor_type.elem_type == TensorProto.BFLOAT16 for v in values)
        or any(t.data_type == TensorProto.BFLOAT16 for t in graph.initializer)
        or any(_casts_to_bfloat16(n) for n in graph.node)
    )


def _casts_to_bfloat16(node: onnx.NodeProto) -> bool:
    return node.op_type == "Cast" and any(
        a.name == "to" and a.i == TensorProto.BFLOAT16 for a in node.attribute
    )


def _upcast_tensor(tensor: TensorProto) -> None:
    if tensor.data_type != TensorProto.BFLOAT16:
        return
    array = numpy_helper.to_array(tensor).astype(np.float32)
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))


def _upcast_graph(graph: onnx.GraphProto) -> None:
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.BFLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    for tensor in graph.initializer:
        _upcast_tensor(tensor)
    _upcast_nodes(graph.node)


def _upcast_nodes(nodes: Iterable[onnx.NodeProto]) -> None:
    for node in nodes:
        for attr in node.attribute:
            if attr.name == "to" and attr.type == onnx.AttributeProto.INT and attr.i == TensorProto.BFLOAT16:
                attr.i = TensorProto.FLOAT
            elif attr.type == onnx.AttributeProto.TENSOR:
                _upcast_tensor(attr.t)
        for sub in subgraphs(node):
            _upcast_graph(sub)


def upcast_bfloat16(model: ModelProto, folder: Path | None) -> None:
    """Turn every bfloat16 tensor, declaration and Cast target of ``model`` (in place) into float32.

    External weights are loaded first (from ``folder``): their bytes must be converted.
    """
    if any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer):
        if folder is None:
            raise InputError("a bfloat16 model with external weights needs its folder to be verified")
        onnx.load_external_data_for_model(model, str(folder))
    _upcast_graph(model.graph)
    for function in model.functions:
        _upcast_nodes(function.node)


#: External tensors smaller than this are read into the in-memory copy (shape constants, not weights).
SMALL_TENSOR_BYTES = 1 << 16


def _nbytes(tensor: TensorProto) -> int:
    size = int(np.prod(tensor.dims)) if tensor.dims else 1
    return size * np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize


def inline_small_external(model: ModelProto, folder: Path | None) -> None:
    """Read small external tensors (Reshape shapes, Unsqueeze axes …) into ``model``, in place.

    ONNX Runtime infers shapes from constant inputs before it resolves external data, and fails
    ("Cannot parse data from external tensors") when such a constant lives in a data file;
    saving with ``size_threshold=0`` puts them there.  Weights stay on disk.
    """
    if folder is None:
        return
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL and _nbytes(tensor) < SMALL_TENSOR_BYTES:
            try:
                load_external_data_for_tensor(tensor, str(folder))
            except OSError as exc:
                raise InputError(f"cannot read external data of '{tensor.name}' in {folder}: {exc}") from exc
            tensor.data_location = TensorProto.DEFAULT
            del tensor.external_data[:]


def runnable(model: ModelProto, folder: Path | None, upcast: bool) -> ModelProto:
    """A copy ONNX Runtime's CPU provider can run: bf16 upcast if asked, RoPECustomer served by
    the reference decomposition, small external constants read in."""
    copy = ModelProto()
    copy.CopyFrom(model)
    if upcast:
        upcast_bfloat16(copy, folder)
    inline_small_external(copy, folder)
    return runnable_copy(copy)


def with_outputs(model: ModelProto, names: list[str]) -> ModelProto:
    """A copy of ``model`` that also returns the intermediate tensors ``names``."""
    copy = ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    for name in names:
        if name not in present:
            copy.graph.output.append(helper.make_empty_tensor_value_info(name))
            present.add(name)
    return copy


def run(
    model: ModelProto,
    feeds: dict[str, np.ndarray],
    folder: Path | None,
    outputs: list[str],
    what: str,
    failure: type[RopeOnnxError] = InputError,
) -> dict[str, np.ndarray]:
    """Run ``model`` on the CPU provider and return ``outputs`` by name.

    Failures are raised as ``failure`` naming ``what``: InputError (exit 2) when the original
    or the feeds are unusable; the caller passes CheckFailed (exit 1) for the fused side, since a
    fused model that fails where its original runs is a failed check, not bad input.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors are raised, not logged
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if folder is not None:
        options.add_session_config_entry(_FOLDER_OPTION, str(folder.resolve()))
    if model.ByteSize() > PROTOBUF_LIMIT:
        raise InputError(
            f"{what} is over protobuf's 2 GiB limit once its bfloat16 weights are upcast in memory; "
            "verify it with --sites (needs no weights)"
        )
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        values = session.run(outputs, feeds)
    except Exception as exc:  # ORT raises its own exception types; keep the first line
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise failure(f"ONNX Runtime cannot run {what}: {message[:400]}") from exc
    return {name: np.asarray(value) for name, value in zip(outputs, values, strict=True)}
