"""What a candidate's cone can hold, from one pass in node order: products in reach, traced depth.

Two facts bound the work per candidate without changing what any proof says (issue 17):

* **product reach** — only ``Mul``/``If`` make degree-2 terms (``OpRule.makes_products``); every
  other traced op moves, negates or adds them, from the inputs it evaluates as channels
  (``OpRule.channel_inputs``: not a Reshape's target shape, which may hold a ``Mul`` of dims).  A
  candidate with no product within :data:`MAX_DEPTH` evaluates to sums of leaves, neither a site
  nor a near miss, so it is rejected untraced (a chain of head-sized Add/Neg nodes is thousands of
  those; the reshapes of v and of the repeated k/v heads, whose targets multiply dims, two per layer).
* **traced level** — the longest path of traced ops behind a tensor.  A candidate below
  ``MAX_DEPTH`` can never reach the tracer's depth limit; one above it (hand-built chains: no
  export has a level above 16) is traced within a band of levels (:func:`band_floor`), with the
  tensors below the band as its inputs.  A band does not depend on the candidate, so the leaves
  its candidates settle are shared, where the depth limit cut every candidate's cone differently
  and nothing could be shared (~60 channel evaluations per node).

The loader checks that nodes are in topological order, so one pass in node order sees every
producer before its consumers.
"""

from __future__ import annotations

from itertools import repeat

from rope_onnx.fusion.ops.registry import rule_for
from rope_onnx.graph.index import GraphIndex

__all__ = ["MAX_DEPTH", "band_floor", "cone_facts"]

#: Maximum length of one path back from a candidate's output (each step is a few Python frames,
#: so this also keeps the recursion far from Python's limit on any graph); the tracer's depth limit.
MAX_DEPTH = 120


def cone_facts(index: GraphIndex) -> tuple[dict[str, int], dict[str, int]]:
    """(reach, levels): per tensor, how many tensors behind it the nearest Mul/If is (only those
    within ``MAX_DEPTH``), and its traced level (1 + the highest level of its inputs, for outputs of
    ops the tracer follows).  ``levels`` is empty when no candidate in reach is deep enough to need it."""
    reach: dict[str, int] = {}
    levels: dict[str, int] = {}
    #: (op_type, domain) -> (0 untraced, 1 product, 2 followed; how many inputs carry channels)
    kinds: dict[tuple[str, str], tuple[int, int | None]] = {}
    deep = False
    for (domain, op_type, written, outputs, _), reads in zip(index.names, index.inputs, strict=True):
        key = (op_type, domain)
        found = kinds.get(key)
        if found is None:
            rule = rule_for(*key)
            kind = 0 if rule is None or rule.trace is None else 1 if rule.makes_products else 2
            found = kinds[key] = (kind, None if rule is None else rule.channel_inputs)
        kind, channels = found
        if not kind:
            continue  # the tracer makes its outputs leaves: no product comes through
        # the inputs the trace evaluates: a product behind a Reshape's target shape is no channel of it
        followed = reads if channels is None else [n for n in written[:channels] if n]
        # map over dict.get: no Python frame per input (a 200k-node chain: 0.95 -> 0.5 s)
        level = 1 + max(map(levels.get, reads, repeat(0))) if reads else 1
        if kind == 1:
            distance = 0
        elif followed:
            distance = 1 + min(map(reach.get, followed, repeat(MAX_DEPTH)))
        else:
            distance = 1 + MAX_DEPTH
        for name in outputs:
            levels[name] = level
            if distance < MAX_DEPTH:
                reach[name] = distance
                deep = deep or level >= MAX_DEPTH
    return reach, levels if deep else {}


def band_floor(level: int) -> int:
    """The lowest level a candidate of traced ``level`` follows (0: all; its cone is short).

    Bands are ``MAX_DEPTH`` levels wide, in two systems offset by half a band; a deep candidate
    takes the band in which it sits in the upper half, so at least ``MAX_DEPTH // 2`` levels of
    its cone are followed (a RoPE site spans 7-60 nodes) and fewer than ``MAX_DEPTH``: the depth
    limit is never reached.  Every candidate of one band shares its floor.
    """
    if level < MAX_DEPTH:
        return 0
    half = MAX_DEPTH // 2
    above = (level % MAX_DEPTH) if level % MAX_DEPTH >= half else (level - half) % MAX_DEPTH
    return level - above
