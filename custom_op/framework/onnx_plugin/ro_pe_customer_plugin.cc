/*
 * ATC ONNX parser plugin for RoPECustomer, and for RoPEBuiltin: the same node marked by `rope-onnx`
 * (rope_onnx/atc/kernel_choice.py) for Huawei's built-in RotaryPositionEmbedding on chips that ship it.
 * Released ATC parsers look a default-domain node up as "ai.onnx::<opset>::<type>" (docs/ascend.md), so
 * one key is registered per opset 11 .. 28 for each type -- the range rope_onnx.op.contract.SUPPORTED_OPSETS
 * declares; a test keeps them equal.
 *
 * Attributes arrive as one JSON string attribute named "attribute".  GE's serialisation omits an int
 * field whose value is 0, so an attribute that is present without "i" means 0 (interleaved=0 is the
 * Hugging Face layout and must not fall back to the default 1).  The JSON is read by rope_attr_json.h
 * (plain C++, g++-tested here): CANN does not ship nlohmann/json.hpp to plugin authors.
 */
#include <string>

#include "graph/operator.h"
#include "register/register.h"
#include "rope_attr_json.h"

namespace domi {
namespace {
constexpr int64_t DEFAULT_INTERLEAVED = 1;
constexpr int64_t DEFAULT_ROTARY_DIM = 0;

Status ParseRoPECustomer(const ge::Operator &opSrc, ge::Operator &opDest)
{
    int64_t interleaved = DEFAULT_INTERLEAVED;
    int64_t rotaryDim = DEFAULT_ROTARY_DIM;
    ge::AscendString text;
    if (opSrc.GetAttr("attribute", text) == ge::GRAPH_SUCCESS) {
        RopeOnnxAttrs attrs;
        attrs.interleaved = DEFAULT_INTERLEAVED;
        attrs.rotaryDim = DEFAULT_ROTARY_DIM;
        std::string why;
        if (!RopeAttrJson(text.GetString()).Parse(attrs, why)) {
            return FAILED;  // malformed, or an unknown attribute: E11010 rather than a silent wrong op
        }
        interleaved = attrs.interleaved;
        rotaryDim = attrs.rotaryDim;
    }
    if ((interleaved != 0 && interleaved != 1) || rotaryDim < 0 || rotaryDim % 2 != 0) {
        return FAILED;
    }
    opDest.SetAttr("interleaved", interleaved);
    opDest.SetAttr("rotary_dim", rotaryDim);
    return SUCCESS;
}

/* RoPEBuiltin -> RotaryPositionEmbedding(x, cos, sin, mode): mode 0 rotates halves, 1 interleaved pairs
 * (ops-transformer posembedding/rotary_position_embedding/docs/aclnnRotaryPositionEmbedding.md:16, :32;
 * op_host/rotary_position_embedding_def.cpp:45 `Attr("mode")`), so mode = interleaved.  The built-in op
 * rotates the whole head: rope-onnx marks a node only with rotary_dim == D and writes rotary_dim 0, the
 * one value this plugin accepts -- it cannot see D, so anything else is refused rather than mis-mapped.
 * The plugin sees neither the chip nor the shapes; the choice is rope-onnx's (docs/device-check.md). */
Status ParseRoPEBuiltin(const ge::Operator &opSrc, ge::Operator &opDest)
{
    RopeOnnxAttrs attrs;
    attrs.interleaved = DEFAULT_INTERLEAVED;
    attrs.rotaryDim = DEFAULT_ROTARY_DIM;
    ge::AscendString text;
    if (opSrc.GetAttr("attribute", text) == ge::GRAPH_SUCCESS) {
        std::string why;
        if (!RopeAttrJson(text.GetString()).Parse(attrs, why)) {
            return FAILED;
        }
    }
    if ((attrs.interleaved != 0 && attrs.interleaved != 1) || attrs.rotaryDim != 0) {
        return FAILED;
    }
    opDest.SetAttr("mode", attrs.interleaved);
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

/* GE op type of Huawei's built-in op (CANN 8.1.RC1 opp/built-in/op_impl/ai_core/tbe/config/ascend910b/
 * aic-ascend910b-ops-info.json:58124; Huawei maps its own ONNX type NPURotaryPositionEmbedding onto it the
 * same way, REGISTER_CUSTOM_OP("RotaryPositionEmbedding") with a "mode" attribute). */
REGISTER_CUSTOM_OP("RotaryPositionEmbedding")
    .FrameworkType(ONNX)
    .OriginOpType({ge::AscendString("ai.onnx::11::RoPEBuiltin"), ge::AscendString("ai.onnx::12::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::13::RoPEBuiltin"), ge::AscendString("ai.onnx::14::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::15::RoPEBuiltin"), ge::AscendString("ai.onnx::16::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::17::RoPEBuiltin"), ge::AscendString("ai.onnx::18::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::19::RoPEBuiltin"), ge::AscendString("ai.onnx::20::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::21::RoPEBuiltin"), ge::AscendString("ai.onnx::22::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::23::RoPEBuiltin"), ge::AscendString("ai.onnx::24::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::25::RoPEBuiltin"), ge::AscendString("ai.onnx::26::RoPEBuiltin"),
                   ge::AscendString("ai.onnx::27::RoPEBuiltin"), ge::AscendString("ai.onnx::28::RoPEBuiltin")})
    .ParseParamsByOperatorFn(ParseRoPEBuiltin)
    .ImplyType(ImplyType::TVM);
}  // namespace domi
