"""``python -m rope_onnx`` runs the command line."""

import sys

from .cli import main

sys.exit(main())
