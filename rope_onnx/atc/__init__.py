"""ATC integration: profiles (``atc_configs/``), pre-flight checks, the exact ``atc`` command, and
running it with the RoPECustomer package on an Ascend host."""

from .command import AtcCommand, build_command
from .convert import AtcResult, convert, plan
from .errors_map import diagnose
from .profile import Profile, load_profile

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
