/*
 * C ABI of the host-compiled RoPECustomer kernel, loaded by rope_onnx.kernel_sim through ctypes.
 * It runs the same tiling (op_host/rope_tiling_core.h) and the same kernel core (op_kernel/rope_core.h)
 * that the Ascend C package compiles, block after block, on the host backend.
 */
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "../op_host/rope_tiling_core.h"
#include "host_backend.h"

extern "C" {

struct RopeSimStats {
    uint64_t gmBytesRead, gmBytesWritten, minBytes, ubPeakBytes;
    uint32_t blocks, split, tileRows, chunkRows, P, Q, S, T, gatherSwap, usePad;
    uint64_t xCopies, xCopyMinBytes;  // x-in + y-out transfers (DataCopy calls), the smallest one in bytes
};

/* dtype: 0 float32, 1 float16, 2 bfloat16.  chipFlags: ROPE_CHIP_* bits (host_backend.h).  Returns 0 on
 * success, 1 when the shapes or attributes are rejected (the message says why), 2 when the kernel broke a
 * hardware rule (a bug). */
int rope_sim_run(int dtype, const void *x, const int64_t *xShape, int xRank, const void *cosTab,
                 const int64_t *cosShape, int cosRank, const void *sinTab, const int64_t *sinShape, int sinRank,
                 void *y, int interleaved, int rotaryDim, uint32_t cores, uint64_t ubBytes, int chipFlags,
                 RopeSimStats *stats, char *err, int errLen)
{
    std::memset(stats, 0, sizeof(*stats));
    RopeShapes in{};
    in.xRank = xRank;
    in.cosRank = cosRank;
    in.sinRank = sinRank;
    RopeError e{};
    if (xRank > ROPE_MAX_RANK || cosRank > ROPE_MAX_RANK || sinRank > ROPE_MAX_RANK || dtype < 0 || dtype > 2) {
        std::snprintf(err, errLen, "rank above %d or unknown dtype", ROPE_MAX_RANK);
        return 1;
    }
    for (int i = 0; i < xRank; ++i) {
        in.x[i] = xShape[i];
    }
    for (int i = 0; i < cosRank; ++i) {
        in.cos[i] = cosShape[i];
    }
    for (int i = 0; i < sinRank; ++i) {
        in.sin[i] = sinShape[i];
    }
    in.interleaved = interleaved;
    in.rotaryDim = rotaryDim;
    in.eltBytes = dtype == 0 ? 4 : 2;
    RopeChipLimits chip{cores, ubBytes, (chipFlags & ROPE_CHIP_DATA_COPY_PAD) != 0};
    RopeParams p{};
    if (!RopeMakeParams(in, chip, p, e)) {
        std::snprintf(err, errLen, "%s", e.text);
        return 1;
    }
    if ((chipFlags & ROPE_SIM_ONE_RUN_PER_COPY) != 0) {
        p.stridedRuns = 0;
    }
    uint64_t xElems = 1, tElems = 1;
    for (int i = 0; i < xRank; ++i) {
        xElems *= static_cast<uint64_t>(in.x[i]);
    }
    for (int i = 0; i < cosRank; ++i) {
        tElems *= static_cast<uint64_t>(in.cos[i]);
    }
    HostGm gm;
    gm.data[ROPE_GM_X] = static_cast<uint8_t *>(const_cast<void *>(x));
    gm.data[ROPE_GM_COS] = static_cast<uint8_t *>(const_cast<void *>(cosTab));
    gm.data[ROPE_GM_SIN] = static_cast<uint8_t *>(const_cast<void *>(sinTab));
    gm.data[ROPE_GM_Y] = static_cast<uint8_t *>(y);
    gm.elems[ROPE_GM_X] = gm.elems[ROPE_GM_Y] = xElems;
    gm.elems[ROPE_GM_COS] = gm.elems[ROPE_GM_SIN] = tElems;
    gm.yWrites.assign(xElems, 0);
    for (uint32_t b = 0; b < p.blocks; ++b) {
        if (dtype == 0) {
            HostBackend<float> be(gm, ubBytes, chipFlags);
            RopeCore<HostBackend<float>, float>(be, p).Run(b);
        } else if (dtype == 1) {
            HostBackend<RopeHalf> be(gm, ubBytes, chipFlags);
            RopeCore<HostBackend<RopeHalf>, RopeHalf>(be, p).Run(b);
        } else {
            HostBackend<RopeBf16> be(gm, ubBytes, chipFlags);
            RopeCore<HostBackend<RopeBf16>, RopeBf16>(be, p).Run(b);
        }
        if (!gm.violation.empty()) {
            break;
        }
    }
    if (gm.violation.empty()) {
        for (uint64_t i = 0; i < xElems; ++i) {
            if (gm.yWrites[i] != 1) {
                gm.Violate("y element " + std::to_string(i) + " written " + std::to_string(gm.yWrites[i]) + " times");
                break;
            }
        }
    }
    stats->gmBytesRead = gm.bytesRead;
    stats->gmBytesWritten = gm.bytesWritten;
    stats->minBytes = RopeMinBytes(in, p);
    stats->ubPeakBytes = gm.ubPeak;
    stats->blocks = p.blocks;
    stats->split = p.split;
    stats->tileRows = p.tileRows;
    stats->chunkRows = p.chunkRows;
    stats->P = p.P;
    stats->Q = p.Q;
    stats->S = p.S;
    stats->T = p.T;
    stats->gatherSwap = p.gatherSwap;
    stats->usePad = p.usePad;
    stats->xCopies = gm.xCopies;
    stats->xCopyMinBytes = gm.xCopyMin;
    if (!gm.violation.empty()) {
        std::snprintf(err, errLen, "hardware rule broken: %s", gm.violation.c_str());
        return 2;
    }
    return 0;
}

void rope_sim_float_to_half(const float *in, uint16_t *out, uint64_t n)
{
    for (uint64_t i = 0; i < n; ++i) {
        out[i] = RopeFloatToHalf(in[i]);
    }
}

void rope_sim_half_to_float(const uint16_t *in, float *out, uint64_t n)
{
    for (uint64_t i = 0; i < n; ++i) {
        out[i] = RopeHalfToFloat(in[i]);
    }
}

void rope_sim_float_to_bf16(const float *in, uint16_t *out, uint64_t n)
{
    for (uint64_t i = 0; i < n; ++i) {
        out[i] = RopeFloatToBf16(in[i]);
    }
}

}  // extern "C"
