"""ATC integration: profiles (``atc_configs/``), pre-flight checks, the exact ``atc`` command, and
running it with the RoPECustomer package on an Ascend host."""

from rope_onnx.atc.command import AtcCommand, build_command
from rope_onnx.atc.convert import AtcResult, convert, plan
from rope_onnx.atc.errors_map import diagnose
from rope_onnx.atc.profile import Profile, load_profile

__all__ = [
    "AtcCommand",
    "AtcResult",
    "Profile",
    "build_command",
    "convert",
    "diagnose",
    "load_profile",
    "plan",
]
