#!/usr/bin/env python3
"""Export the RoPE families and spellings beyond export_fixtures.py's set (issue 12), same machinery.

Tiny random-weight configs (hidden 32, 2 heads x 16, 2 layers, vocab 32), both exporters, fp32, checked
against torch on ORT CPU exactly as export_fixtures.py checks its own fixtures.  Entries go to
``fixtures/manifest_families.json`` (same schema as manifest.json, plus ``items``: the issue-12 items
the fixture exercises).  An export that fails is recorded with its error, never faked.

  * HF families transformers 5.24 has: DeepSeek-V3 (``rope_interleave=True``: de-interleaved output),
    Cohere (interleaved rotate_half, repeat_interleave tables), CodeGen (GPT-J-like), Nemotron and
    Persimmon (partial), ERNIE-4.5, Helium, OLMo2, Granite, StarCoder2, Gemma3 text.
  * Hand-written spellings: ``Mul`` by an all -1 ``[1,1,1,1]`` tensor, caches sliced at run time
    (``cos_cached[:, :, :seq_len]``), Meta's real-arithmetic reference (5-D ``[B,L,H,D/2,2]`` root that
    is the q/k Reshape itself, unbind -> Split+Squeeze under TorchScript), ChatGLM's pair Reshape (tables
    ``view(-1, sq, 1, R/2, 2)``, partial R = D/2).
  * ``onnxscript`` ``@script`` model whose Slice bounds carry ``CastLike`` (written by onnxscript, not by
    torch): see models/export_onnxscript.py.

Usage:
  python models/export_families.py [--only NAME] [--exporter ts|dynamo|both]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_fixtures as ef

MANIFEST = os.path.join(ef.os.path.dirname(os.path.abspath(__file__)), "fixtures", "manifest_families.json")
L = ef.LLAMA_CFG


def _hf(
    family,
    variant,
    cls,
    cfg_cls,
    cfg,
    *,
    interleaved=0,
    head_dim=16,
    rotary_dim=16,
    variants=(),
    items=(),
    notes="",
):
    fx = ef.hf_fixture(
        family,
        variant,
        cls,
        cfg_cls,
        cfg,
        layout="BHLD",
        interleaved=interleaved,
        head_dim=head_dim,
        rotary_dim=rotary_dim,
        variants=list(variants),
        notes=notes,
    )
    fx.extra["items"] = list(items)
    return fx


def _deepseek(variant: str, rope: int, interleave: bool, notes: str) -> ef.Fixture:
    """DeepSeek-V3 (MLA, dense layers only) with ``qk_rope_head_dim=rope`` of a 16 + rope channel q head."""
    return _hf(
        "deepseekv3",
        variant,
        "DeepseekV3ForCausalLM",
        "DeepseekV3Config",
        dict(
            L,
            num_key_value_heads=2,
            kv_lora_rank=16,
            q_lora_rank=16,
            qk_rope_head_dim=rope,
            qk_nope_head_dim=16,
            v_head_dim=16,
            moe_intermediate_size=16,
            n_routed_experts=4,
            num_experts_per_tok=2,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=2,  # dense layers only: no data-dependent routing in the graph
            rope_interleave=interleave,
        ),
        interleaved=int(interleave),
        head_dim=rope,  # the rotated part: what each fused op reads (q's 16 pass-through channels are joined)
        rotary_dim=rope,
        variants=["interleaved", "step2_slices", "deinterleaved_output", "half_tables", "passthrough_first"]
        if interleave
        else ["rotate_half", "passthrough_first"],
        items=[4],
        notes=notes,
    )


def hf_families() -> list:
    partial50 = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}
    return [
        _hf(
            "deepseekv3",
            "interleave",
            "DeepseekV3ForCausalLM",
            "DeepseekV3Config",
            dict(
                L,
                num_key_value_heads=2,
                kv_lora_rank=16,
                q_lora_rank=16,
                qk_rope_head_dim=16,
                qk_nope_head_dim=16,
                v_head_dim=16,
                moe_intermediate_size=16,
                n_routed_experts=4,
                num_experts_per_tok=2,
                n_group=1,
                topk_group=1,
                first_k_dense_replace=2,  # dense layers only: no data-dependent routing in the graph
                rope_interleave=True,
            ),
            interleaved=1,
            variants=["interleaved", "step2_slices", "deinterleaved_output", "half_tables"],
            items=[4],
            notes="rope_interleave=True: cat(x[0::2]*c - x[1::2]*s, x[1::2]*c + x[0::2]*s): an interleaved "
            "rotation whose output channels are de-interleaved (evens first). q_rot and k_rot (single "
            "head, MLA) per layer.",
        ),
        _deepseek(
            "rope8",
            8,
            True,
            "rope_interleave=True with qk_rope_head_dim=8 != qk_nope_head_dim=16: the q head is 24 channels, "
            "cat(q_pass[16], de-interleaved rotation[8]) (one Concat under TorchScript); k_rot is 8 wide.",
        ),
        _deepseek(
            "nointerleave",
            16,
            False,
            "rope_interleave=False: rotate_half on q_rot, then cat(q_pass, q_rot): the pass-through channels "
            "first around a rotation that is a tensor of its own.",
        ),
        _hf(
            "cohere",
            "base",
            "CohereForCausalLM",
            "CohereConfig",
            dict(L),
            interleaved=1,
            variants=["interleaved", "step2_slices", "repeat_interleave_tables"],
        ),
        _hf(
            "codegen",
            "rot8",
            "CodeGenForCausalLM",
            "CodeGenConfig",
            dict(n_embd=32, n_inner=32, n_layer=2, n_head=2, rotary_dim=8, n_positions=128, n_ctx=128),
            interleaved=1,
            rotary_dim=8,
            variants=["interleaved", "step2_slices", "partial", "fused_qkv"],
        ),
        _hf(
            "nemotron",
            "partial50",
            "NemotronForCausalLM",
            "NemotronConfig",
            dict(L, num_key_value_heads=2, head_dim=16, rope_parameters=partial50),
            rotary_dim=8,
            variants=["rotate_half", "partial"],
        ),
        _hf(
            "persimmon",
            "partial50",
            "PersimmonForCausalLM",
            "PersimmonConfig",
            dict(
                hidden_size=32,
                intermediate_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                rope_parameters=partial50,
                tie_word_embeddings=True,
            ),
            rotary_dim=8,
            variants=["rotate_half", "partial", "fused_qkv"],
        ),
        _hf(
            "ernie45",
            "base",
            "Ernie4_5ForCausalLM",
            "Ernie4_5Config",
            dict(L, head_dim=16),
            interleaved=1,
            variants=["interleaved"],
        ),
        _hf(
            "helium",
            "base",
            "HeliumForCausalLM",
            "HeliumConfig",
            dict(L, head_dim=16),
            variants=["rotate_half"],
        ),
        _hf("olmo2", "base", "Olmo2ForCausalLM", "Olmo2Config", dict(L), variants=["rotate_half", "qk_norm"]),
        _hf("granite", "base", "GraniteForCausalLM", "GraniteConfig", dict(L), variants=["rotate_half"]),
        _hf(
            "starcoder2",
            "base",
            "Starcoder2ForCausalLM",
            "Starcoder2Config",
            dict(L),
            variants=["rotate_half", "qkv_bias"],
        ),
        _hf(
            "gemma3",
            "text",
            "Gemma3ForCausalLM",
            "Gemma3TextConfig",
            dict(L, head_dim=16, sliding_window=64),
            variants=["rotate_half", "local_global_rope"],
        ),
    ]


# ----- hand-written spellings -----------------------------------------------------------------------


def rope_mulneg1_tensor(x, cos, sin):
    """x2 * (-1) where the -1 is a [1,1,1,1] tensor (rank-preserving broadcast)."""
    neg = torch.full((1, 1, 1, 1), -1.0, dtype=x.dtype)
    return x * cos + torch.cat((x[..., 8:] * neg, x[..., :8]), dim=-1) * sin


class RuntimeCacheModel(nn.Module):
    """Old HF LLaMA rotary: constant [1,1,max,D] caches sliced at run time by the sequence length."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([ef.RopeAttention(ef.rope_rh, "BHLD") for _ in range(ef.NUM_LAYERS)])
        inv = 1.0 / (10000.0 ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16))
        f = torch.arange(128, dtype=torch.float32)[:, None] * inv[None, :]
        e = torch.cat((f, f), dim=-1)
        self.register_buffer("cos_cached", e.cos()[None, None], persistent=False)
        self.register_buffer("sin_cached", e.sin()[None, None], persistent=False)

    def forward(self, hidden_states, position_ids):
        seq_len = hidden_states.shape[1]
        cos = self.cos_cached[:, :, :seq_len].to(hidden_states.dtype)
        sin = self.sin_cached[:, :, :seq_len].to(hidden_states.dtype)
        h = hidden_states + 0 * position_ids.unsqueeze(-1).to(hidden_states.dtype)
        for layer in self.layers:
            h = layer(h, cos, sin)
        return h


class MetaAttention(nn.Module):
    """Meta's real-arithmetic reference: q_proj(h).view(B, L, H, D/2, 2) is the root, unbind(-1)."""

    def __init__(self):
        super().__init__()
        H, D = ef.V_HEADS, ef.V_HEAD_DIM
        self.q_proj = nn.Linear(ef.V_HIDDEN, H * D, bias=False)
        self.k_proj = nn.Linear(ef.V_HIDDEN, H * D, bias=False)
        self.v_proj = nn.Linear(ef.V_HIDDEN, H * D, bias=False)
        self.o_proj = nn.Linear(H * D, ef.V_HIDDEN, bias=False)

    @staticmethod
    def rope(x, cos, sin):  # x [B,L,H,D/2,2]; cos/sin [B,L,1,D/2]
        xr, xi = x.unbind(-1)
        return torch.stack((xr * cos - xi * sin, xr * sin + xi * cos), dim=-1).flatten(3)

    def forward(self, h, cos, sin):
        b, length, _ = h.shape
        H, D = ef.V_HEADS, ef.V_HEAD_DIM
        q = self.rope(self.q_proj(h).view(b, length, H, D // 2, 2), cos, sin).transpose(1, 2)
        k = self.rope(self.k_proj(h).view(b, length, H, D // 2, 2), cos, sin).transpose(1, 2)
        v = self.v_proj(h).view(b, length, H, D).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-1, -2)) / D**0.5, dim=-1)
        return h + self.o_proj((att @ v).transpose(1, 2).reshape(b, length, H * D))


class ChatGLMAttention(MetaAttention):
    """ChatGLM2/3 apply_rotary_pos_emb: rot_dim = D/2, x.reshape(b, sq, np, R/2, 2), cache
    view(-1, sq, 1, R/2, 2) (its batch dim a -1 Reshape), stack/flatten, cat with the pass-through."""

    @staticmethod
    def glm_rope(x, rope_cache):  # x [B,L,H,D]; rope_cache [B,L,R/2,2]
        b, sq, np_, _ = x.shape
        rot_dim = rope_cache.shape[-2] * 2
        x, x_pass = x[..., :rot_dim], x[..., rot_dim:]
        xshaped = x.reshape(b, sq, np_, rot_dim // 2, 2)
        rope_cache = rope_cache.view(-1, sq, 1, xshaped.size(3), 2)
        x_out2 = torch.stack(
            [
                xshaped[..., 0] * rope_cache[..., 0] - xshaped[..., 1] * rope_cache[..., 1],
                xshaped[..., 1] * rope_cache[..., 0] + xshaped[..., 0] * rope_cache[..., 1],
            ],
            -1,
        )
        return torch.cat((x_out2.flatten(3), x_pass), dim=-1)

    def forward(self, h, cache, _unused=None):
        b, length, _ = h.shape
        H, D = ef.V_HEADS, ef.V_HEAD_DIM
        q = self.glm_rope(self.q_proj(h).view(b, length, H, D), cache).transpose(1, 2)
        k = self.glm_rope(self.k_proj(h).view(b, length, H, D), cache).transpose(1, 2)
        v = self.v_proj(h).view(b, length, H, D).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-1, -2)) / D**0.5, dim=-1)
        return h + self.o_proj((att @ v).transpose(1, 2).reshape(b, length, H * D))


class PairModel(nn.Module):
    """hidden_states [B,L,32], position_ids [B,L] -> out; half tables [B,L,1,R/2] (Meta) or a ChatGLM
    rope cache [B,L,R/2,2] gathered from a constant [max, R/2, 2] by position_ids."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        attn = MetaAttention if kind == "meta" else ChatGLMAttention
        self.layers = nn.ModuleList([attn() for _ in range(ef.NUM_LAYERS)])
        rot = 16 if kind == "meta" else 8
        inv = 1.0 / (10000.0 ** (torch.arange(0, rot, 2, dtype=torch.float32) / rot))
        self.register_buffer("inv_freq", inv, persistent=False)
        f = torch.arange(128, dtype=torch.float32)[:, None] * inv[None, :]
        self.register_buffer("rope_cache", torch.stack((f.cos(), f.sin()), dim=-1), persistent=False)

    def forward(self, hidden_states, position_ids):
        h = hidden_states
        if self.kind == "meta":
            f = position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq
            cos, sin = f.cos().unsqueeze(2), f.sin().unsqueeze(2)
            for layer in self.layers:
                h = layer(h, cos, sin)
            return h
        cache = self.rope_cache[position_ids]
        for layer in self.layers:
            h = layer(h, cache)
        return h


def _custom(variant, build, *, layout, interleaved, rotary_dim, variants, items, notes) -> ef.Fixture:
    fx = ef.variant_fixture(
        "custom",
        variant,
        ef.rope_rh,
        variants=variants,
        layout=layout,
        interleaved=interleaved,
        rotary_dim=rotary_dim,
        notes=notes,
    )
    if build is not None:

        def _build(dt, build=build):
            ef._seed_all(0)
            return build().eval().to(dt)

        fx.build = _build
    fx.extra["items"] = list(items)
    return fx


def custom_families() -> list:
    neg = ef.variant_fixture(
        "custom",
        "mulneg1tensor",
        rope_mulneg1_tensor,
        variants=["rotate_half", "mul_neg1"],
        notes="x2 * torch.full((1,1,1,1), -1.0): an all -1 tensor that keeps the rank.",
    )
    neg.extra["items"] = [3]
    return [
        neg,
        _custom(
            "runtimecache",
            RuntimeCacheModel,
            layout="BHLD",
            interleaved=0,
            rotary_dim=16,
            variants=["rotate_half", "runtime_sliced_cache"],
            items=[3],
            notes="cos_cached[:, :, :seq_len] with seq_len = hidden_states.shape[1] (Shape at run time).",
        ),
        _custom(
            "metareal",
            lambda: PairModel("meta"),
            layout="BLHD",
            interleaved=1,
            rotary_dim=16,
            variants=["interleaved", "reshape_pairs", "half_tables", "unbind", "root_5d"],
            items=[3],
            notes="Meta real arithmetic: q_proj(h).view(B,L,H,D/2,2).unbind(-1); the 5-D view is the root.",
        ),
        _custom(
            "chatglm",
            lambda: PairModel("glm"),
            layout="BLHD",
            interleaved=1,
            rotary_dim=8,
            variants=["interleaved", "reshape_pairs", "partial", "pair_tables", "table_gather"],
            items=[3],
            notes="ChatGLM2/3 apply_rotary_pos_emb (rot_dim = D/2, cache view(-1, sq, 1, R/2, 2)).",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--exporter", choices=["ts", "dynamo", "both"], default="both")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    out = os.path.dirname(MANIFEST)
    fixtures = hf_families() + custom_families()
    if args.only:
        fixtures = [f for f in fixtures if any(o in f"{f.family}_{f.variant}" for o in args.only)]
    entries = {}
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as fh:
            entries = {(e["family"], e["variant"], e["exporter"], e["dtype"]): e for e in json.load(fh)}
    exporters = ("ts", "dynamo") if args.exporter == "both" else (args.exporter,)
    failures = 0
    for fx in fixtures:
        for ex in exporters:
            entry = ef.export_one(fx, ex, "fp32", out, args.verbose)
            entry["items"] = fx.extra.get("items", [])
            if entry["file"]:
                try:
                    with ef._quiet():
                        _, msg = ef.check_one(fx, entry, out)
                    entry["check"] = "ok: " + msg
                except Exception as e:  # recorded, the file is removed: never a fixture that lies
                    entry["check"] = "FAILED: " + ef._short_error(e)
                    os.remove(os.path.join(out, entry["file"]))
                    entry["export_error"], entry["file"] = entry["check"], None
            failures += entry["file"] is None
            status = entry.get("check") or entry.get("export_error")
            print(f"{fx.file(ex, 'fp32'):44s} {status}", flush=True)
            entries[(entry["family"], entry["variant"], entry["exporter"], entry["dtype"])] = entry
    order = {(f.family, f.variant): i for i, f in enumerate(hf_families() + custom_families())}
    with open(MANIFEST, "w") as fh:
        json.dump(
            sorted(
                entries.values(),
                key=lambda e: (order.get((e["family"], e["variant"]), 99), e["exporter"] != "torchscript"),
            ),
            fh,
            indent=1,
        )
        fh.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
