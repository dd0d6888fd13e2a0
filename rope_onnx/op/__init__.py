"""The RoPECustomer op itself, defined once: :mod:`.contract` (name, attributes, dtypes, opsets every
part must agree on), :mod:`.reference` (its semantics in NumPy) and :mod:`.decomposition` (the same
semantics as ONNX functions, so ONNX Runtime can run a fused model)."""
