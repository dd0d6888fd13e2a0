"""Names from a model, made safe to print on a terminal.

Tensor and node names are arbitrary strings chosen by whoever wrote the model.  Printed raw, an
escape sequence in a name can clear the screen, retitle the window or hide lines of the report;
so the human-readable tables show control characters escaped (``\\x1b``).  The JSON reports keep
names exact: they are data, read by programs.
"""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1, bidi overrides …) written as an escape."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or (char == " "):
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)
