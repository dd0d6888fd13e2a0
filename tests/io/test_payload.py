"""The loader's count-based tensor check refuses exactly the small inline tensors ``to_array`` refuses,
with the same message (issue 17 replaced decoding every constant by counting its stored entries).

The oracle is the check as it was before: decode every inline tensor of at most ``_DECODE_LIMIT``
elements with ``numpy_helper.to_array`` and report its first line.  Tensors are random over every
element type ONNX has, with raw or typed storage of right and wrong sizes, segments and stray fields.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from rope_onnx.errors import InputError
from rope_onnx.io import payload, validate

PATH = Path("m.onnx")
TYPES = sorted(TensorProto.DataType.values())
FIELDS = {
    "float_data": st.floats(width=32, allow_nan=False),
    "int32_data": st.integers(-(2**31), 2**31 - 1),
    "int64_data": st.integers(-(2**63), 2**63 - 1),
    "double_data": st.floats(allow_nan=False),
    "uint64_data": st.integers(0, 2**64 - 1),
    "string_data": st.binary(max_size=3),
}


def _reference(tensor: TensorProto) -> str | None:
    """The message the decoding check gave for a small inline tensor (None: accepted)."""
    where = f"{PATH}: tensor '{tensor.name}'"
    try:
        helper.tensor_dtype_to_np_dtype(tensor.data_type)
    except KeyError:
        return f"{where} has unknown element type {tensor.data_type}; the file is corrupt"
    if any(d < 0 for d in tensor.dims):
        return f"{where} has a negative dimension {list(tensor.dims)}; the file is corrupt"
    try:
        numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{where} does not hold the data its shape declares ({first}); the file is corrupt"
    return None


def _verdict(tensor: TensorProto) -> str | None:
    try:
        validate._check_tensor(PATH, tensor)
    except InputError as exc:
        return str(exc)
    return None


#: Size errors, mostly none: the accepted tensors are the ones the count must get right.
OFF = st.sampled_from([0, 0, 0, 0, -1, 1, -2, 2])


@st.composite
def tensors(draw: st.DrawFn) -> TensorProto:
    data_type = draw(st.sampled_from([*TYPES, 99]))
    tensor = TensorProto(name="t", data_type=data_type)
    tensor.dims.extend(draw(st.lists(st.sampled_from([1, 2, 3, 4, 0, -1]), max_size=3)))
    count = math.prod(d for d in tensor.dims if d > 0)
    known = data_type in helper.get_all_tensor_dtypes() and data_type != TensorProto.UNDEFINED
    if draw(st.booleans()):  # raw storage: the right size, or near it
        itemsize = helper.tensor_dtype_to_np_dtype(data_type).itemsize if known else 1
        per = draw(st.sampled_from([itemsize, itemsize, 1, 2, 4, 8]))
        size = max(0, count * per + draw(OFF))
        tensor.raw_data = draw(st.binary(min_size=size, max_size=size))
    fields = sorted(FIELDS)
    own = [helper.tensor_dtype_to_field(data_type)] if known else []
    for field in draw(st.sets(st.sampled_from(own * 4 + fields), max_size=2)):  # typed storage
        length = max(0, count * draw(st.sampled_from([1, 1, 2])) + draw(OFF))
        getattr(tensor, field).extend(draw(st.lists(FIELDS[field], min_size=length, max_size=length)))
    if draw(st.sampled_from([False] * 19 + [True])):
        tensor.segment.begin, tensor.segment.end = 0, count
    return tensor


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensors())
def test_counting_refuses_exactly_what_decoding_refuses(tensor: TensorProto) -> None:
    assert _verdict(tensor) == _reference(tensor)


@pytest.mark.parametrize("data_type", sorted(payload._STORAGE))
@pytest.mark.parametrize("raw", [True, False])
def test_well_formed_ordinary_tensors_are_never_decoded(data_type: int, raw: bool, monkeypatch) -> None:
    dtype = helper.tensor_dtype_to_np_dtype(data_type)
    tensor = numpy_helper.from_array(np.zeros((2, 3), dtype=dtype), "t")
    if not raw:  # the same values in the typed field
        tensor = helper.make_tensor("t", data_type, [2, 3], np.zeros(6, dtype=dtype).tolist())
    assert tensor.HasField("raw_data") == raw
    decoded: list[TensorProto] = []
    monkeypatch.setattr(numpy_helper, "to_array", decoded.append)
    validate._check_tensor(PATH, tensor)
    assert decoded == []


def test_the_storage_table_is_onnx_own() -> None:
    for data_type, (field, _per) in payload._STORAGE.items():
        assert helper.tensor_dtype_to_field(data_type) == field


@pytest.mark.parametrize("name", ["INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2", "FLOAT6E2M3", "FLOAT6E3M2"])
def test_a_large_packed_weight_is_not_held_to_one_byte_per_element(name: str) -> None:
    """Over the decode limit only the raw size is checked, and for types packed several to a byte (or,
    for the 6-bit floats, four to three bytes) count × itemsize is not the size: such a weight passes."""
    count = 2 * validate._DECODE_LIMIT
    bits = 6 if "FLOAT6" in name else (2 if "INT2" in name else 4)
    raw = bytes(math.ceil(count * bits / 8))
    tensor = helper.make_tensor("w", getattr(TensorProto, name), [count], raw, raw=True)
    validate._check_tensor(PATH, tensor)
