/*
 * ATC ONNX parser plugin for RoPECustomer.  Released ATC parsers look a default-domain node up as
 * "ai.onnx::<opset>::RoPECustomer" (docs/ascend.md), so one key is registered per opset 11 .. 28 -- the
 * range rope_onnx.contract.SUPPORTED_OPSETS declares; a test keeps the two equal.
 *
 * Attributes arrive as one JSON string attribute named "attribute".  GE's serialisation omits an int
 * field whose value is 0, so an attribute that is present without "i" means 0 (interleaved=0 is the
 * Hugging Face layout and must not fall back to the default 1).
 */
#include <string>

#include "graph/operator.h"
#include "nlohmann/json.hpp"
#include "register/register.h"

namespace domi {
namespace {
using json = nlohmann::json;
constexpr int64_t DEFAULT_INTERLEAVED = 1;
constexpr int64_t DEFAULT_ROTARY_DIM = 0;

Status ParseRoPECustomer(const ge::Operator &opSrc, ge::Operator &opDest)
{
    int64_t interleaved = DEFAULT_INTERLEAVED;
    int64_t rotaryDim = DEFAULT_ROTARY_DIM;
    ge::AscendString text;
    if (opSrc.GetAttr("attribute", text) == ge::GRAPH_SUCCESS) {
        try {
            const json attrs = json::parse(text.GetString());
            if (attrs.contains("attribute") && attrs["attribute"].is_array()) {
                for (const json &attr : attrs["attribute"]) {
                    const std::string name = attr.value("name", "");
                    const int64_t value = attr.contains("i") ? attr["i"].get<int64_t>() : 0;
                    if (name == "interleaved") {
                        interleaved = value;
                    } else if (name == "rotary_dim") {
                        rotaryDim = value;
                    } else {
                        return FAILED;  // unknown attribute: E11010 rather than a silent wrong op
                    }
                }
            }
        } catch (...) {
            return FAILED;
        }
    }
    if ((interleaved != 0 && interleaved != 1) || rotaryDim < 0 || rotaryDim % 2 != 0) {
        return FAILED;
    }
    opDest.SetAttr("interleaved", interleaved);
    opDest.SetAttr("rotary_dim", rotaryDim);
    return SUCCESS;
}
}  // namespace

REGISTER_CUSTOM_OP("RoPECustomer")
    .FrameworkType(ONNX)
    .OriginOpType({ge::AscendString("ai.onnx::11::RoPECustomer"), ge::AscendString("ai.onnx::12::RoPECustomer"),
                   ge::AscendString("ai.onnx::13::RoPECustomer"), ge::AscendString("ai.onnx::14::RoPECustomer"),
                   ge::AscendString("ai.onnx::15::RoPECustomer"), ge::AscendString("ai.onnx::16::RoPECustomer"),
                   ge::AscendString("ai.onnx::17::RoPECustomer"), ge::AscendString("ai.onnx::18::RoPECustomer"),
                   ge::AscendString("ai.onnx::19::RoPECustomer"), ge::AscendString("ai.onnx::20::RoPECustomer"),
                   ge::AscendString("ai.onnx::21::RoPECustomer"), ge::AscendString("ai.onnx::22::RoPECustomer"),
                   ge::AscendString("ai.onnx::23::RoPECustomer"), ge::AscendString("ai.onnx::24::RoPECustomer"),
                   ge::AscendString("ai.onnx::25::RoPECustomer"), ge::AscendString("ai.onnx::26::RoPECustomer"),
                   ge::AscendString("ai.onnx::27::RoPECustomer"), ge::AscendString("ai.onnx::28::RoPECustomer")})
    .ParseParamsByOperatorFn(ParseRoPECustomer)
    .ImplyType(ImplyType::TVM);
}  // namespace domi
