"""Property test of the hostile-facts generator (:func:`strategies.trust_cases`) against its oracle.

Wrapping integer bounds, int64 overflow, tables broadcasting with other symbols and pre-existing
RoPECustomer nodes and functions: each draw says what ONNX implies (fuse, refuse, or fuse only
exactly); the oracle holds the pass to it.  CI runs a small derandomized sample; the seeded
10,000-example run is ``scripts/property_sweep.py --kinds trust``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from property_oracle import check_trust
from strategies import TrustCase, trust_cases

EXAMPLES = int(os.environ.get("ROPE_ONNX_TRUST_EXAMPLES", "40"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(trust_cases())
def test_hostile_facts_never_make_a_wrong_fusion(case: TrustCase) -> None:
    check_trust(case)
