#!/bin/bash
# Build the RoPECustomer operator package custom_opp_<os>_<arch>.run -- needs the CANN toolkit.
#
#   ASCEND_HOME_PATH=/usr/local/Ascend/ascend-toolkit/latest ./build.sh [--soc Ascend910B2] [--vendor rope_onnx]
#
# It does what Huawei's framework-launch samples do: msopgen generates the project skeleton for the
# installed CANN version (cmake helpers, packaging scripts, generated CMakeLists), the op sources of this
# folder are copied over the generated templates, CMakePresets.json's compute units, vendor and CANN path
# are applied, and the generated build.sh packages it.  The result is copied to ./build_out/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
soc=Ascend910B2
vendor=rope_onnx
while [ $# -gt 0 ]; do
    case "$1" in
        --soc) soc=$2; shift 2 ;;
        --vendor) vendor=$2; shift 2 ;;
        *) echo "usage: $0 [--soc <exact chip, e.g. Ascend910B2>] [--vendor NAME]" >&2; exit 2 ;;
    esac
done
cann=${ASCEND_HOME_PATH:-${ASCEND_CANN_PACKAGE_PATH:-/usr/local/Ascend/ascend-toolkit/latest}}
# CANN's environment scripts are not `set -u` clean: <version>/bin/setenv.bash sources
# runtime/bin/setenv.bash, whose line 10 reads `param_mult_ver=$1` with no argument (CANN 8.1.RC1,
# public copy github.com/leideng/CANN-8.1.RC1 @551ed27c), so nounset (and errexit: the scripts are not
# written for it either) is lifted around the source only; a broken environment is caught just below.
# The toolkit-wide set_env.sh sits one level above <version>/latest (ascend-toolkit/set_env.sh).
if [ -f "$cann/bin/setenv.bash" ]; then
    env_script="$cann/bin/setenv.bash"
elif [ -f "$cann/../set_env.sh" ]; then
    env_script="$cann/../set_env.sh"
else
    echo "build.sh: no CANN toolkit at '$cann'; install CANN and set ASCEND_HOME_PATH" >&2
    exit 2
fi
set +eu
# shellcheck disable=SC1090
source "$env_script"
set -eu
command -v msopgen >/dev/null || { echo "build.sh: msopgen not on PATH after sourcing CANN's environment" >&2; exit 2; }

project="$here/build_project"
rm -rf "$project"
msopgen gen -i "$here/ro_pe_customer.json" -f onnx -c "ai_core-$soc" -lan cpp -out "$project"
# our sources replace the generated templates (the generated CMakeLists.txt files stay)
rm -f "$project"/framework/onnx_plugin/*.cc "$project"/framework/onnx_plugin/*.cpp
cp "$here"/op_host/*.cpp "$here"/op_host/*.h "$project/op_host/"
cp "$here"/op_kernel/*.cpp "$here"/op_kernel/*.h "$project/op_kernel/"
cp "$here"/framework/onnx_plugin/*.cc "$here"/framework/onnx_plugin/*.h "$project/framework/onnx_plugin/"
python3 - "$project/CMakePresets.json" "$here/CMakePresets.json" "$cann" "$vendor" <<'PY'
import json, sys
generated, ours, cann, vendor = sys.argv[1:]
data = json.load(open(generated))
want = json.load(open(ours))["configurePresets"][0]["cacheVariables"]
cache = data["configurePresets"][0]["cacheVariables"]
cache["ASCEND_COMPUTE_UNIT"] = want["ASCEND_COMPUTE_UNIT"]
cache["vendor_name"] = {"type": "STRING", "value": vendor}
cache["ASCEND_CANN_PACKAGE_PATH"] = {"type": "PATH", "value": cann}
json.dump(data, open(generated, "w"), indent=4)
PY
(cd "$project" && bash build.sh)
mkdir -p "$here/build_out"
cp "$project"/build_out/custom_opp_*.run "$here/build_out/"
ls -l "$here"/build_out/custom_opp_*.run
