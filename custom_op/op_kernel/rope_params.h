/*
 * RoPECustomer: the parameters the host tiling hands to every core, and the UB layout both sides
 * derive from them.  Plain C++ with no CANN dependency: op_host (TilingFunc), op_kernel (the Ascend C
 * kernel) and host_sim (the g++ harness behind `rope-onnx kernel-sim`) include this one file, so the
 * UB budget the tiling plans for is the layout the kernel allocates.
 */
#ifndef ROPE_PARAMS_H
#define ROPE_PARAMS_H

#ifdef ROPE_HOST
#include <cstdint>
#endif
#ifndef ROPE_DEVICE
#define ROPE_DEVICE inline
#endif

/* Work split.  TABLE_ROWS: each block owns a contiguous range of unique table rows and streams every x
 * row that uses them.  X_ROWS (decode: fewer table rows than cores): each block owns one table row and
 * a slice of the x rows that use it, so no core idles and each block still loads its row once. */
constexpr uint32_t ROPE_SPLIT_TABLE_ROWS = 0;
constexpr uint32_t ROPE_SPLIT_X_ROWS = 1;
constexpr uint32_t ROPE_UB_BLOCK = 32;   // bytes: UB address / plain DataCopy length granule
constexpr uint32_t ROPE_MAX_REP_STRIDE = 255;  // repeat stride field of vector instructions, in 32 B blocks
/* UB the tiling leaves unplanned, as Huawei's RoPE tiling does (ops-transformer
 * posembedding/rotary_position_embedding/op_host/rope_rotate_half_tiling.cpp:47, UB_RESERVE_SIZE = 2 KB). */
constexpr uint32_t ROPE_UB_RESERVE = 2048;
/* Counted Gather splits `count` into 64-float repeats held in a uint8_t (CANN 8.1.RC1
 * ascendc/include/basic_api/inner_interface/inner_kernel_operator_vec_gather_intf.cppm:175,
 * `const uint8_t repeatTimes = count / elementCountSingleRepeat`): more than 255 full repeats wrap. */
constexpr uint32_t ROPE_GATHER_MAX_COUNT = 255 * 64;
/* One GM<->UB transfer (one DataCopy / DataCopyPad call) moves `count` blocks: the DMA instruction's nBurst
 * is 12 bits (0..4095), its lenBurst and srcGap/dstGap 16-bit counts of 32 B blocks (CCE intrinsic
 * reference, general DMA move parameters: hiascend.com/document/detail/zh/CANNCommunityEdition/83RC1alpha002/
 * API/cceintrinsicapi/cceapi_0067.html; DataCopyParams' uint16_t fields, CANN 8.1.RC1 ascendc/include/
 * basic_api/interface/kernel_struct_data_copy.h:29).  DataCopyPad's DataCopyExtParams (910B) takes the
 * block length and the GM gap in bytes (uint32_t).  rope_core.h's RunsFit keeps every transfer inside. */
constexpr uint32_t ROPE_MAX_BURSTS = 4095;
constexpr uint32_t ROPE_MAX_BLOCKS16 = 65535;
/* float32 -> float16/bfloat16 rounding of the result (AscendC::RoundMode values, CANN 8.1.RC1
 * basic_api/impl/utils/kernel_utils_mode.h:168).  float -> half must be CAST_NONE: dav_m200 (310P) has
 * no CAST_RINT for it (impl/dav_m200/kernel_operator_vec_vconv_impl.h:230, an ASCENDC_ASSERT that is
 * empty on the device, impl/kernel_log.h:220; the Ascend310P3 platform config lists no f322f16r) and
 * CAST_NONE rounds to nearest even where precision is lost (Ascend C API reference, RoundMode).
 * float -> bfloat16 must be CAST_RINT: dav_c220 rejects CAST_NONE there (dav_c220 vconv impl :482). */
constexpr uint32_t ROPE_CAST_NONE = 0;
constexpr uint32_t ROPE_CAST_RINT = 1;

struct RopeParams {
    uint32_t rowLen;       // D: channels of an x row
    uint32_t rotary;       // R: rotated channels (even, <= D)
    uint32_t halfRot;      // R / 2 (not `half`: a built-in type of the device compiler, and CANN
                           // generates the kernel-side tiling struct from these names)
    uint32_t rowStride;    // UB stride of an x row, elements (D rounded up to 32 B)
    uint32_t tabStride;    // UB stride of a table row, elements (R rounded up to 32 B)
    uint32_t rotStride;    // float32 work stride of the rotary lanes (R rounded up to 8 floats = 32 B)
    uint32_t interleaved;  // 1: pairs (2i, 2i+1); 0: pairs (i, i + R/2)
    uint32_t gatherSwap;   // 1: partner channels by Gather (interleaved, or half layout with R/2 % 8 != 0)
    /* Normalised view of x's leading axes: x row = ((p*Q + q)*S + s)*T + t, table row = q*T + t.
     * P and S are broadcast (table size 1) axis groups, Q and T table axis groups. */
    uint32_t P, Q, S, T;
    uint32_t split;        // ROPE_SPLIT_*
    uint32_t blocks;       // cores launched
    uint32_t perBlock;     // TABLE_ROWS: table rows per block (floor); X_ROWS: blocks per table row
    uint32_t remainder;    // TABLE_ROWS: the first `remainder` blocks take one more table row
    uint32_t tileRows;     // table rows resident in UB at once
    uint32_t chunkRows;    // x rows per streamed chunk (one DMA in, one DMA out)
    uint32_t usePad;       // 1: DataCopyPad exists on this chip (910B); 0: plain 32 B-granular DataCopy only
    uint32_t tableBufs;    // cos/sin tiles resident at once: 2 when a block has more than one tile
                           // (the next tile loads while the current one is used), else 1
    uint32_t stridedRuns;  // 1 (the tiling's choice): runs of x rows T apart move as one strided transfer;
                           // 0: one transfer per run, the schedule before issue 14 (kept so the host
                           // simulator can measure both, bench/kernel_traffic.py)
};

struct RopeUbLayout {
    uint32_t xSlot, ySlot;     // one slot of the double-buffered x-in / y-out queues
    uint32_t cosT, sinT;       // one table tile in the I/O type (tabBufs of each)
    uint32_t tabBufs;
    uint32_t cosF, sinF;       // table tile in float32 (0 when the I/O type is float32)
    uint32_t xf, acc;          // float32 x / result rows, stride rowStride (0 for float32 I/O)
    uint32_t tmp;              // float32 partner*sin rows, stride rotStride: rotary lanes only
    uint32_t offs;             // Gather byte offsets, rotary lanes only (0 when not needed)
};

ROPE_DEVICE uint32_t RopeAlign32(uint64_t bytes)
{
    return static_cast<uint32_t>((bytes + ROPE_UB_BLOCK - 1) / ROPE_UB_BLOCK * ROPE_UB_BLOCK);
}

ROPE_DEVICE RopeUbLayout RopeLayout(const RopeParams &p, uint32_t elt)
{
    const bool f32 = elt == 4;
    const uint64_t xs = static_cast<uint64_t>(p.chunkRows) * p.rowStride;
    const uint64_t ts = static_cast<uint64_t>(p.tileRows) * p.tabStride;
    RopeUbLayout l;
    l.xSlot = RopeAlign32(xs * elt);
    l.ySlot = l.xSlot;
    l.cosT = RopeAlign32(ts * elt);
    l.sinT = l.cosT;
    l.tabBufs = p.tableBufs == 2 ? 2 : 1;
    l.cosF = f32 ? 0 : RopeAlign32(ts * 4);
    l.sinF = l.cosF;
    l.xf = f32 ? 0 : RopeAlign32(xs * 4);
    l.acc = l.xf;
    const uint64_t rs = static_cast<uint64_t>(p.chunkRows) * p.rotStride;
    l.tmp = RopeAlign32(rs * 4);
    l.offs = p.gatherSwap ? RopeAlign32(rs * 4) : 0;
    return l;
}

/* Double buffering: two slots each for x-in and y-out (TQue depth 2), tabBufs for cos and sin. */
ROPE_DEVICE uint64_t RopeUbBytes(const RopeUbLayout &l)
{
    return 2ull * l.xSlot + 2ull * l.ySlot + static_cast<uint64_t>(l.tabBufs) * (l.cosT + l.sinT) + l.cosF + l.sinF +
           l.xf + l.acc + l.tmp + l.offs;
}

#endif  // ROPE_PARAMS_H
