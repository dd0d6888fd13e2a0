#!/usr/bin/env python3
"""Export tiny random-weight LLaMA-family models to ONNX as rope-onnx test fixtures.

Every fixture is exported with both exporters:
  * TorchScript: torch.onnx.export(..., dynamo=False, opset_version=17, dynamic_axes=...)
  * dynamo:      torch.onnx.export(..., dynamo=True, dynamic_shapes=...)   (default opset of the exporter)
Batch and sequence (and past length for KV-cache models) are dynamic, so cos/sin stay
position-dependent computations in the graph instead of folded constants.

Nothing is downloaded: configs are built in code, weights are random (torch.manual_seed(0)).

Usage:
  python models/export_fixtures.py                 # export all into models/fixtures + manifest.json
  python models/export_fixtures.py --only llama    # only fixtures whose name contains "llama"
  python models/export_fixtures.py --check         # export, then verify every fixture
  python models/export_fixtures.py --check-only    # verify the fixtures already on disk
  python models/export_fixtures.py --list          # print fixture names

The expected site count of a fixture (manifest `expected_sites`) is by construction:
RoPE is applied to q and to k in every layer, so it is 2 * num_layers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

TS_OPSET = 17
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
ONNX_ELEM = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 9: "bool", 16: "bfloat16"}
# Dynamo writes per-node debug metadata (~60% of a tiny model's bytes). The stack trace (absolute paths
# of the exporting machine), the class hierarchy (redundant with "namespace") and the FX node text are
# dropped; "namespace" and "pkg.torch.onnx.name_scopes" are kept. The graph itself is as exported.
DROP_NODE_METADATA = (
    "pkg.torch.onnx.stack_trace",
    "pkg.torch.onnx.class_hierarchy",
    "pkg.torch.onnx.fx_node",
)
NUM_LAYERS = 2

# --------------------------------------------------------------------------------------------------
# Fixture description
# --------------------------------------------------------------------------------------------------


@dataclass
class Fixture:
    family: str
    variant: str
    build: Callable[[torch.dtype], nn.Module]  # returns the eval-mode module to export, in dtype
    make_inputs: Callable[[int, int, torch.dtype], dict]  # (batch, seq, dtype) -> ordered name -> tensor
    dynamic: dict  # input name -> {axis: symbolic name}
    output_names: list
    output_dynamic: dict  # output name -> {axis: symbolic name} (TorchScript dynamic_axes)
    layout: str
    interleaved: int
    head_dim: int
    rotary_dim: int
    variants: list
    dtypes: tuple = ("fp32",)
    num_layers: int = NUM_LAYERS
    notes: str = ""
    exporters: tuple = ("ts", "dynamo")
    extra: dict = field(default_factory=dict)

    @property
    def expected_sites(self) -> int:
        return 2 * self.num_layers

    def file(self, exporter: str, dtype: str) -> str:
        return f"{self.family}_{self.variant}_{exporter}_{dtype}.onnx"


def _seed_all(seed: int = 0) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


# --------------------------------------------------------------------------------------------------
# Hugging Face families
# --------------------------------------------------------------------------------------------------

HF_COMMON = dict(vocab_size=32, max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2)


class CausalLMNoCache(nn.Module):
    """input_ids, attention_mask -> logits. No cache (use_cache=False)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


class CausalLMWithCache(nn.Module):
    """Decode-style: input_ids [B,S], attention_mask [B,P+S], position_ids [B,S], past k/v per layer
    [B,KVH,P,D] -> logits, present k/v per layer [B,KVH,P+S,D]. The past is handed to the model as a
    transformers DynamicCache built from the tensors (what transformers 5.x expects)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids, attention_mask, position_ids, past_key_0, past_value_0, past_key_1, past_value_1
    ):
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=[(past_key_0, past_value_0), (past_key_1, past_value_1)])
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,  # transformers 5.x name (past_key_values= is deprecated)
            use_cache=True,
        )
        pkv = out.past_key_values
        return (
            out.logits,
            pkv.layers[0].keys,
            pkv.layers[0].values,
            pkv.layers[1].keys,
            pkv.layers[1].values,
        )


def _hf_model(cls_name: str, cfg_name: str, dtype: torch.dtype, **cfg_kwargs) -> nn.Module:
    import transformers

    cfg = getattr(transformers, cfg_name)(**cfg_kwargs)
    cfg._attn_implementation = "eager"
    _seed_all(0)
    model = getattr(transformers, cls_name)(cfg).eval()
    return model.to(dtype)


def _nocache_inputs(vocab: int):
    def make(batch: int, seq: int, dtype: torch.dtype) -> dict:
        ids = torch.randint(0, vocab, (batch, seq), dtype=torch.int64)
        mask = torch.ones(batch, seq, dtype=torch.int64)
        return {"input_ids": ids, "attention_mask": mask}

    return make


NOCACHE_DYN = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
NOCACHE_OUT_DYN = {"logits": {0: "batch", 1: "seq"}}


def hf_fixture(
    family,
    variant,
    cls_name,
    cfg_name,
    cfg,
    *,
    layout,
    interleaved,
    head_dim,
    rotary_dim,
    variants,
    dtypes=("fp32",),
    notes="",
) -> Fixture:
    cfg = {**HF_COMMON, **cfg}
    return Fixture(
        family=family,
        variant=variant,
        build=lambda dt: CausalLMNoCache(_hf_model(cls_name, cfg_name, dt, **cfg)),
        make_inputs=_nocache_inputs(cfg["vocab_size"]),
        dynamic=NOCACHE_DYN,
        output_names=["logits"],
        output_dynamic=NOCACHE_OUT_DYN,
        layout=layout,
        interleaved=interleaved,
        head_dim=head_dim,
        rotary_dim=rotary_dim,
        variants=variants,
        dtypes=dtypes,
        notes=notes,
        extra={"hf_class": cls_name, "config": cfg},
    )


def hf_kv_fixture(
    family, variant, cls_name, cfg_name, cfg, *, kv_heads, head_dim, variants, dtypes=("fp32",), notes=""
) -> Fixture:
    cfg = {**HF_COMMON, **cfg}
    vocab = cfg["vocab_size"]

    def make(batch: int, seq: int, dtype: torch.dtype) -> dict:
        past = seq + 3  # past length differs from seq so both axes are exercised independently
        ids = torch.randint(0, vocab, (batch, seq), dtype=torch.int64)
        mask = torch.ones(batch, past + seq, dtype=torch.int64)
        pos = torch.arange(past, past + seq, dtype=torch.int64).unsqueeze(0).expand(batch, seq).contiguous()
        d = {"input_ids": ids, "attention_mask": mask, "position_ids": pos}
        for i in range(NUM_LAYERS):
            d[f"past_key_{i}"] = torch.randn(batch, kv_heads, past, head_dim).to(dtype)
            d[f"past_value_{i}"] = torch.randn(batch, kv_heads, past, head_dim).to(dtype)
        return d

    dyn = {
        "input_ids": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "total_seq"},
        "position_ids": {0: "batch", 1: "seq"},
    }
    out_dyn = {"logits": {0: "batch", 1: "seq"}}
    outs = ["logits"]
    for i in range(NUM_LAYERS):
        for kv in ("key", "value"):
            dyn[f"past_{kv}_{i}"] = {0: "batch", 2: "past_seq"}
            out_dyn[f"present_{kv}_{i}"] = {0: "batch", 2: "total_seq"}
            outs.append(f"present_{kv}_{i}")
    return Fixture(
        family=family,
        variant=variant,
        build=lambda dt: CausalLMWithCache(_hf_model(cls_name, cfg_name, dt, **cfg)),
        make_inputs=make,
        dynamic=dyn,
        output_names=outs,
        output_dynamic=out_dyn,
        layout="BHLD",
        interleaved=0,
        head_dim=head_dim,
        rotary_dim=head_dim,
        variants=variants,
        dtypes=dtypes,
        notes=notes,
        extra={"hf_class": cls_name, "config": cfg},
    )


# Tiny shapes: hidden 32, 2 heads of 16 (1 KV head where the family has GQA), 2 layers,
# intermediate 32, vocab 32 (tied embeddings). head_dim stays 16 so partial rotary keeps R >= 4.
LLAMA_CFG = dict(
    hidden_size=32,
    intermediate_size=32,
    num_hidden_layers=NUM_LAYERS,
    num_attention_heads=2,
    num_key_value_heads=1,
    tie_word_embeddings=True,
)


def hf_fixtures() -> list:
    fx = []
    fx.append(
        hf_fixture(
            "llama",
            "base",
            "LlamaForCausalLM",
            "LlamaConfig",
            LLAMA_CFG,
            layout="BHLD",
            interleaved=0,
            head_dim=16,
            rotary_dim=16,
            variants=["rotate_half", "table_sincos", "gqa"],
            dtypes=("fp32", "fp16"),
        )
    )
    fx.append(
        hf_kv_fixture(
            "llama",
            "kvcache",
            "LlamaForCausalLM",
            "LlamaConfig",
            LLAMA_CFG,
            kv_heads=1,
            head_dim=16,
            variants=["rotate_half", "table_sincos", "kv_cache", "gqa"],
            dtypes=("fp32", "fp16"),
        )
    )
    fx.append(
        hf_fixture(
            "qwen2",
            "base",
            "Qwen2ForCausalLM",
            "Qwen2Config",
            LLAMA_CFG,
            layout="BHLD",
            interleaved=0,
            head_dim=16,
            rotary_dim=16,
            variants=["rotate_half", "table_sincos", "gqa", "qkv_bias"],
            dtypes=("fp32", "fp16"),
        )
    )
    fx.append(
        hf_fixture(
            "mistral",
            "base",
            "MistralForCausalLM",
            "MistralConfig",
            {**LLAMA_CFG, "sliding_window": 64},
            layout="BHLD",
            interleaved=0,
            head_dim=16,
            rotary_dim=16,
            variants=["rotate_half", "table_sincos", "gqa"],
        )
    )
    fx.append(
        hf_fixture(
            "phi",
            "partial50",
            "PhiForCausalLM",
            "PhiConfig",
            dict(
                hidden_size=32,
                intermediate_size=32,
                num_hidden_layers=NUM_LAYERS,
                num_attention_heads=2,
                num_key_value_heads=2,
                tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
            ),
            layout="BHLD",
            interleaved=0,
            head_dim=16,
            rotary_dim=8,
            variants=["rotate_half", "table_sincos", "partial", "cos_shape_bounds"],
        )
    )
    for pct in (25, 50):
        fx.append(
            hf_fixture(
                "neox",
                f"rot{pct}",
                "GPTNeoXForCausalLM",
                "GPTNeoXConfig",
                dict(
                    hidden_size=32,
                    intermediate_size=32,
                    num_hidden_layers=NUM_LAYERS,
                    num_attention_heads=2,
                    tie_word_embeddings=True,
                    rope_parameters={
                        "rope_type": "default",
                        "rope_theta": 10000.0,
                        "partial_rotary_factor": pct / 100,
                    },
                ),
                layout="BHLD",
                interleaved=0,
                head_dim=16,
                rotary_dim=16 * pct // 100,
                variants=["rotate_half", "table_sincos", "partial", "cos_shape_bounds", "fused_qkv"],
            )
        )
    fx.append(
        hf_fixture(
            "gptj",
            "rot8",
            "GPTJForCausalLM",
            "GPTJConfig",
            dict(
                n_embd=32,
                n_inner=32,
                n_layer=NUM_LAYERS,
                n_head=2,
                rotary_dim=8,
                n_positions=128,
                tie_word_embeddings=True,
            ),
            layout="BLHD",
            interleaved=1,
            head_dim=16,
            rotary_dim=8,
            variants=[
                "interleaved",
                "step2_slices",
                "partial",
                "table_gather",
                "blhd",
                "repeat_interleave_tables",
            ],
        )
    )
    fx.append(
        hf_fixture(
            "glm",
            "partial50",
            "GlmForCausalLM",
            "GlmConfig",
            dict(
                LLAMA_CFG,
                head_dim=16,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
            ),
            layout="BHLD",
            interleaved=1,
            head_dim=16,
            rotary_dim=8,
            variants=[
                "interleaved",
                "step2_slices",
                "partial",
                "cos_shape_bounds",
                "table_sincos",
                "repeat_interleave_tables",
            ],
            notes="ChatGLM-like: interleaved pairs on the first half of the head; tables are the "
            "first half of a rotate_half-style table, repeat_interleaved. TorchScript export fails "
            "(see export_error): the aten::cat symbolic of torch.cat([q_embed, q_pass]) raises "
            "'All tensors must have the same rank'; q_embed comes from repeat_interleave(2, -1) of "
            "the dynamically shaped tables, which the opset-17 symbolic emits with unknown rank.",
        )
    )
    fx.append(
        hf_fixture(
            "stablelm",
            "partial25",
            "StableLmForCausalLM",
            "StableLmConfig",
            dict(
                LLAMA_CFG,
                rope_parameters={
                    "rope_type": "default",
                    "rope_theta": 10000.0,
                    "partial_rotary_factor": 0.25,
                },
            ),
            layout="BHLD",
            interleaved=0,
            head_dim=16,
            rotary_dim=4,
            variants=["rotate_half", "table_sincos", "partial", "gqa"],
        )
    )
    fx.append(
        hf_fixture(
            "falcon",
            "base",
            "FalconForCausalLM",
            "FalconConfig",
            dict(
                hidden_size=32,
                num_hidden_layers=NUM_LAYERS,
                num_attention_heads=2,
                new_decoder_architecture=False,
                multi_query=True,
                parallel_attn=True,
                alibi=False,
                tie_word_embeddings=True,
                ffn_hidden_size=32,
            ),
            layout="BHLD",
            interleaved=0,
            head_dim=16,
            rotary_dim=16,
            variants=["rotate_half", "table_sincos", "fused_qkv", "mqa"],
        )
    )
    return fx


# --------------------------------------------------------------------------------------------------
# Hand-written RoPE variants (what no family emits, or the seed formulation)
# --------------------------------------------------------------------------------------------------

V_HIDDEN, V_HEADS, V_HEAD_DIM = 32, 2, 16


def rotate_half_slices(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_rh(x, cos, sin):  # canonical HF
    half = 8  # literal bounds (head_dim 16)
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def rope_split(x, cos, sin):
    x1, x2 = torch.split(x, x.shape[-1] // 2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def rope_chunk(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def rope_mulneg1(x, cos, sin):
    x1 = x[..., :8]
    x2 = x[..., 8:]
    return x * cos + torch.cat((x2 * -1, x1), dim=-1) * sin


def rope_computed_bounds(x, cos, sin):
    return x * cos + rotate_half_slices(x) * sin


def rope_cos_shape_bounds(x, cos, sin):  # partial rotary, R from the table width
    rd = cos.shape[-1]
    x_rot, x_pass = x[..., :rd], x[..., rd:]
    y = x_rot * cos + rotate_half_slices(x_rot) * sin
    return torch.cat((y, x_pass), dim=-1)


def rope_empty_passthrough(x, cos, sin):  # R == D written as a partial-rotary cat with an empty tail
    rd = 16
    x_rot, x_pass = x[..., :rd], x[..., rd:]
    y = x_rot * cos + rotate_half_slices(x_rot) * sin
    return torch.cat((y, x_pass), dim=-1)


def rope_order_cos_first(x, cos, sin):
    return cos * x + sin * rotate_half_slices(x)


def rope_order_rot_first(x, cos, sin):
    return rotate_half_slices(x) * sin + x * cos


def rope_half_explicit(x, cos, sin):  # half tables [.., D/2], non-interleaved, no rotate_half
    x1, x2 = x[..., :8], x[..., 8:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def _pairs(x):
    return x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)


def rope_il_unbind(x, cos, sin):  # half tables
    x1, x2 = _pairs(x).unbind(-1)
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def rope_il_index(x, cos, sin):  # half tables
    xp = _pairs(x)
    x1, x2 = xp[..., 0], xp[..., 1]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def rope_il_split(x, cos, sin):  # half tables
    a, b = torch.split(_pairs(x), 1, dim=-1)
    x1, x2 = a.squeeze(-1), b.squeeze(-1)
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def rope_il_full(x, cos, sin):  # full repeat-interleaved tables, GPT-J rotate_every_two
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    rot = torch.stack((-x2, x1), dim=-1).flatten(-2)
    return x * cos + rot * sin


def rope_seed(x, cos, sin):  # the seed's formulation, fixed: half tables [L, D/2]
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    y1 = x1 * cos - x2 * sin
    y2 = x1 * sin + x2 * cos
    return torch.stack([y1, y2], dim=-1).flatten(-2)


class RopeAttention(nn.Module):
    """Minimal attention layer: q/k/v projections, RoPE on q and k, softmax attention, o projection."""

    def __init__(self, rope, layout):
        super().__init__()
        self.q_proj = nn.Linear(V_HIDDEN, V_HEADS * V_HEAD_DIM, bias=False)
        self.k_proj = nn.Linear(V_HIDDEN, V_HEADS * V_HEAD_DIM, bias=False)
        self.v_proj = nn.Linear(V_HIDDEN, V_HEADS * V_HEAD_DIM, bias=False)
        self.o_proj = nn.Linear(V_HEADS * V_HEAD_DIM, V_HIDDEN, bias=False)
        self.rope = rope
        self.layout = layout

    def forward(self, h, cos, sin):
        b, length, _ = h.shape
        shape = (b, length, V_HEADS, V_HEAD_DIM)
        q = self.q_proj(h).view(shape)
        k = self.k_proj(h).view(shape)
        v = self.v_proj(h).view(shape).transpose(1, 2)
        if self.layout == "BHLD":
            q = q.transpose(1, 2)
            k = k.transpose(1, 2)
            q = self.rope(q, cos, sin)
            k = self.rope(k, cos, sin)
        else:  # BLHD: RoPE before the transpose to heads-first
            q = self.rope(q, cos, sin)
            k = self.rope(k, cos, sin)
            q = q.transpose(1, 2)
            k = k.transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(V_HEAD_DIM), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, length, V_HEADS * V_HEAD_DIM)
        return h + self.o_proj(o)


class RopeModel(nn.Module):
    """hidden_states [B,L,hidden], position_ids [B,L] (or [L] for 'seed') -> hidden_states.

    tables:
      'full_half'  : cos = cat(f, f)  (rotate_half layout, width R)
      'full_il'    : cos = stack((f, f), -1).flatten(-2)  (interleaved layout, width R)
      'half'       : cos = cos(f)  (width R/2)
    table_src: 'sincos' computes Cos/Sin of position_ids x inv_freq in the graph; 'gather' indexes a
    constant [max_pos, width] cache with position_ids.
    """

    def __init__(
        self,
        rope,
        *,
        layout="BHLD",
        rotary_dim=16,
        tables="full_half",
        table_src="sincos",
        seed_1d=False,
        max_pos=128,
    ):
        super().__init__()
        self.layers = nn.ModuleList([RopeAttention(rope, layout) for _ in range(NUM_LAYERS)])
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.layout, self.tables, self.table_src, self.seed_1d = layout, tables, table_src, seed_1d
        if table_src == "gather":
            f = torch.arange(max_pos, dtype=torch.float32)[:, None] * inv_freq[None, :]
            e = self._widen(f)
            self.register_buffer("cos_cached", e.cos(), persistent=False)
            self.register_buffer("sin_cached", e.sin(), persistent=False)

    def _widen(self, f):
        if self.tables == "full_half":
            return torch.cat((f, f), dim=-1)
        if self.tables == "full_il":
            # stack+flatten, not repeat_interleave: the TorchScript exporter (opset 17) mis-exports
            # repeat_interleave(2, dim=-1) of a [B,L,R/2] tensor with dynamic B/L (the ONNX result is
            # R/2 wide; ORT then fails "Attempting to broadcast an axis by a dimension other than 1.
            # 8 by 16").
            return torch.stack((f, f), dim=-1).flatten(-2)
        return f

    def forward(self, hidden_states, position_ids):
        dt = hidden_states.dtype
        if self.table_src == "gather":
            cos = self.cos_cached[position_ids].to(dt)
            sin = self.sin_cached[position_ids].to(dt)
        else:
            f = position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq  # [B,L,R/2] or [L,R/2]
            e = self._widen(f)
            cos = e.cos().to(dt)
            sin = e.sin().to(dt)
        if not self.seed_1d:  # [B,L,W] -> broadcast over heads
            cos = cos.unsqueeze(1 if self.layout == "BHLD" else 2)
            sin = sin.unsqueeze(1 if self.layout == "BHLD" else 2)
        h = hidden_states
        for layer in self.layers:
            h = layer(h, cos, sin)
        return h


def variant_fixture(
    family,
    variant,
    rope,
    *,
    variants,
    layout="BHLD",
    interleaved=0,
    rotary_dim=16,
    tables="full_half",
    table_src="sincos",
    seed_1d=False,
    notes="",
    dtypes=("fp32",),
) -> Fixture:
    def build(dt):
        _seed_all(0)
        return (
            RopeModel(
                rope,
                layout=layout,
                rotary_dim=rotary_dim,
                tables=tables,
                table_src=table_src,
                seed_1d=seed_1d,
            )
            .eval()
            .to(dt)
        )

    def make(batch, seq, dtype):
        h = torch.randn(batch, seq, V_HIDDEN).to(dtype)
        if seed_1d:
            pos = torch.arange(seq, dtype=torch.int64) + 2
        else:
            pos = (torch.arange(seq, dtype=torch.int64) + torch.randint(0, 4, (batch, 1))).contiguous()
        return {"hidden_states": h, "position_ids": pos}

    dyn = {
        "hidden_states": {0: "batch", 1: "seq"},
        "position_ids": {0: "seq"} if seed_1d else {0: "batch", 1: "seq"},
    }
    tags = [*list(variants), f"table_{table_src}"]
    if layout == "BLHD":
        tags.append("blhd")
    return Fixture(
        family=family,
        variant=variant,
        build=build,
        make_inputs=make,
        dynamic=dyn,
        output_names=["out"],
        output_dynamic={"out": {0: "batch", 1: "seq"}},
        layout=layout,
        interleaved=interleaved,
        head_dim=V_HEAD_DIM,
        rotary_dim=rotary_dim,
        variants=tags,
        dtypes=dtypes,
        notes=notes,
    )


def variant_fixtures() -> list:
    F = variant_fixture
    return [
        F(
            "seed",
            "halftables",
            rope_seed,
            interleaved=1,
            tables="half",
            seed_1d=True,
            variants=["interleaved", "step2_slices", "half_tables"],
            dtypes=("fp32", "fp16"),
            notes="Seed formulation with its shape bug fixed: x [B,H,L,D], x1=x[...,::2], x2=x[...,1::2], "
            "y=stack([x1*cos-x2*sin, x1*sin+x2*cos],-1).flatten(-2); cos/sin [L,D/2] computed in-graph from "
            "position_ids [L].",
        ),
        F(
            "custom",
            "split",
            rope_split,
            variants=["rotate_half", "split", "computed_bounds"],
            notes="rotate_half via torch.split(x, x.shape[-1]//2, -1).",
        ),
        F(
            "custom",
            "chunk",
            rope_chunk,
            variants=["rotate_half", "split"],
            notes="rotate_half via x.chunk(2, -1).",
        ),
        F(
            "custom",
            "mulneg1",
            rope_mulneg1,
            variants=["rotate_half", "mul_neg1"],
            notes="cat((x2 * -1, x1)) instead of cat((-x2, x1)).",
        ),
        F(
            "custom",
            "computedbounds",
            rope_computed_bounds,
            variants=["rotate_half", "computed_bounds"],
            notes="slice bounds h = x.shape[-1] // 2.",
        ),
        F(
            "custom",
            "partialcosshape",
            rope_cos_shape_bounds,
            rotary_dim=8,
            variants=["rotate_half", "partial", "cos_shape_bounds", "computed_bounds"],
            notes="partial rotary R=8 of D=16; R = cos.shape[-1]; halves of x_rot from x_rot.shape[-1]//2.",
        ),
        F(
            "custom",
            "emptypass",
            rope_empty_passthrough,
            rotary_dim=16,
            variants=["rotate_half", "partial", "empty_passthrough", "computed_bounds"],
            notes="R == D written as cat((rope(x[..., :16]), x[..., 16:])) with an empty pass-through slice.",
        ),
        F(
            "custom",
            "coscfirst",
            rope_order_cos_first,
            variants=["rotate_half", "operand_order", "computed_bounds"],
            notes="cos * x + sin * rotate_half(x).",
        ),
        F(
            "custom",
            "rotfirst",
            rope_order_rot_first,
            variants=["rotate_half", "operand_order", "computed_bounds"],
            notes="rotate_half(x) * sin + x * cos.",
        ),
        F(
            "custom",
            "halfexplicit",
            rope_half_explicit,
            tables="half",
            variants=["half_tables", "explicit_halves"],
            notes="non-interleaved with half tables: cat((x1*cos - x2*sin, x2*cos + x1*sin)) "
            "(no rotate_half).",
        ),
        F(
            "custom",
            "blhd",
            rope_rh,
            layout="BLHD",
            variants=["rotate_half"],
            notes="x in [B,L,H,D]; tables [B,L,1,D] (unsqueeze(2)); RoPE applied before the transpose "
            "to BHLD.",
        ),
        F(
            "custom",
            "gather",
            rope_rh,
            table_src="gather",
            variants=["rotate_half"],
            notes="cos/sin gathered from constant [max_pos, D] caches by position_ids.",
        ),
        F(
            "custom",
            "ilunbind",
            rope_il_unbind,
            interleaved=1,
            tables="half",
            variants=["interleaved", "reshape_pairs", "half_tables", "unbind"],
            notes="x.reshape(..., D/2, 2).unbind(-1); stack(...,-1).flatten(-2).",
        ),
        F(
            "custom",
            "ilindex",
            rope_il_index,
            interleaved=1,
            tables="half",
            variants=["interleaved", "reshape_pairs", "half_tables", "index"],
            notes="x.reshape(..., D/2, 2) then [..., 0] / [..., 1]; stack(...,-1).flatten(-2).",
        ),
        F(
            "custom",
            "ilsplit",
            rope_il_split,
            interleaved=1,
            tables="half",
            variants=["interleaved", "reshape_pairs", "half_tables", "split"],
            notes="x.reshape(..., D/2, 2), torch.split(.., 1, -1) + squeeze(-1); stack(...,-1).flatten(-2).",
        ),
        F(
            "custom",
            "ilfull",
            rope_il_full,
            interleaved=1,
            tables="full_il",
            variants=["interleaved", "step2_slices", "stack_flatten_tables"],
            notes="GPT-J rotate_every_two with full-width pair-repeated tables "
            "(stack((f,f),-1).flatten(-2)): x*cos + "
            "stack((-x[...,1::2], x[...,::2]),-1).flatten(-2)*sin.",
        ),
        F(
            "custom",
            "ilblhdgather",
            rope_il_full,
            interleaved=1,
            tables="full_il",
            table_src="gather",
            layout="BLHD",
            variants=["interleaved", "step2_slices"],
            notes="interleaved, [B,L,H,D], tables gathered from constant repeat-interleaved caches.",
        ),
    ]


def all_fixtures() -> list:
    return hf_fixtures() + variant_fixtures()


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


def _example(fx: Fixture, dtype: torch.dtype) -> dict:
    _seed_all(1)
    return fx.make_inputs(2, 7, dtype)


def export_ts(fx: Fixture, module: nn.Module, dtype: torch.dtype, path: str) -> None:
    ex = _example(fx, dtype)
    dyn = {**fx.dynamic, **fx.output_dynamic}
    with torch.no_grad():
        torch.onnx.export(
            module,
            tuple(ex.values()),
            path,
            dynamo=False,
            opset_version=TS_OPSET,
            input_names=list(ex.keys()),
            output_names=fx.output_names,
            dynamic_axes=dyn,
            do_constant_folding=True,
        )


def export_dynamo(fx: Fixture, module: nn.Module, dtype: torch.dtype, path: str) -> None:
    from torch.export import Dim

    ex = _example(fx, dtype)
    dims: dict = {}

    def dim(name):
        if name not in dims:
            dims[name] = Dim(name)
        return dims[name]

    # total_seq (attention_mask of the KV-cache model) is its own symbol; export accepts it and names the
    # present k/v length "past_seq + seq".
    dyn = {k: {ax: dim(n) for ax, n in v.items()} for k, v in fx.dynamic.items()}
    with torch.no_grad():
        prog = torch.onnx.export(
            module,
            tuple(ex.values()),
            dynamo=True,
            input_names=list(ex.keys()),
            output_names=fx.output_names,
            dynamic_shapes=dyn,
            verbose=False,
        )
    prog.save(path, external_data=False)


def _postprocess(path: str) -> None:
    """Make the file self-contained and drop bulky per-node stack traces."""
    import onnx

    m = onnx.load(path, load_external_data=True)
    for n in m.graph.node:
        keep = [p for p in n.metadata_props if p.key not in DROP_NODE_METADATA]
        del n.metadata_props[:]
        n.metadata_props.extend(keep)
    tmp = path + ".tmp"
    onnx.save(m, tmp, save_as_external_data=False)
    os.replace(tmp, path)
    data = path + ".data"
    if os.path.exists(data):
        os.remove(data)


def _io_record(path: str) -> tuple:
    import onnx

    m = onnx.load(path, load_external_data=False)

    def rec(vis):
        shapes, dtypes = {}, {}
        for v in vis:
            t = v.type.tensor_type
            shapes[v.name] = [
                d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
                for d in t.shape.dim
            ]
            dtypes[v.name] = ONNX_ELEM.get(t.elem_type, str(t.elem_type))
        return shapes, dtypes

    ins, in_dt = rec(m.graph.input)
    outs, out_dt = rec(m.graph.output)
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    return ins, in_dt, outs, out_dt, opset


@contextlib.contextmanager
def _quiet():
    """Silence exporter chatter, including what C++ writes straight to fd 1/2 (TorchScript IR dumps)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _short_error(e: BaseException) -> str:
    msg = f"{type(e).__name__}: {e}".strip().splitlines()
    msg = [ln for ln in msg if ln.strip()]
    return " | ".join(msg[:3])[:400]


def export_one(fx: Fixture, exporter: str, dtype_name: str, out_dir: str, verbose: bool) -> dict:
    path = os.path.join(out_dir, fx.file(exporter, dtype_name))
    dtype = DTYPES[dtype_name]
    entry = {
        "file": fx.file(exporter, dtype_name),
        "family": fx.family,
        "variant": fx.variant,
        "exporter": "torchscript" if exporter == "ts" else "dynamo",
        "opset": None,
        "dtype": {"fp32": "float32", "fp16": "float16"}[dtype_name],
        "layout": fx.layout,
        "interleaved": fx.interleaved,
        "head_dim": fx.head_dim,
        "rotary_dim": fx.rotary_dim,
        "num_layers": fx.num_layers,
        "expected_sites": fx.expected_sites,
        "variants": list(fx.variants) + (["fp16"] if dtype_name == "fp16" else []),
        "notes": fx.notes,
    }
    if "hf_class" in fx.extra:
        entry["source"] = f"transformers.{fx.extra['hf_class']} (random weights, tiny config)"
        entry["config"] = fx.extra["config"]
    else:
        entry["source"] = "models/export_fixtures.py RopeModel (hand-written torch module)"
    try:
        module = fx.build(dtype)
        ctx = _quiet() if not verbose else contextlib.nullcontext()
        with ctx:
            if exporter == "ts":
                export_ts(fx, module, dtype, path)
            else:
                export_dynamo(fx, module, dtype, path)
        _postprocess(path)
    except Exception as e:  # recorded in the manifest, never faked
        for p in (path, path + ".data", path + ".tmp"):
            if os.path.exists(p):
                os.remove(p)
        entry["file"] = None
        entry["export_error"] = _short_error(e)
        if verbose:
            traceback.print_exc()
        return entry
    ins, in_dt, outs, out_dt, opset = _io_record(path)
    entry.update(
        opset=opset,
        inputs=ins,
        input_dtypes=in_dt,
        outputs=outs,
        output_dtypes=out_dt,
        size_bytes=os.path.getsize(path),
    )
    return entry


# --------------------------------------------------------------------------------------------------
# Check
# --------------------------------------------------------------------------------------------------

CHECK_SHAPES = ((2, 5), (3, 11))  # (batch, seq): two different sequence lengths (and batches)
TOL = {"float32": (1e-4, 1e-4), "float16": (2e-2, 2e-2)}


def check_one(fx: Fixture, entry: dict, out_dir: str) -> tuple:
    import onnx
    import onnxruntime as ort

    path = os.path.join(out_dir, entry["file"])
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    dtype = DTYPES["fp16" if entry["dtype"] == "float16" else "fp32"]
    module = fx.build(dtype)
    atol, rtol = TOL[entry["dtype"]]
    worst = []
    shapes = CHECK_SHAPES
    if "kv_cache" in fx.variants:
        shapes = ((2, 1), (3, 6))  # decode step (seq 1) and a chunk; past = seq + 3
    for i, (b, s) in enumerate(shapes):
        _seed_all(100 + i)
        feeds = fx.make_inputs(b, s, dtype)
        with torch.no_grad():
            ref = module(*feeds.values())
        ref = ref if isinstance(ref, (tuple, list)) else (ref,)
        got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})
        for name, r, g in zip(entry.get("output_names", fx.output_names), ref, got, strict=False):
            r = r.float().numpy()
            g = g.astype(np.float32)
            if r.shape != g.shape:
                raise AssertionError(f"{name}: shape {g.shape} != torch {r.shape} at batch={b} seq={s}")
            err = float(np.max(np.abs(r - g))) if r.size else 0.0
            lim = atol + rtol * float(np.max(np.abs(r))) if r.size else atol
            worst.append((err, name, b, s))
            if err > lim:
                raise AssertionError(f"{name}: max abs err {err:.3g} > {lim:.3g} at batch={b} seq={s}")
    e = max(worst)
    signs = sign_nodes(m)
    entry["sign_nodes"] = signs
    note = "" if signs == fx.expected_sites else f"; NOTE sign_nodes={signs} != expected_sites"
    return e[0], f"max_abs_err={e[0]:.3g} ({e[1]}), shapes={list(shapes)}{note}"


def sign_nodes(model) -> int:
    """Cross-check only (not the source of expected_sites): floating-point Neg, Sub and Mul-by-(-1) nodes.
    Every RoPE site in these fixtures carries exactly one (rotate_half's Neg, the explicit forms' Sub,
    or x * -1), and nothing else in these tiny models produces a float one."""
    import onnx
    from onnx import numpy_helper

    m = onnx.shape_inference.infer_shapes(model)
    g = m.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    elem = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)}
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    count = 0
    for n in g.node:
        if elem.get(n.output[0]) not in floats:
            continue
        if n.op_type in ("Neg", "Sub") or (
            n.op_type == "Mul"
            and any(
                i in consts and consts[i].size == 1 and float(consts[i].reshape(-1)[0]) == -1.0
                for i in n.input
            )
        ):
            count += 1
    return count


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        help="only fixtures whose <family>_<variant> name contains NAME (repeatable)",
    )
    ap.add_argument("--exporter", choices=["ts", "dynamo", "both"], default="both")
    ap.add_argument("--check", action="store_true", help="after exporting, verify every fixture")
    ap.add_argument("--check-only", action="store_true", help="verify fixtures on disk, do not export")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    logging.getLogger("torch").setLevel(logging.ERROR)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    fixtures = all_fixtures()
    if args.only:
        fixtures = [f for f in fixtures if any(o in f"{f.family}_{f.variant}" for o in args.only)]
    if args.list:
        for f in fixtures:
            for ex in ("ts", "dynamo"):
                for dt in f.dtypes:
                    print(f.file(ex, dt), f.expected_sites)
        return 0
    os.makedirs(args.out, exist_ok=True)
    man_path = os.path.join(args.out, "manifest.json")
    manifest = []
    if os.path.exists(man_path):
        with open(man_path) as fh:
            manifest = json.load(fh)
    by_key = {(e["family"], e["variant"], e["exporter"], e["dtype"]): e for e in manifest}
    exporters = ("ts", "dynamo") if args.exporter == "both" else (args.exporter,)
    failures = 0
    for fx in fixtures:
        for ex in exporters:
            for dt in fx.dtypes:
                key = (
                    fx.family,
                    fx.variant,
                    "torchscript" if ex == "ts" else "dynamo",
                    {"fp32": "float32", "fp16": "float16"}[dt],
                )
                if not args.check_only:
                    entry = export_one(fx, ex, dt, args.out, args.verbose)
                    by_key[key] = entry
                    status = (
                        f"exported {entry.get('size_bytes', 0) // 1024} KB"
                        if entry["file"]
                        else f"EXPORT FAILED: {entry['export_error']}"
                    )
                    print(f"{fx.file(ex, dt):48s} {status}", flush=True)
                entry = by_key.get(key)
                if (args.check or args.check_only) and entry and entry.get("file"):
                    try:
                        with _quiet():
                            _, msg = check_one(fx, entry, args.out)
                        entry["check"] = "ok: " + msg
                        print(f"{entry['file']:48s} check ok  {msg}", flush=True)
                    except Exception as e:
                        failures += 1
                        entry["check"] = "FAILED: " + _short_error(e)
                        print(f"{entry['file']:48s} CHECK FAILED {_short_error(e)}", flush=True)
                        if args.verbose:
                            traceback.print_exc()
    order = {(f.family, f.variant): i for i, f in enumerate(all_fixtures())}
    manifest = sorted(
        by_key.values(),
        key=lambda e: (
            order.get((e["family"], e["variant"]), 999),
            e["exporter"] != "torchscript",
            e["dtype"],
        ),
    )
    with open(man_path, "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
