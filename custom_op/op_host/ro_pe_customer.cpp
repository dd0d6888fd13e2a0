/*
 * RoPECustomer host side: op prototype (OpDef) with one config per chip family, InferShape,
 * InferDataType and TilingFunc.  Every decision is made by rope_tiling_core.h, which the host tests
 * compile with g++; this file only moves values between CANN's contexts and that code.
 */
#include "ro_pe_customer_tiling.h"
#include "register/op_def_registry.h"
#include "tiling/platform/platform_ascendc.h"
#include "rope_tiling_core.h"

namespace {
constexpr size_t ATTR_INTERLEAVED = 0;
constexpr size_t ATTR_ROTARY_DIM = 1;

bool FillShape(const gert::Shape &shape, int &rank, int64_t *dims)
{
    rank = static_cast<int>(shape.GetDimNum());
    if (rank > ROPE_MAX_RANK) {
        return false;
    }
    for (int i = 0; i < rank; ++i) {
        dims[i] = shape.GetDim(i);
    }
    return true;
}

/* GE writes an unknown-rank shape as the single dim -2 (CANN 8.1.RC1 include/graph/types.h:26, UNKNOWN_DIM_NUM). */
bool IsUnknownRank(const gert::Shape &shape)
{
    return shape.GetDimNum() == 1 && shape.GetDim(0) == -2;
}

bool HasUnknownDim(const RopeShapes &in)
{
    for (int i = 0; i < in.xRank; ++i) {
        if (in.x[i] < 0) {
            return true;
        }
    }
    for (int i = 0; i < in.cosRank; ++i) {
        if (in.cos[i] < 0 || in.sin[i] < 0) {
            return true;
        }
    }
    return false;
}

template <class Ctx> bool ReadAttrs(Ctx *context, RopeShapes &in)
{
    const gert::RuntimeAttrs *attrs = context->GetAttrs();
    if (attrs == nullptr) {
        return false;
    }
    const int64_t *interleaved = attrs->GetAttrPointer<int64_t>(ATTR_INTERLEAVED);
    const int64_t *rotary = attrs->GetAttrPointer<int64_t>(ATTR_ROTARY_DIM);
    in.interleaved = interleaved == nullptr ? 1 : *interleaved;
    in.rotaryDim = rotary == nullptr ? 0 : *rotary;
    return true;
}
}  // namespace

namespace optiling {
static ge::graphStatus TilingFunc(gert::TilingContext *context)
{
    auto platform = platform_ascendc::PlatformAscendC(context->GetPlatformInfo());
    uint64_t ubBytes = 0;
    platform.GetCoreMemSize(platform_ascendc::CoreMemType::UB, ubBytes);
    RopeChipLimits chip;
    chip.cores = platform.GetCoreNumAiv();
    chip.ubBytes = ubBytes;
    /* DataCopyPad is not available on the Atlas inference (310P) AI Core. */
    chip.hasDataCopyPad = platform.GetSocVersion() != platform_ascendc::SocVersion::ASCEND310P;

    RopeShapes in{};
    if (!FillShape(context->GetInputShape(0)->GetStorageShape(), in.xRank, in.x) ||
        !FillShape(context->GetInputShape(1)->GetStorageShape(), in.cosRank, in.cos) ||
        !FillShape(context->GetInputShape(2)->GetStorageShape(), in.sinRank, in.sin) || !ReadAttrs(context, in)) {
        return ge::GRAPH_FAILED;
    }
    in.eltBytes = context->GetInputDesc(0)->GetDataType() == ge::DT_FLOAT ? 4 : 2;
    RopeParams p{};
    RopeError err{};
    if (!RopeMakeParams(in, chip, p, err)) {
        printf("RoPECustomer tiling failed: %s\n", err.text);
        return ge::GRAPH_FAILED;
    }
    RoPECustomerTilingData tiling;
    tiling.set_rowLen(p.rowLen);
    tiling.set_rotary(p.rotary);
    tiling.set_halfRot(p.halfRot);
    tiling.set_rowStride(p.rowStride);
    tiling.set_tabStride(p.tabStride);
    tiling.set_rotStride(p.rotStride);
    tiling.set_interleaved(p.interleaved);
    tiling.set_gatherSwap(p.gatherSwap);
    tiling.set_P(p.P);
    tiling.set_Q(p.Q);
    tiling.set_S(p.S);
    tiling.set_T(p.T);
    tiling.set_split(p.split);
    tiling.set_blocks(p.blocks);
    tiling.set_perBlock(p.perBlock);
    tiling.set_remainder(p.remainder);
    tiling.set_tileRows(p.tileRows);
    tiling.set_chunkRows(p.chunkRows);
    tiling.set_usePad(p.usePad);
    tiling.set_tableBufs(p.tableBufs);
    tiling.set_stridedRuns(p.stridedRuns);
    context->SetBlockDim(p.blocks == 0 ? 1 : p.blocks);  // an empty x still launches one idle block
    tiling.SaveToBuffer(context->GetRawTilingData()->GetData(), context->GetRawTilingData()->GetCapacity());
    context->GetRawTilingData()->SetDataSize(tiling.GetDataSize());
    size_t *workspace = context->GetWorkspaceSizes(1);
    workspace[0] = platform.GetLibApiWorkSpaceSize();
    return ge::GRAPH_SUCCESS;
}
}  // namespace optiling

namespace ge {
static graphStatus InferShape(gert::InferShapeContext *context)
{
    /* y has x's shape, whatever is known of it: an unknown-rank x (shape {-2}, UNKNOWN_RANK) passes
     * through as Huawei's RotaryPositionEmbedding does (ops-transformer posembedding/
     * rotary_position_embedding/op_host/rotary_position_embedding_infershape.cpp:39, `*yShape = *xShape`)
     * -- the op declares DynamicRankSupportFlag(true) below -- and TilingFunc checks the real shapes. */
    const gert::Shape *xShape = context->GetInputShape(0);
    const gert::Shape *cosShape = context->GetInputShape(1);
    const gert::Shape *sinShape = context->GetInputShape(2);
    gert::Shape *yShape = context->GetOutputShape(0);
    if (xShape == nullptr || cosShape == nullptr || sinShape == nullptr || yShape == nullptr) {
        return GRAPH_FAILED;
    }
    RopeShapes in{};
    if (!ReadAttrs(context, in)) {
        return GRAPH_FAILED;
    }
    if (in.interleaved != 0 && in.interleaved != 1) {
        return GRAPH_FAILED;
    }
    const bool unknownRank = IsUnknownRank(*xShape) || IsUnknownRank(*cosShape) || IsUnknownRank(*sinShape);
    if (!unknownRank) {
        if (!FillShape(*xShape, in.xRank, in.x) || !FillShape(*cosShape, in.cosRank, in.cos) ||
            !FillShape(*sinShape, in.sinRank, in.sin)) {
            return GRAPH_FAILED;  // rank above 8
        }
        RopeError err{};
        int64_t rotary = 0;
        if (!HasUnknownDim(in)) {
            if (!RopeCheckShapes(in, rotary, err)) {
                printf("RoPECustomer InferShape: %s\n", err.text);
                return GRAPH_FAILED;  // odd rotary_dim, R > D, non-broadcastable tables, rank < 2
            }
        } else if (in.xRank < 2 || in.rotaryDim < 0 || in.rotaryDim % 2 != 0) {
            return GRAPH_FAILED;  // dynamic shape: check what is known now, tiling checks the rest
        }
    } else if (in.rotaryDim < 0 || in.rotaryDim % 2 != 0) {
        return GRAPH_FAILED;
    }
    *yShape = *xShape;
    return GRAPH_SUCCESS;
}

static graphStatus InferDataType(gert::InferDataTypeContext *context)
{
    const DataType dtype = context->GetInputDataType(0);
    if (context->GetInputDataType(1) != dtype || context->GetInputDataType(2) != dtype) {
        return GRAPH_FAILED;
    }
    context->SetOutputDataType(0, dtype);
    return GRAPH_SUCCESS;
}
}  // namespace ge

namespace ops {
class RoPECustomer : public OpDef {
public:
    explicit RoPECustomer(const char *name) : OpDef(name)
    {
        const std::vector<ge::DataType> all = {ge::DT_FLOAT16, ge::DT_FLOAT, ge::DT_BF16};
        const std::vector<ge::Format> nd3 = {ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND};
        for (const char *in : {"x", "cos", "sin"}) {
            this->Input(in).ParamType(REQUIRED).DataType(all).Format(nd3).UnknownShapeFormat(nd3);
        }
        this->Output("y").ParamType(REQUIRED).DataType(all).Format(nd3).UnknownShapeFormat(nd3);
        this->Attr("interleaved").AttrType(OPTIONAL).Int(1);
        this->Attr("rotary_dim").AttrType(OPTIONAL).Int(0);
        this->SetInferShape(ge::InferShape).SetInferDataType(ge::InferDataType);
        this->AICore().SetTiling(optiling::TilingFunc);

        /* chip: ascend910b dtypes: float16 float32 bfloat16 */
        AddChip("ascend910b", {ge::DT_FLOAT16, ge::DT_FLOAT, ge::DT_BF16});
        /* chip: ascend310p dtypes: float16 float32 (no bfloat16 unit) */
        AddChip("ascend310p", {ge::DT_FLOAT16, ge::DT_FLOAT});
    }

private:
    void AddChip(const char *soc, const std::vector<ge::DataType> &types)
    {
        const std::vector<ge::Format> nd(types.size(), ge::FORMAT_ND);
        OpAICoreConfig config;
        for (const char *in : {"x", "cos", "sin"}) {
            config.Input(in).ParamType(REQUIRED).DataType(types).Format(nd).UnknownShapeFormat(nd);
        }
        config.Output("y").ParamType(REQUIRED).DataType(types).Format(nd).UnknownShapeFormat(nd);
        /* Kernel file and entry pinned, as Huawei's ops pin opFile (ops-transformer posembedding/
         * rotary_position_embedding/op_host/rotary_position_embedding_def.cpp:50); CANN's build reads both
         * keys (ops-transformer cmake/scripts/util/opdesc_parser.py:341 opInterface.value, :345 opFile.value). */
        config.DynamicCompileStaticFlag(true)
            .DynamicRankSupportFlag(true)
            .DynamicShapeSupportFlag(true)
            .DynamicFormatFlag(false)
            .ExtendCfgInfo("opFile.value", "ro_pe_customer")
            .ExtendCfgInfo("opInterface.value", "ro_pe_customer");
        this->AICore().AddConfig(soc, config);
    }
};

OP_ADD(RoPECustomer);
}  // namespace ops
