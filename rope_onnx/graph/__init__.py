"""Read-only facts about an ONNX graph: the index (producers, consumers, constants, inferred shapes
and types), typed attribute reads, small-integer folding of shape computations, and the ONNX
conventions (default domain, default opset, nested graphs) every part of rope-onnx shares.
"""
