"""``rope-onnx atc --kernel auto``: give Huawei's built-in RotaryPositionEmbedding the nodes it serves.

:mod:`.kernel_choice` proves, per fused node, from the profile's ``--soc_version`` and shapes, whether the
built-in op serves it; the ONNX plugin cannot (it sees attributes only).  With ``--kernel auto`` the
eligible nodes are marked ``RoPEBuiltin`` in a copy of the model, which is written as a NEW file and
handed to ATC; every other node stays on the custom kernel.  The input is never modified.

The marked file goes next to the input by default, so the input's external data references resolve
unchanged and no weight is copied; elsewhere (``--marked-output``) the data files are copied beside it,
as ``fuse`` does (:func:`rope_onnx.io.save.save_model`: atomic write, the path checked like every output).
``--kernel custom`` (the default) hands ATC the input as it is: the custom kernel serves every
``RoPECustomer`` node (nodes already marked ``RoPEBuiltin`` are still checked by the pre-flight).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx

from rope_onnx.atc import kernel_choice
from rope_onnx.atc.profile import Variant
from rope_onnx.errors import InputError
from rope_onnx.graph.index import GraphIndex
from rope_onnx.io.load import LoadedModel
from rope_onnx.io.save import save_model
from rope_onnx.op.contract import OP_TYPE

__all__ = ["KERNELS", "Marking", "default_path", "prepare", "write"]

KERNELS = ("custom", "auto")


@dataclass
class Marking:
    """What ``--kernel`` did to the model ATC gets."""

    kernel: str  # custom | auto
    source: Path  # the input model
    path: Path | None = None  # the marked file ATC gets; None: ATC gets the input
    model: onnx.ModelProto | None = field(default=None, repr=False)  # the marked copy (None: unmarked)
    marked: list[str] = field(default_factory=list)  # nodes marked here
    nodes: int = 0  # fused nodes in the model

    @property
    def atc_model(self) -> Path:
        return self.path or self.source

    def sentence(self) -> str:
        """The pre-flight's ``atc_model`` row: which file goes to ATC and why."""
        if self.path is not None:
            return (
                f"ATC gets {self.path} (written by --kernel auto): {len(self.marked)} of {self.nodes} "
                f"fused node(s) marked {kernel_choice.BUILTIN_OP_TYPE} for Huawei's built-in "
                f"{kernel_choice.BUILTIN_GE_TYPE}, the rest on the custom kernel; {self.source.name} is "
                "not modified"
            )
        if self.kernel == "auto":
            return (
                f"ATC gets the input {self.source}: --kernel auto found no {OP_TYPE} node the built-in "
                f"{kernel_choice.BUILTIN_GE_TYPE} is proven to serve on this chip (see the kernel[...] rows)"
            )
        return f"ATC gets the input {self.source} (--kernel custom)"


def default_path(source: Path, soc: str, variant: str) -> Path:
    """``<model>_builtin_<soc>_<variant>.onnx`` next to the input (its data files resolve unchanged)."""
    return source.with_name(f"{source.stem}_builtin_{soc}_{variant}.onnx")


def prepare(
    loaded: LoadedModel,
    family: str,
    variant: Variant,
    soc: str,
    kernel: str = "custom",
    output: str | Path | None = None,
    index: GraphIndex | None = None,
) -> Marking:
    """The marked copy ``--kernel`` asks for, in memory (nothing is written here)."""
    if kernel not in KERNELS:
        raise InputError(f"--kernel {kernel!r}: choose one of {', '.join(KERNELS)}")
    ropes = kernel_choice.ropes(loaded.model)
    marking = Marking(kernel, loaded.path, nodes=len(ropes))
    if kernel == "custom":
        if output is not None:
            raise InputError("--marked-output is the file --kernel auto writes; add --kernel auto or drop it")
        return marking
    copy = onnx.ModelProto()
    copy.CopyFrom(loaded.model)  # shapes come from the input's index: marking changes no tensor
    marking.marked = kernel_choice.mark_builtin(copy, family, variant, index or GraphIndex(loaded.model))
    if not marking.marked:
        return marking
    marking.model = copy
    marking.path = Path(output) if output is not None else default_path(loaded.path, soc, variant.name)
    return marking


def write(marking: Marking, loaded: LoadedModel) -> None:
    """Write the marked copy (atomic; the input and its data files are never a target)."""
    if marking.model is not None and marking.path is not None:
        save_model(marking.model, marking.path, loaded, share="copy")
