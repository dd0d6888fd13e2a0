/*
 * C++ self-test of the kernel core on the host backend (ctest, and tests/kernel/test_custom_op.py builds it with
 * g++): the per-chip float32 -> float16/bfloat16 rounding rule, the pass-through lanes that are never
 * moved when rotary_dim == D and moved once otherwise, the counted-Gather bound of the tiling, and the
 * DataCopy field limits of a strided x transfer and the bytes per transfer for BNSD x with [L, R] tables.
 *
 * The cast rule is tested the way the defect would have shown: a backend that names half as its
 * "bfloat16" type makes RopeCore choose CAST_RINT for half -- what the kernel did before -- and the
 * 310P backend must flag it, while the 910B backend (whose vconv list has f322f16r) accepts it.
 */
#include <cstdio>
#include <string>
#include <vector>

#include "../op_host/rope_tiling_core.h"
#include "host_backend.h"

static int failures = 0;
static int checks = 0;
#define EXPECT(...)                                                    \
    do {                                                               \
        ++checks;                                                      \
        if (!(__VA_ARGS__)) {                                          \
            std::printf("FAILED line %d: %s\n", __LINE__, #__VA_ARGS__); \
            ++failures;                                                \
        }                                                              \
    } while (0)

/* Backends that pick the wrong rounding mode: RopeCore rounds Be::Bf16 with CAST_RINT, all else CAST_NONE. */
template <class T> struct RintForHalf : HostBackend<T> {
    using HostBackend<T>::HostBackend;
    using Bf16 = RopeHalf;
};
struct NoBf16 {};
template <class T> struct NoneForBf16 : HostBackend<T> {
    using HostBackend<T>::HostBackend;
    using Bf16 = NoBf16;
};

struct Run {
    std::string violation;
    uint64_t moved = 0;
    uint32_t tables = 0;  // most cos tiles resident at once in any block
    RopeParams p{};
};

/* x [rows, D] with tables [rows, R] (one table row per x row), all inputs 0x3c00 (1.0 in half). */
template <template <class> class Be, class T>
static Run RunKernel(uint32_t rows, uint32_t D, uint32_t R, int interleaved, const RopeChipLimits &chip, int flags)
{
    Run out;
    RopeShapes in{};
    in.xRank = in.cosRank = in.sinRank = 2;
    in.x[0] = in.cos[0] = in.sin[0] = rows;
    in.x[1] = D;
    in.cos[1] = in.sin[1] = R;
    in.interleaved = interleaved;
    in.rotaryDim = R;
    in.eltBytes = sizeof(T);
    RopeError err{};
    if (!RopeMakeParams(in, chip, out.p, err)) {
        out.violation = std::string("tiling refused: ") + err.text;
        return out;
    }
    std::vector<uint16_t> x(static_cast<size_t>(rows) * D * sizeof(T) / 2, 0x3c00), c(rows * R * sizeof(T) / 2, 0x3c00),
        s(rows * R * sizeof(T) / 2, 0x3c00), y(x.size(), 0);
    HostGm gm;
    gm.data[ROPE_GM_X] = reinterpret_cast<uint8_t *>(x.data());
    gm.data[ROPE_GM_COS] = reinterpret_cast<uint8_t *>(c.data());
    gm.data[ROPE_GM_SIN] = reinterpret_cast<uint8_t *>(s.data());
    gm.data[ROPE_GM_Y] = reinterpret_cast<uint8_t *>(y.data());
    gm.elems[ROPE_GM_X] = gm.elems[ROPE_GM_Y] = static_cast<uint64_t>(rows) * D;
    gm.elems[ROPE_GM_COS] = gm.elems[ROPE_GM_SIN] = static_cast<uint64_t>(rows) * R;
    gm.yWrites.assign(gm.elems[ROPE_GM_X], 0);
    for (uint32_t b = 0; b < out.p.blocks && gm.violation.empty(); ++b) {
        Be<T> be(gm, chip.ubBytes, flags);
        RopeCore<Be<T>, T>(be, out.p).Run(b);
        out.moved += be.Moved();
        out.tables = be.TablesInFlight() > out.tables ? be.TablesInFlight() : out.tables;
    }
    out.violation = gm.violation;
    return out;
}

/* BNSD x [1, H, L, 128] half with [L, 128] tables: mean x/y bytes per transfer, 0 on a broken rule. */
static double BnsdBytesPerTransfer(uint32_t H, uint32_t L, const RopeChipLimits &chip, int flags, bool strided)
{
    RopeShapes in{};
    in.xRank = 4;
    in.cosRank = in.sinRank = 2;
    const int64_t xs[4] = {1, H, L, 128};
    for (int i = 0; i < 4; ++i) {
        in.x[i] = xs[i];
    }
    in.cos[0] = in.sin[0] = L;
    in.cos[1] = in.sin[1] = 128;
    in.interleaved = 0;
    in.eltBytes = 2;
    RopeParams p{};
    RopeError err{};
    if (!RopeMakeParams(in, chip, p, err)) {
        return 0;
    }
    p.stridedRuns = strided ? 1 : 0;
    std::vector<uint16_t> x(static_cast<size_t>(H) * L * 128, 0x3c00), t(static_cast<size_t>(L) * 128, 0x3c00),
        y(x.size(), 0);
    HostGm gm;
    gm.data[ROPE_GM_X] = reinterpret_cast<uint8_t *>(x.data());
    gm.data[ROPE_GM_COS] = gm.data[ROPE_GM_SIN] = reinterpret_cast<uint8_t *>(t.data());
    gm.data[ROPE_GM_Y] = reinterpret_cast<uint8_t *>(y.data());
    gm.elems[ROPE_GM_X] = gm.elems[ROPE_GM_Y] = x.size();
    gm.elems[ROPE_GM_COS] = gm.elems[ROPE_GM_SIN] = t.size();
    gm.yWrites.assign(x.size(), 0);
    for (uint32_t b = 0; b < p.blocks && gm.violation.empty(); ++b) {
        HostBackend<RopeHalf> be(gm, chip.ubBytes, flags);
        RopeCore<HostBackend<RopeHalf>, RopeHalf>(be, p).Run(b);
    }
    for (uint8_t w : gm.yWrites) {
        if (w != 1) {
            return 0;
        }
    }
    return gm.violation.empty() && gm.xCopies ? 2.0 * x.size() * 2 / gm.xCopies : 0;
}

/* One strided x transfer of `count` blocks of `len` halves, `step` halves apart, on a bare host backend. */
static std::string TransferViolation(uint32_t count, uint32_t len, uint64_t step, int flags)
{
    const uint64_t elems = (count - 1) * step + len;
    std::vector<uint16_t> x(elems, 0);
    HostGm gm;
    gm.data[ROPE_GM_X] = reinterpret_cast<uint8_t *>(x.data());
    gm.elems[ROPE_GM_X] = elems;
    RopeUbLayout l{};
    l.xSlot = l.ySlot = RopeAlign32(2ull * count * len);
    l.tabBufs = 1;
    HostBackend<RopeHalf> be(gm, 4ull * l.xSlot, flags);
    be.InitBuffers(l);
    be.CopyIn(be.AllocIn(), ROPE_GM_X, 0, count, len, step, len);
    return gm.violation;
}

int main()
{
    const RopeChipLimits b910{48, 196608, true}, p310{8, 262144, false};
    const int f910 = ROPE_CHIP_DATA_COPY_PAD | ROPE_CHIP_F16_RINT, f310 = 0;

    /* the rule: half with CAST_NONE everywhere, bfloat16 with CAST_RINT */
    EXPECT(RunKernel<HostBackend, RopeHalf>(64, 128, 128, 1, p310, f310).violation.empty());
    EXPECT(RunKernel<HostBackend, RopeHalf>(64, 128, 128, 0, b910, f910).violation.empty());
    EXPECT(RunKernel<HostBackend, RopeBf16>(64, 128, 128, 1, b910, f910).violation.empty());
    /* the old kernel: CAST_RINT for half breaks on the 310P only */
    const Run bad = RunKernel<RintForHalf, RopeHalf>(64, 128, 128, 1, p310, f310);
    EXPECT(bad.violation.find("CAST_RINT") != std::string::npos);
    EXPECT(RunKernel<RintForHalf, RopeHalf>(64, 128, 128, 1, b910, f910).violation.empty());
    /* bfloat16 with CAST_NONE has no instruction on dav_c220 */
    EXPECT(!RunKernel<NoneForBf16, RopeBf16>(64, 128, 128, 1, b910, f910).violation.empty());

    /* pass-through lanes: never moved when R == D; moved from the 32 B block holding lane R otherwise */
    EXPECT(RunKernel<HostBackend, RopeHalf>(64, 128, 128, 1, b910, f910).moved == 0);
    const Run part = RunKernel<HostBackend, RopeHalf>(64, 128, 64, 1, b910, f910);
    EXPECT(part.violation.empty() && part.moved == 64ull * (128 - 64));
    const Run odd = RunKernel<HostBackend, float>(64, 128, 36, 0, b910, f910);  // lane 36 inside block 32..39
    EXPECT(odd.violation.empty() && odd.moved == 64ull * (128 - 32));
    EXPECT(odd.p.rotStride == 40 && odd.p.gatherSwap == 1);

    /* counted Gather: a chunk never exceeds 255 repeats of 64 floats, and the UB keeps its 2 KB reserve */
    const Run big = RunKernel<HostBackend, float>(4096, 128, 128, 1, p310, f310);
    EXPECT(big.violation.empty());
    EXPECT(static_cast<uint64_t>(big.p.chunkRows) * big.p.rotStride <= ROPE_GATHER_MAX_COUNT);
    EXPECT(RopeUbBytes(RopeLayout(big.p, 4)) <= p310.ubBytes - ROPE_UB_RESERVE);
    const Run wide = RunKernel<HostBackend, float>(4096, 2040, 2040, 1, b910, f910);
    EXPECT(wide.violation.empty() && wide.p.chunkRows >= 1);

    /* cos/sin double buffering: a block with several tiles holds two (the next loads during this one);
     * a block whose range is one tile keeps one buffer and its UB for x */
    const Run many = RunKernel<HostBackend, RopeHalf>(4800, 1024, 1024, 1, b910, f910);  // 100 rows a block
    EXPECT(many.violation.empty() && many.p.tableBufs == 2 && many.tables == 2);
    EXPECT(many.p.tileRows < 100);
    const Run one = RunKernel<HostBackend, RopeHalf>(480, 128, 128, 1, b910, f910);  // 10 rows a block
    EXPECT(one.violation.empty() && one.p.tableBufs == 1 && one.tables == 1);
    const Run decode = RunKernel<HostBackend, RopeHalf>(8, 128, 128, 1, b910, f910);
    EXPECT(decode.violation.empty() && decode.p.tableBufs == 1);

    /* strided transfers (issue 14): the backend flags what one DataCopy / DataCopyPad call cannot express */
    EXPECT(TransferViolation(4095, 128, 4096 * 128, f910).empty());
    EXPECT(TransferViolation(4096, 128, 4096 * 128, f910).find("4095") != std::string::npos);
    EXPECT(TransferViolation(2, 128, 128 + 65535 * 16, f310).empty());      // gap of 65535 blocks of 32 B
    EXPECT(!TransferViolation(2, 128, 128 + 65536 * 16, f310).empty());     // one block more: no field holds it
    EXPECT(TransferViolation(2, 128, 128 + 65536 * 16, f910).empty());      // DataCopyPad: the gap in bytes
    /* BNSD x with [L, R] tables (issue 14): the heads' runs of a block's positions move together; a short
     * prefill on 48 cores goes from 1-2 rows (256-512 B) per copy to > 2.8 KB, on both chips */
    EXPECT(BnsdBytesPerTransfer(32, 64, b910, f910, false) < 512);
    EXPECT(BnsdBytesPerTransfer(32, 64, b910, f910, true) > 2800);
    EXPECT(BnsdBytesPerTransfer(32, 64, p310, f310, true) > 2800);
    EXPECT(BnsdBytesPerTransfer(32, 1, b910, f910, true) == 256);  // decode: a block's whole share is 256 B
    std::printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
