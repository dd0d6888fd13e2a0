/*
 * RoPECustomer tiling arithmetic, free of CANN: shape validation (the rules InferShape enforces),
 * normalisation of x and the broadcast tables to the 4-D view [P, Q, S, T], the work split across
 * cores, and tile sizes from the UB budget.  op_host/ro_pe_customer.cpp calls it from TilingFunc with
 * the core count and UB size PlatformAscendC reports; host_sim calls it with the chip table's values.
 */
#ifndef ROPE_TILING_CORE_H
#define ROPE_TILING_CORE_H

#include <cstdint>
#include <cstdio>

#include "../op_kernel/rope_params.h"

constexpr int ROPE_MAX_RANK = 8;

struct RopeChipLimits {
    uint32_t cores;      // vector-capable cores a kernel may use (GetCoreNumAiv)
    uint64_t ubBytes;    // Unified Buffer per core (GetCoreMemSize(UB)); the tiling plans ubBytes - 2 KB
    bool hasDataCopyPad; // 910B family yes; 310P AI Core no (public DataCopyPad support table)
};

/* The UB the tiling may plan: all of it less Huawei's 2 KB reserve (ROPE_UB_RESERVE). */
inline uint64_t RopeUbBudget(const RopeChipLimits &chip)
{
    return chip.ubBytes > ROPE_UB_RESERVE ? chip.ubBytes - ROPE_UB_RESERVE : 0;
}

/* Gather covers the rotary lanes of a whole chunk in one counted call: keep it under the uint8_t repeat
 * limit (ROPE_GATHER_MAX_COUNT floats). */
inline bool RopeGatherFits(const RopeParams &p)
{
    return !p.gatherSwap || static_cast<uint64_t>(p.chunkRows) * p.rotStride <= ROPE_GATHER_MAX_COUNT;
}

struct RopeShapes {
    int xRank, cosRank, sinRank;
    int64_t x[ROPE_MAX_RANK], cos[ROPE_MAX_RANK], sin[ROPE_MAX_RANK];
    int64_t interleaved, rotaryDim;
    uint32_t eltBytes;   // 2 (float16 / bfloat16) or 4 (float32)
};

struct RopeError {
    char text[320];
};

inline bool RopeFail(RopeError &err, const char *text, long long a = 0, long long b = 0)
{
    std::snprintf(err.text, sizeof(err.text), text, a, b);
    return false;
}

/* The checks InferShape makes.  On success rotary (R) is set. */
inline bool RopeCheckShapes(const RopeShapes &in, int64_t &rotary, RopeError &err)
{
    if (in.xRank < 2 || in.xRank > ROPE_MAX_RANK) {
        return RopeFail(err, "x must have rank 2..8, got rank %lld", in.xRank);
    }
    if (in.interleaved != 0 && in.interleaved != 1) {
        return RopeFail(err, "interleaved must be 0 or 1, got %lld", in.interleaved);
    }
    const int64_t D = in.x[in.xRank - 1];
    rotary = in.rotaryDim == 0 ? D : in.rotaryDim;
    if (rotary <= 0 || rotary % 2 != 0 || rotary > D) {
        return RopeFail(err, "rotary_dim %lld must be even with 0 < rotary_dim <= head dim %lld", rotary, D);
    }
    if (in.cosRank != in.sinRank) {
        return RopeFail(err, "cos (rank %lld) and sin (rank %lld) must have the same shape", in.cosRank,
                        in.sinRank);
    }
    if (in.cosRank < 1 || in.cosRank > ROPE_MAX_RANK) {
        return RopeFail(err, "cos/sin must have rank 1..8, got rank %lld", in.cosRank);
    }
    for (int i = 0; i < in.cosRank; ++i) {
        if (in.cos[i] != in.sin[i]) {
            return RopeFail(err, "cos and sin must have the same shape (they differ at axis %lld)", i);
        }
    }
    if (in.cos[in.cosRank - 1] != rotary) {
        return RopeFail(err, "cos/sin last dim must equal rotary_dim %lld, got %lld", rotary,
                        in.cos[in.cosRank - 1]);
    }
    for (int i = 1; i < in.cosRank; ++i) {  // align right against x's leading axes
        const int xi = in.xRank - 1 - i;
        const int64_t c = in.cos[in.cosRank - 1 - i];
        if (xi < 0) {
            if (c != 1) {
                return RopeFail(err, "cos/sin have more leading axes than x and axis size %lld is not 1", c);
            }
            continue;
        }
        if (c != 1 && c != in.x[xi]) {
            return RopeFail(err, "cos/sin axis of size %lld does not broadcast to x's axis of size %lld", c,
                            in.x[xi]);
        }
    }
    return true;
}

/* Leading axes of x grouped into alternating broadcast (table size 1) / table groups, fitted to
 * [P (bcast), Q (table), S (bcast), T (table)]. */
inline bool RopeNormalise(const RopeShapes &in, uint64_t view[4], RopeError &err)
{
    uint64_t groups[ROPE_MAX_RANK];
    int kinds[ROPE_MAX_RANK];
    int n = 0;
    for (int xi = 0; xi < in.xRank - 1; ++xi) {
        const int64_t size = in.x[xi];
        if (size == 1) {
            continue;
        }
        const int ci = in.cosRank - 1 - (in.xRank - 1 - xi);
        const int kind = (ci >= 0 && in.cos[ci] != 1) ? 1 : 0;  // 1: table axis
        if (n > 0 && kinds[n - 1] == kind) {
            groups[n - 1] *= static_cast<uint64_t>(size);
        } else {
            kinds[n] = kind;
            groups[n] = static_cast<uint64_t>(size);
            ++n;
        }
    }
    view[0] = view[1] = view[2] = view[3] = 1;
    /* Fill from the right so the innermost table group lands in T: the table row then advances with
     * the x row and one vector instruction covers a run of rows. */
    int slot = 3;
    for (int g = n - 1; g >= 0; --g) {
        while (slot >= 0 && (slot % 2) != kinds[g]) {
            --slot;  // slots alternate bcast (0, 2) / table (1, 3)
        }
        if (slot < 0) {
            return RopeFail(err, "x and cos/sin alternate between broadcast and table axes more than twice "
                                 "(%lld groups); merge or transpose axes before the op", n);
        }
        view[slot--] = groups[g];
    }
    return true;
}

/* Largest tile (at most a quarter of the UB budget for the tables), then the largest chunk beside it
 * that also keeps one counted Gather within its repeat limit. */
inline bool RopeFitTiles(RopeParams &p, uint32_t elt, uint64_t budget, uint64_t maxTile, uint64_t maxChunk,
                         uint64_t D, RopeError &err)
{
    p.tileRows = 1;
    p.chunkRows = 1;
    if (RopeUbBytes(RopeLayout(p, elt)) > budget) {
        return RopeFail(err, "one x row of %lld channels and one table row do not fit the %lld-byte UB budget",
                        (long long)D, (long long)budget);
    }
    uint64_t lo = 1, hi = maxTile < ROPE_MAX_BURSTS ? maxTile : ROPE_MAX_BURSTS;  // a tile's rows: one blockCount
    while (lo < hi) {
        const uint64_t mid = (lo + hi + 1) / 2;
        p.tileRows = static_cast<uint32_t>(mid);
        const RopeUbLayout l = RopeLayout(p, elt);
        const uint64_t tableBytes = static_cast<uint64_t>(l.tabBufs) * (l.cosT + l.sinT) + 2ull * l.cosF;
        if (tableBytes <= budget / 4 && RopeUbBytes(l) <= budget) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    p.tileRows = static_cast<uint32_t>(lo);
    lo = 1;
    hi = maxChunk < ROPE_MAX_BURSTS ? maxChunk : ROPE_MAX_BURSTS;  // a chunk's rows: one transfer's blockCount
    while (lo < hi) {
        const uint64_t mid = (lo + hi + 1) / 2;
        p.chunkRows = static_cast<uint32_t>(mid);
        if (RopeUbBytes(RopeLayout(p, elt)) <= budget && RopeGatherFits(p)) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    p.chunkRows = static_cast<uint32_t>(lo);
    return true;
}

/* Full tiling: fills params; false with a reason when the shape cannot be served. */
inline bool RopeMakeParams(const RopeShapes &in, const RopeChipLimits &chip, RopeParams &p, RopeError &err)
{
    int64_t R = 0;
    if (!RopeCheckShapes(in, R, err)) {
        return false;
    }
    uint64_t v[4];
    if (!RopeNormalise(in, v, err)) {
        return false;
    }
    for (int i = 0; i < 4; ++i) {
        if (v[i] > 0xffffffffull) {
            return RopeFail(err, "a normalised axis group of x has %lld rows, above 2^32", (long long)v[i]);
        }
    }
    const uint32_t elt = in.eltBytes;
    const uint32_t perBlock32 = ROPE_UB_BLOCK / elt;
    const uint64_t D = static_cast<uint64_t>(in.x[in.xRank - 1]);
    p = RopeParams{};
    p.rowLen = static_cast<uint32_t>(D);
    p.rotary = static_cast<uint32_t>(R);
    p.halfRot = p.rotary / 2;
    p.rowStride = static_cast<uint32_t>((D + perBlock32 - 1) / perBlock32 * perBlock32);
    p.tabStride = (p.rotary + perBlock32 - 1) / perBlock32 * perBlock32;
    p.rotStride = (p.rotary + 7) / 8 * 8;
    p.interleaved = static_cast<uint32_t>(in.interleaved);
    p.gatherSwap = (p.interleaved || p.halfRot % 8 != 0) ? 1 : 0;  // half-vectors need 32 B-aligned float rows
    p.P = static_cast<uint32_t>(v[0]);
    p.Q = static_cast<uint32_t>(v[1]);
    p.S = static_cast<uint32_t>(v[2]);
    p.T = static_cast<uint32_t>(v[3]);
    p.usePad = chip.hasDataCopyPad ? 1 : 0;
    p.stridedRuns = 1;
    if (static_cast<uint64_t>(p.rowStride) * 4 / ROPE_UB_BLOCK > ROPE_MAX_REP_STRIDE) {
        return RopeFail(err, "head dim %lld is above the vector repeat-stride limit (2040 channels)", (long long)D);
    }
    if (!chip.hasDataCopyPad && ((D * elt) % ROPE_UB_BLOCK != 0 || (p.rotary * elt) % ROPE_UB_BLOCK != 0)) {
        return RopeFail(err, "this chip has no DataCopyPad: head dim %lld and rotary_dim %lld must each be a "
                             "multiple of 32 bytes", (long long)D, (long long)p.rotary);
    }
    uint64_t rows = 1;
    for (int i = 0; i < in.xRank - 1; ++i) {
        rows *= static_cast<uint64_t>(in.x[i]);
    }
    const uint64_t U = static_cast<uint64_t>(p.Q) * p.T;
    if (rows == 0 || D == 0) {
        p.blocks = 0;  // empty x: nothing to move
        p.tileRows = p.chunkRows = 1;
        return true;
    }
    const uint32_t cores = chip.cores == 0 ? 1 : chip.cores;
    uint64_t xRowsPerTableRow = static_cast<uint64_t>(p.P) * p.S;
    if (U >= cores) {
        p.split = ROPE_SPLIT_TABLE_ROWS;
        p.blocks = cores;
        p.perBlock = static_cast<uint32_t>(U / cores);
        p.remainder = static_cast<uint32_t>(U % cores);
    } else {
        uint64_t k = cores / U;
        if (k > xRowsPerTableRow) {
            k = xRowsPerTableRow;
        }
        p.split = ROPE_SPLIT_X_ROWS;
        p.blocks = static_cast<uint32_t>(U * k);
        p.perBlock = static_cast<uint32_t>(k);
        p.remainder = 0;
    }
    /* Two table buffers when a block may need more than one tile; fit, and if one tile then covers the
     * whole range, fit again with one buffer (more room for x). */
    p.tableBufs = p.split == ROPE_SPLIT_TABLE_ROWS && (p.perBlock + (p.remainder ? 1 : 0)) > 1 ? 2 : 1;
    const uint64_t maxTile = p.split == ROPE_SPLIT_X_ROWS ? 1 : (U + p.blocks - 1) / p.blocks;
    if (!RopeFitTiles(p, elt, RopeUbBudget(chip), maxTile, rows, D, err)) {
        return false;
    }
    if (p.tableBufs == 2 && p.tileRows >= maxTile) {
        p.tableBufs = 1;
        return RopeFitTiles(p, elt, RopeUbBudget(chip), maxTile, rows, D, err);
    }
    return true;
}

/* The least global-memory traffic any schedule needs: x once, y once, and each table row once -- or
 * one table row per block when there are fewer table rows than blocks (decode). */
inline uint64_t RopeMinBytes(const RopeShapes &in, const RopeParams &p)
{
    uint64_t xElems = 1;
    for (int i = 0; i < in.xRank; ++i) {
        xElems *= static_cast<uint64_t>(in.x[i]);
    }
    const uint64_t U = static_cast<uint64_t>(p.Q) * p.T;
    const uint64_t tableRows = p.blocks > U ? p.blocks : U;
    return 2 * xElems * in.eltBytes + (xElems == 0 ? 0 : 2 * tableRows * p.rotary * in.eltBytes);
}

#endif  // ROPE_TILING_CORE_H
