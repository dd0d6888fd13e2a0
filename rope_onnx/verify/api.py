"""``verify_models``: compare an original model and its fused copy on ONNX Runtime's CPU provider.

Two modes share one result type.  The full run feeds both models the same inputs and compares
every final output plus every fused site's own output (logits can hide a wrong site: a swapped
table in one layer may move them by less than the tolerance).  ``sites=True`` proves each site
locally on a cut of both graphs (:mod:`.sites`) and needs no weights at all.
The fused model always runs from an in-memory copy whose RoPECustomer nodes are served by the
reference decomposition (:func:`rope_onnx.op.decomposition.runnable_copy`); files are never changed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from onnx import ModelProto, TensorProto

from rope_onnx.errors import CheckFailed, InputError, require_model_proto
from rope_onnx.io.load import LoadedModel, load_model
from rope_onnx.op.contract import DTYPE_NAMES
from rope_onnx.verify import runner, sites
from rope_onnx.verify.compare import chosen_tolerance, compare, describe_defaults
from rope_onnx.verify.derive import check_derivation
from rope_onnx.verify.dims import DimValues
from rope_onnx.verify.feedio import save_arrays
from rope_onnx.verify.feeds import generate, input_specs, load_feeds, to_bfloat16_grid
from rope_onnx.verify.local import prove_sites
from rope_onnx.verify.options import VerifyOptions
from rope_onnx.verify.report import VerifyResult
from rope_onnx.verify.specs import known_specs
from rope_onnx.verify.tolerances import check_names

ModelSource = LoadedModel | ModelProto | str | os.PathLike

log = logging.getLogger(__name__)


@dataclass
class _Side:
    model: ModelProto
    folder: Path | None  # where its external weights live
    label: str


def _side(source: ModelSource, need_weights: bool, fallback_folder: Path | None, label: str) -> _Side:
    if isinstance(source, ModelProto):
        return _Side(source, fallback_folder, label)
    if isinstance(source, LoadedModel):
        if need_weights:
            for ref in source.external:
                if not (source.folder / ref.location).is_file():
                    raise InputError(
                        f"{source.path}: external data file '{ref.location}' is missing; copy it "
                        "next to the model, or verify with --sites (needs no weights)"
                    )
        return _Side(source.model, source.folder, str(source.path))
    if not isinstance(source, (str, os.PathLike)):
        require_model_proto(source, "verify_models", also="a path or a LoadedModel")
    loaded = load_model(source, need_external_data=need_weights)
    return _Side(loaded.model, loaded.folder, str(loaded.path))


def _symbols(specs) -> set[str]:
    return {d for spec in specs if spec.dims for d in spec.dims if isinstance(d, str)}


def _full_run(
    orig: _Side, fused: _Side, site_list: list[sites.Site], options: VerifyOptions, result: VerifyResult
) -> None:
    specs = input_specs(orig.model)
    dims = DimValues(options.dims)
    feeds = (
        load_feeds(options.inputs, specs)
        if options.inputs
        else generate(orig.model, specs, dims, options.seed)
    )
    result.notes.extend(feeds.notes)
    result.dims = feeds.dims
    upcast = runner.has_bfloat16(orig.model) or runner.has_bfloat16(fused.model)
    if upcast:
        result.notes.append(
            "bfloat16 model: ONNX Runtime's CPU provider has no bfloat16 arithmetic, so both "
            "models ran as copies upcast to float32"
        )
    outputs = [o.name for o in orig.model.graph.output]
    extra = [s.output for s in site_list if s.output not in outputs]
    types = {o.name: o.type.tensor_type.elem_type for o in orig.model.graph.output}
    known = known_specs(orig.model) if extra else {}
    wanted = outputs + extra
    if options.save_inputs is not None:
        _save(options.save_inputs, {s.name: feeds.arrays[s.name] for s in specs}, _types(specs), options)
        result.notes.append(f"saved {len(specs)} input(s) to {options.save_inputs}")
    got_a = runner.run(
        runner.with_outputs(runner.runnable(orig.model, orig.folder, upcast), extra),
        feeds.arrays,
        orig.folder,
        wanted,
        f"the original model {orig.label}",
    )
    if options.save_outputs is not None:  # the goldens: the ORIGINAL's outputs, before the fused one runs
        _save(options.save_outputs, {n: got_a[n] for n in outputs}, types, options)
        result.notes.append(f"saved {len(outputs)} output(s) of the original to {options.save_outputs}")
    got_b = runner.run(
        runner.with_outputs(runner.runnable(fused.model, fused.folder, upcast), extra),
        feeds.arrays,
        fused.folder,
        wanted,
        f"the fused model {fused.label}",
        CheckFailed,
    )
    node_of = {s.output: s.node for s in site_list}
    for name in wanted:
        kind = "output" if name in types else "site"
        elem = types.get(name) or (known[name].elem_type if name in known else TensorProto.FLOAT)
        result.results.append(
            compare(
                name,
                kind,
                got_a[name],
                got_b[name],
                chosen_tolerance(kind, elem, *options.tolerances_for(name)),
                DTYPE_NAMES.get(elem, str(got_a[name].dtype)),
                node_of.get(name, ""),
            )
        )


def _types(specs) -> dict[str, int]:
    return {s.name: s.elem_type for s in specs}


def _save(folder: Path, arrays: dict, types: dict[str, int], options: VerifyOptions) -> None:
    """``<name>.npy`` (+ ``.bin``) per tensor; bfloat16 tensors (run as float32) get bfloat16 bits in .bin."""
    bf16 = {n: "bfloat16" for n in arrays if types.get(n) == TensorProto.BFLOAT16}
    if bf16:
        arrays = {n: (to_bfloat16_grid(a) if n in bf16 else a) for n, a in arrays.items()}
    save_arrays(folder, arrays, raw=options.save_bin, raw_dtypes=bf16)


def verify_models(
    original: ModelSource, fused: ModelSource, options: VerifyOptions | None = None
) -> VerifyResult:
    """Compare ``fused`` against ``original`` on ONNX Runtime CPU; never modifies either.

    ``original``/``fused``: a path, a :class:`LoadedModel`, or a ``ModelProto`` (a ModelProto
    has no folder of its own: its external weights are looked up next to the other model, which
    is where the fusion pass leaves them).  Raises :class:`InputError` for unusable input (exit
    2); a mismatch is not an exception: see ``result.passed``.
    """
    options = options or VerifyOptions()
    if not isinstance(options, VerifyOptions):
        raise TypeError(f"verify_models: options must be a VerifyOptions, not {type(options).__name__}")
    options.validate()
    need = not options.sites
    a = _side(original, need, None, "original (in memory)")
    b = _side(fused, need, a.folder, "fused (in memory)")
    if a.folder is None and b.folder is not None:
        a.folder = b.folder
    check_derivation(a.model, b.model)  # an unrelated pair is exit 2, not a FAILED table
    site_list = sites.find_sites(a.model, b.model)
    check_names(
        options.tolerance_tables(), [o.name for o in a.model.graph.output] + [s.output for s in site_list]
    )
    result = VerifyResult(
        a.label,
        b.label,
        "sites" if options.sites else "full",
        options.seed,
        defaults="" if options.all_defaults_overridden else describe_defaults(),
    )
    dims = DimValues(options.dims)
    if options.sites:
        if not site_list:
            raise InputError(
                f"{b.label}: no RoPECustomer node; --sites has nothing to prove (run without it)"
            )
        log.info("proving %d site(s) on their own cuts (random tensors, no weights)", len(site_list))
        result.results.extend(prove_sites(a.model, b.model, site_list, options, dims))
        result.dims = dict(sorted(dims.values.items()))
        result.notes.append(
            "per-site local proof: each site cut at x, cos, sin and run on random tensors "
            "(x ~ N(0,1), tables ~ U(-1,1)); no weights read"
        )
    else:
        _full_run(a, b, site_list, options, result)
    seen = _symbols(input_specs(a.model))
    if options.sites:
        seen |= set(dims.values) - dims.overridden  # every symbol a cut used
    unused = sorted(set(options.dims) - seen)
    for name in unused:
        result.dims.pop(name, None)
    if unused:
        result.notes.append(f"--dim {', '.join(unused)}: no input dimension has that name; ignored")
    return result


__all__ = ["VerifyOptions", "VerifyResult", "verify_models"]
