"""Model I/O, one job per module: :mod:`.load` (graph-only loading, external references checked),
:mod:`.validate` (structure checks), :mod:`.atomic` (atomic writes, output path checks),
:mod:`.save` (saving with the input's data files shared), :mod:`.datafiles` (linking or copying them)."""
