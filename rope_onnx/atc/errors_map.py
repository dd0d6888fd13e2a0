"""Known ATC error codes → one plain sentence with the fix, for the failures a fused model meets.

Every code below is taken from a public Huawei source named next to it:
- REG: hicann/ge ``base/common/error_registry/error_registry.cc`` (the GE error registry: ErrCode,
  ErrMessage, Possible Cause, Solution), mirrored by the CANN "Error Code Reference"
  (https://www.hiascend.com/document/detail/zh/canncommercial/900/maintenref/troubleshooting/);
- PARSER: hicann/ge ``parser/parser/onnx/onnx_parser.cc`` (where the ONNX parser reports it);
- FE: hicann/ge ``compiler/engines/nn_engine/inc/common/fe_error_code.h`` and the error-code
  reference pages cited inline.
ATC prints a failure as ``E16002: No ONNX parser is registered for optype [...]`` followed by a
``Solution:`` line and a ``TraceBack`` (e.g. Ascend/ModelZoo-PyTorch issue #6, hiascend forum
threads); the code starts the line or follows ``error_code:`` in a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import onnx

from rope_onnx.op.contract import OP_TYPE

_CODE = re.compile(r"\b(E[0-9A-Z]\d{4})\b")
_OPTYPE = re.compile(r"optype\s*\[?\s*\[?([A-Za-z0-9_.]+::\d+::[A-Za-z0-9_]+|[A-Za-z0-9_]+)\]?")
_STANDARD_OPSET = re.compile(r"^ai\.onnx::(\d+)::([A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class KnownCode:
    code: str
    sentence: str  # one plain sentence: what happened and the fix
    source: str


KNOWN: dict[str, KnownCode] = {
    k.code: k
    for k in (
        KnownCode(
            "E16002",
            "ATC found no ONNX parser for {optype}: the RoPECustomer package is not installed or "
            "not visible (install custom_opp_*.run, or export ASCEND_CUSTOM_OPP_PATH=<install "
            "path>/vendors/<vendor>), or the node's domain/opset has no plugin key (re-fuse in the "
            "default domain with an opset the plugin registers)",
            "REG E16002; PARSER AdapterOpType",
        ),
        KnownCode(
            "E16005",
            "The model imports more than one opset domain while a custom op sits in the default "
            "domain; released ATC only accepts that with a single opset_import entry: re-fuse without "
            "--domain and drop the extra opset_import entries",
            "REG E16005; PARSER ConstructOriType",
        ),
        KnownCode(
            "E10501",
            "ATC has no operator prototype (IR) for {optype}: the custom op package's op_proto "
            "library is not found; check ASCEND_OPP_PATH (source set_env.sh) and reinstall "
            "custom_opp_*.run",
            "REG E10501; PARSER TransNodeToOperator",
        ),
        KnownCode(
            "E11010",
            "The ONNX plugin's parse function failed for {optype}: its attributes are not what "
            "the plugin expects (interleaved must be 0/1, rotary_dim 0 or even); re-fuse the model with "
            "this rope-onnx version",
            'PARSER ParseOpParam (REPORT_PREDEFINED_ERR_MSG("E11010"))',
        ),
        KnownCode(
            "E19010",
            "ATC has no parser for {optype}; for a standard op (ai.onnx::<opset>::<Op>) this "
            "CANN does not support that opset, so re-export with a lower opset (e.g. 17), for RoPECustomer "
            "install the custom op package",
            "https://www.hiascend.com/document/detail/zh/canncommercial/700/troublemanagement/"
            "troubleshooting/atlaserrorcode_15_0102.html; hiascend forum thread-02101177738192247018",
        ),
        KnownCode(
            "E16001", "The ONNX graph has no input or no output node; export the model again", "REG E16001"
        ),
        KnownCode("E16004", "The file holds no ONNX graph; give the fused .onnx file", "REG E16004"),
        KnownCode(
            "E10001",
            "An ATC option has an invalid value (the message names it); check the profile key "
            "that renders that option",
            "REG E10001",
        ),
        KnownCode(
            "E10002",
            "The --input_shape value is malformed; check the profile's inputs and dims",
            "REG E10002",
        ),
        KnownCode(
            "E10009",
            "--dynamic_dims cannot be combined with other dynamic-shape options; use one profile mode",
            "REG E10009",
        ),
        KnownCode(
            "E10010",
            "The --log level is invalid; [log].level must be debug, info, warning, error or null",
            "REG E10010",
        ),
        KnownCode(
            "E10011",
            "--input_shape has a non-positive size without a dynamic option; use mode "
            '"dynamic_dims" or "range" for free dimensions',
            "REG E10011",
        ),
        KnownCode(
            "E10016",
            "A name in --input_shape is not a node of the model; fix the input names in the "
            "profile (rope-onnx's pre-flight profile_inputs check shows them)",
            "REG E10016",
        ),
        KnownCode("E10035", "--dynamic_dims has fewer than 2 gears; give at least two values", "REG E10035"),
        KnownCode("E10036", "--dynamic_dims has more than 100 gears; give at most 100", "REG E10036"),
        KnownCode(
            "E10037",
            "The --dynamic_dims gears have different lengths; every gear needs one value per -1",
            "REG E10037",
        ),
        KnownCode(
            "E10040",
            'With --dynamic_dims the dynamic axes must be -1 (no ranges); use mode "range" for ranges',
            "REG E10040",
        ),
        KnownCode(
            "E10041",
            "ATC could not load the model; check that the .onnx file and its external data files "
            "are complete and readable",
            "REG E10041",
        ),
        KnownCode(
            "E10045",
            "The number of -1 axes in --input_shape does not match the values per --dynamic_dims "
            "gear; check the profile's gear symbols",
            "REG E10045",
        ),
        KnownCode(
            "E10046",
            "There are more -1 axes in --input_shape than values per --dynamic_dims gear; check "
            "the profile's gear symbols",
            "REG E10046",
        ),
        KnownCode(
            "E10049",
            "An --input_shape entry has a different rank than the model input; fix the shape in the profile",
            "REG E10049",
        ),
        KnownCode(
            "E10410",
            "The --keep_dtype file does not exist; keep [precision].keep_dtype next to the profile",
            "REG E10410",
        ),
        KnownCode(
            "E20001",
            "ATC failed to compile the kernel of {optype}; for RoPECustomer the package was not "
            "built for this chip or the shape is outside what its tiling accepts; rebuild custom_op "
            "for this soc_version and check the op log",
            "https://www.hiascend.com/document/detail/zh/canncommercial/83RC1/maintenref/troubleshooting/"
            "atlaserrorcode_15_0117.html; FE EM_COMPILE_FAILED",
        ),
        KnownCode(
            "E20002",
            "The ASCEND_OPP_PATH environment variable is invalid; source the CANN set_env.sh of "
            "the installed toolkit",
            "FE EM_ENVIRONMENT_VARIABLE_FAILED; hiascend forum thread-0223103961674073017",
        ),
        KnownCode(
            "E19999",
            "ATC hit an internal error; rerun with --log=debug (profile [log].level) and read "
            "the plog under $HOME/ascend/log",
            "REG E19999",
        ),
    )
}


@dataclass(frozen=True)
class Diagnosis:
    code: str
    line: str  # the log line it was found on, stripped
    sentence: str  # plain explanation with the fix; for unknown codes, the line itself
    known: bool

    def as_dict(self) -> dict:
        return {"code": self.code, "line": self.line, "explanation": self.sentence, "known": self.known}


def explain(code: str, line: str) -> Diagnosis:
    known = KNOWN.get(code)
    if known is None:
        return Diagnosis(code, line, f"{line} (see Huawei's CANN error code reference for {code})", False)
    match = _OPTYPE.search(line)
    optype = match[1] if match else "the op named in the log"
    sentence = known.sentence.format(optype=optype)
    standard = _STANDARD_OPSET.match(optype)
    if code in ("E19010", "E16002") and standard and onnx.defs.has(standard[2]):
        # A built-in ONNX op without a parser: this CANN does not cover that default opset.
        sentence = (
            f"This CANN has no parser for {optype}: it does not support default opset {standard[1]}; "
            "re-export the model with a lower opset (e.g. 17) and fuse again"
        )
    elif code in ("E19010", "E16002") and standard and standard[2] != OP_TYPE:
        sentence = (
            f"ATC has no parser for the custom op {optype}: install the package that provides it, "
            "or remove the op from the model"
        )
    return Diagnosis(code, line, sentence, True)


def diagnose(log_text: str) -> list[Diagnosis]:
    """Every distinct error code in an ATC log, first occurrence first, each explained."""
    found: dict[str, Diagnosis] = {}
    for raw in log_text.splitlines():
        line = raw.strip()
        for code in _CODE.findall(line):
            if code not in found:
                found[code] = explain(code, line)
    return list(found.values())
