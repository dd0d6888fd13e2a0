"""Whether a small inline tensor decodes, decided by counting its stored entries.

Loading checks that every small inline tensor decodes (``onnx.numpy_helper.to_array``), since
those are the constants the pass reads.  Decoding 6,000 of them (a 70B export) cost 0.05 s,
while for the ordinary element types ``to_array`` succeeds exactly when the one storage field it
reads holds ``count`` entries: ``raw_data`` when present (``count × itemsize`` bytes, read with
``np.frombuffer`` and reshaped), otherwise the typed field of ``helper.tensor_dtype_to_field``
(two entries per element for complex types).  :func:`decodes_by_count` answers True only then;
everything it cannot decide this way (strings, sub-byte packings, segments, a big-endian host, a
count that does not match) goes to ``to_array`` itself, so its verdict and its message stand.
"""

from __future__ import annotations

import sys

from onnx import TensorProto, helper

#: (typed storage field, entries per element) of each element type whose decoding is a plain
#: ``frombuffer``/``asarray`` + reshape in ``to_array``; other types are left to ``to_array``.
_STORAGE: dict[int, tuple[str, int]] = {
    TensorProto.FLOAT: ("float_data", 1),
    TensorProto.UINT8: ("int32_data", 1),
    TensorProto.INT8: ("int32_data", 1),
    TensorProto.UINT16: ("int32_data", 1),
    TensorProto.INT16: ("int32_data", 1),
    TensorProto.INT32: ("int32_data", 1),
    TensorProto.INT64: ("int64_data", 1),
    TensorProto.BOOL: ("int32_data", 1),
    TensorProto.FLOAT16: ("int32_data", 1),
    TensorProto.DOUBLE: ("double_data", 1),
    TensorProto.UINT32: ("uint64_data", 1),
    TensorProto.UINT64: ("uint64_data", 1),
    TensorProto.COMPLEX64: ("float_data", 2),
    TensorProto.COMPLEX128: ("double_data", 2),
    TensorProto.BFLOAT16: ("int32_data", 1),
    TensorProto.FLOAT8E4M3FN: ("int32_data", 1),
    TensorProto.FLOAT8E4M3FNUZ: ("int32_data", 1),
    TensorProto.FLOAT8E5M2: ("int32_data", 1),
    TensorProto.FLOAT8E5M2FNUZ: ("int32_data", 1),
    TensorProto.FLOAT8E8M0: ("int32_data", 1),
}
#: (storage field, entries per element, bytes per element in raw_data) by element type.
_RULES: dict[int, tuple[str, int, int]] = {
    data_type: (field, per, helper.tensor_dtype_to_np_dtype(data_type).itemsize)
    for data_type, (field, per) in _STORAGE.items()
}
#: ``to_array`` byte-swaps raw data on a big-endian host; there, every tensor is decoded.
_LITTLE_ENDIAN = sys.byteorder == "little"


def decodes_by_count(tensor: TensorProto, count: int) -> bool:
    """True when ``to_array`` surely decodes this inline tensor of ``count`` elements (dims known
    non-negative); False when only decoding can tell."""
    rule = _RULES.get(tensor.data_type)
    if rule is None or not _LITTLE_ENDIAN or tensor.HasField("segment"):
        return False
    field, per, itemsize = rule
    if tensor.HasField("raw_data"):
        return len(tensor.raw_data) == count * itemsize
    return len(getattr(tensor, field)) == count * per
