"""The Ascend kernel on the host: :mod:`.chips` (each chip's core count and buffer sizes),
:mod:`.native` (building the C++ kernel core and tiling for the host) and :mod:`.sim` (running it
on arrays and measuring its memory traffic against the NumPy reference)."""
