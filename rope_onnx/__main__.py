"""``python -m rope_onnx`` runs the command line."""

import sys

from rope_onnx.cli.app import main

sys.exit(main())
