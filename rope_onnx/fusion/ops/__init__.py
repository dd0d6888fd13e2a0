"""What the pass knows about each ONNX op: one :class:`~rope_onnx.fusion.ops.base.OpRule` per op.

A rule says what a node of that op does to channel polynomials (``trace``), its rank and width
rules, its small-integer folding, its source-named output dims (``dims``, :mod:`.dimnames`) and
whether a site may end in it.  Rules live in one module per op family (``elementwise``,
``slicing``, ``concat``, ``axes``, ``reshape``, ``repeat``, ``branches``, ``shape_only``; the
documented ``com.microsoft`` ops, dims only, in ``contrib``); :mod:`.registry` collects them into
``RULES`` and ``DOMAIN_RULES``.  Adding an op is adding one rule to one module.
"""
