#!/usr/bin/env python3
"""What a proven site costs, against what merely reading its facts costs (issue 17).

``python bench/site_reads.py bench/out/llama_70b/model.onnx [--repeat 5]``

Side by side, in one process, each on a fresh index (so every site's tensors are read cold, as a
new site's are in a pass), min CPU of ``--repeat`` rounds:

- **find_sites**: the whole candidate search, tracing and proofs (``rope_onnx.fusion.candidates``);
- **reads**: for the nodes of each site it proved, only the facts any evaluation of that site must
  read — each node's op type, domain, inputs, outputs and attribute bytes, and each tensor's dims,
  element type, constant, producer and consumer count.

Their ratio bounds what reusing one site's evaluation for the next could save: a reuse still has to
read those facts to know that the next site is the same computation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnx import ModelProto

    from rope_onnx.graph.index import GraphIndex

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _site_facts(index: GraphIndex, sites: list[list[int]]) -> int:
    """Read every fact of each site's nodes an evaluation needs; returns how many were read."""
    count = 0
    for i in (i for nodes in sites for i in nodes):
        node = index.nodes[i]
        facts: list[object] = [
            node.op_type,
            node.domain,
            tuple(node.input[:]),
            tuple(node.output[:]),
            tuple(a.SerializeToString() for a in node.attribute[:]),
        ]
        for name in (*node.input, *node.output):
            if name:
                facts += (
                    index.dims(name),
                    index.elem_type(name),
                    index.constant(name) is not None,
                    index.producer.get(name),
                    len(index.consumers.get(name, ())),
                )
        count += len(facts)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (min CPU is reported)")
    args = parser.parse_args(argv)
    from rope_onnx.fusion.candidates import find_sites
    from rope_onnx.fusion.collector import collector_paused
    from rope_onnx.graph.index import GraphIndex
    from rope_onnx.io.load import load_model

    @collector_paused
    def indexed(path: Path) -> tuple[ModelProto, GraphIndex]:
        """The model and its index as ``fuse_file`` makes them: the loader's names handed on."""
        loaded = load_model(path, need_external_data=True)
        return loaded.model, GraphIndex(loaded.model, names=loaded.names)

    search, reads = [], []
    sites: list[list[int]] = []
    facts = 0
    for _ in range(args.repeat):
        model, index = indexed(args.model)
        start = time.process_time()
        proven, _ = collector_paused(find_sites)(model, index)
        search.append(time.process_time() - start)
        sites = [sorted(site.nodes) for site in proven]
        _, fresh = indexed(args.model)
        start = time.process_time()
        facts = collector_paused(_site_facts)(fresh, sites)
        reads.append(time.process_time() - start)
    if not sites:
        print(f"{args.model}: no site proven; nothing to compare")
        return 1
    n, per_site = len(sites), sum(map(len, sites)) / len(sites)
    best_search, best_reads = min(search), min(reads)
    print(f"{args.model}: {n} sites, {per_site:.1f} nodes each, {facts} facts read; min CPU of {args.repeat}")
    print(f"  find_sites          {best_search * 1e3:8.1f} ms   {best_search / n * 1e6:6.0f} µs/site")
    print(f"  reads of the sites  {best_reads * 1e3:8.1f} ms   {best_reads / n * 1e6:6.0f} µs/site")
    print(f"  reads / find_sites  {best_reads / best_search:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
