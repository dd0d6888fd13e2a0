"""The vocabularies of ATC's options that a profile may set, and the limits ATC puts on them.

Kept apart from the profile reader (:mod:`rope_onnx.atc.profile`) because they are facts about
ATC, cited from its reference, not about our TOML format.
"""

VARIANTS = ("prefill", "decode")
LOG_LEVELS = ("debug", "info", "warning", "error", "null")  # ATC --log
# ATC --precision_mode / --precision_mode_v2 values (CANN ATC reference, --precision_mode and
# --precision_mode_v2, e.g. https://www.hiascend.com/document/detail/zh/canncommercial/80RC2/...
# /atlasatc_16_0099.html).  The *bf16 / bfloat16 modes exist on the 910B (Atlas A2) family only.
PRECISION_MODES = (
    "force_fp32",
    "cube_fp16in_fp32out",
    "force_fp16",
    "allow_fp32_to_fp16",
    "must_keep_origin_dtype",
    "allow_mix_precision",
    "allow_mix_precision_fp16",
    "allow_mix_precision_bf16",
    "allow_fp32_to_bf16",
)
PRECISION_MODES_V2 = ("fp16", "origin", "cube_fp16in_fp32out", "mixed_float16", "mixed_bfloat16")
BF16_ONLY = ("allow_mix_precision_bf16", "allow_fp32_to_bf16", "mixed_bfloat16")
# Modes that keep every op in the graph's dtype; ATC ignores --keep_dtype under them.
KEEPS_ORIGIN = ("must_keep_origin_dtype", "origin")
IMPL_MODES = ("high_precision", "high_performance")
KEEP_DTYPE_LINE = "OpType::RoPECustomer"  # --keep_dtype file syntax: one OpType::<type> per line
# Older ATC references limit a --dynamic_dims profile to 4 values ("每档最多支持任意指定4个维度",
# Atlas 200I DK A2 23.0.RC2 ATC guide, atctool_000056); newer ones only bound the gear count.
OLD_GEAR_WIDTH_LIMIT = 4
