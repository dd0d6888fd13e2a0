"""The RoPECustomer operator contract (docs/op-contract.md), in one place.

Everything that must agree across the project reads from here: the op name and domains, the
attributes with their defaults and validation, the element types per chip, and the range of
default-domain opsets the ATC plugin registers keys for.  A test keeps ``custom_op/`` (op JSON,
ONNX plugin keys) equal to these values.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnx import TensorProto

from rope_onnx.errors import InputError

OP_TYPE = "RoPECustomer"
#: Domain of the node handed to ATC: released ATC parsers only look up ``ai.onnx::<opset>::<op>``.
ATC_DOMAIN = ""
#: Private domain used for in-memory copies that ONNX Runtime runs through the reference function.
REFERENCE_DOMAIN = "rope_onnx.reference"

ATTR_INTERLEAVED = "interleaved"
ATTR_ROTARY_DIM = "rotary_dim"
DEFAULT_INTERLEAVED = 1
DEFAULT_ROTARY_DIM = 0  # 0 means "the whole last dim of x"

#: Default-domain opsets the product supports: 11 up to the newest the pinned onnx defines.
MIN_OPSET = 11
MAX_OPSET = 28
SUPPORTED_OPSETS: tuple[int, ...] = tuple(range(MIN_OPSET, MAX_OPSET + 1))

#: Element types of x, cos, sin and y.
DTYPE_NAMES: dict[int, str] = {
    TensorProto.FLOAT16: "float16",
    TensorProto.FLOAT: "float32",
    TensorProto.BFLOAT16: "bfloat16",
}
#: bfloat16 exists on the 910B family only; the 310P has no bfloat16 unit.
CHIP_DTYPES: dict[str, tuple[str, ...]] = {
    "ascend910b": ("float16", "float32", "bfloat16"),
    "ascend310p": ("float16", "float32"),
}


@dataclass(frozen=True)
class RopeAttributes:
    """The two attributes of a RoPECustomer node.

    ``rotary_dim`` is kept as written (0 = whole head); :meth:`resolved_rotary_dim` gives R
    for a concrete head size.
    """

    interleaved: int = DEFAULT_INTERLEAVED
    rotary_dim: int = DEFAULT_ROTARY_DIM

    def __post_init__(self) -> None:
        if self.interleaved not in (0, 1):
            raise InputError(f"{OP_TYPE}: interleaved must be 0 or 1, got {self.interleaved}")
        if self.rotary_dim < 0 or self.rotary_dim % 2:
            raise InputError(
                f"{OP_TYPE}: rotary_dim must be 0 (whole head) or a positive even number, "
                f"got {self.rotary_dim}"
            )

    def resolved_rotary_dim(self, head_dim: int) -> int:
        """R for a head of ``head_dim`` channels; rejects R > D and odd D when R is implied."""
        rotary = self.rotary_dim or head_dim
        if rotary > head_dim or rotary % 2 or rotary <= 0:
            raise InputError(
                f"{OP_TYPE}: rotary_dim {rotary} does not fit a head of {head_dim} channels "
                "(need an even R with 0 < R <= head_dim)"
            )
        return rotary


def attributes_of(node) -> RopeAttributes:
    """Read (and validate) the attributes of a RoPECustomer ``NodeProto``."""
    values = {a.name: a.i for a in node.attribute}
    unknown = set(values) - {ATTR_INTERLEAVED, ATTR_ROTARY_DIM}
    if unknown:
        raise InputError(f"{OP_TYPE} node '{node.name}' has unknown attribute(s) {sorted(unknown)}")
    return RopeAttributes(
        interleaved=values.get(ATTR_INTERLEAVED, DEFAULT_INTERLEAVED),
        rotary_dim=values.get(ATTR_ROTARY_DIM, DEFAULT_ROTARY_DIM),
    )


def is_rope_node(node) -> bool:
    """True for a RoPECustomer node in any domain (default, private or user-chosen)."""
    return node.op_type == OP_TYPE
