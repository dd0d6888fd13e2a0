/* C++ self-test of the tiling arithmetic (ctest): known shapes give the expected view, split and fit. */
#include <cstdio>
#include <initializer_list>

#include "../op_host/rope_tiling_core.h"

static int failures = 0;
static int checks = 0;
#define EXPECT(cond)                                                   \
    do {                                                               \
        ++checks;                                                      \
        if (!(cond)) {                                                 \
            std::printf("FAILED line %d: %s\n", __LINE__, #cond);      \
            ++failures;                                                \
        }                                                              \
    } while (0)

static RopeShapes Shapes(std::initializer_list<int64_t> x, std::initializer_list<int64_t> t, int64_t inter,
                         int64_t rot, uint32_t elt)
{
    RopeShapes s{};
    s.xRank = static_cast<int>(x.size());
    s.cosRank = s.sinRank = static_cast<int>(t.size());
    int i = 0;
    for (int64_t v : x) {
        s.x[i++] = v;
    }
    i = 0;
    for (int64_t v : t) {
        s.cos[i] = s.sin[i] = v;
        ++i;
    }
    s.interleaved = inter;
    s.rotaryDim = rot;
    s.eltBytes = elt;
    return s;
}

int main()
{
    const RopeChipLimits b910{48, 196608, true}, p310{8, 262144, false};
    RopeParams p{};
    RopeError e{};
    /* the seed's shape: x [1,32,512,128] fp16, tables [512,128] */
    EXPECT(RopeMakeParams(Shapes({1, 32, 512, 128}, {512, 128}, 1, 0, 2), b910, p, e));
    EXPECT(p.P == 1 && p.Q == 1 && p.S == 32 && p.T == 512);
    EXPECT(p.split == ROPE_SPLIT_TABLE_ROWS && p.blocks == 48 && p.perBlock == 10 && p.remainder == 32);
    EXPECT(RopeUbBytes(RopeLayout(p, 2)) <= b910.ubBytes);
    /* [B,L,H,D] with [B,L,1,R] */
    EXPECT(RopeMakeParams(Shapes({2, 9, 4, 64}, {2, 9, 1, 64}, 0, 0, 4), p310, p, e));
    EXPECT(p.Q == 18 && p.S == 4 && p.T == 1 && p.blocks == 8);
    /* decode: one table row, x rows split over the cores */
    EXPECT(RopeMakeParams(Shapes({1, 32, 1, 128}, {1, 128}, 0, 0, 2), b910, p, e));
    EXPECT(p.split == ROPE_SPLIT_X_ROWS && p.blocks == 32 && p.perBlock == 32);
    /* rejected: odd rotary_dim, a table that does not broadcast, unaligned rows without DataCopyPad */
    EXPECT(!RopeMakeParams(Shapes({2, 4, 8}, {4, 7}, 1, 7, 4), b910, p, e));
    EXPECT(!RopeMakeParams(Shapes({2, 3, 4, 8}, {3, 3, 8}, 1, 0, 4), b910, p, e));
    EXPECT(!RopeMakeParams(Shapes({2, 5, 40}, {5, 20}, 1, 20, 2), p310, p, e));
    EXPECT(RopeMakeParams(Shapes({2, 5, 40}, {5, 20}, 1, 20, 2), b910, p, e));
    /* the UB plan leaves Huawei's 2 KB reserve free */
    EXPECT(RopeMakeParams(Shapes({64, 4096, 128}, {4096, 128}, 1, 0, 2), p310, p, e));
    EXPECT(RopeUbBytes(RopeLayout(p, 2)) <= p310.ubBytes - ROPE_UB_RESERVE);
    EXPECT(RopeUbBytes(RopeLayout(p, 2)) > p310.ubBytes / 2);  // and still uses the rest
    /* the counted-Gather bound: on a chip with a 1 MB UB the chunk would hold 43k floats; it is clamped
     * to 127 rows of 128 (16256 <= 255 * 64).  The half layout with R/2 % 8 == 0 needs no Gather. */
    const RopeChipLimits bigUb{8, 1u << 20, true};
    EXPECT(RopeMakeParams(Shapes({4096, 128}, {4096, 128}, 1, 0, 4), bigUb, p, e));
    EXPECT(p.gatherSwap == 1 && p.chunkRows == 127 && p.chunkRows * p.rotStride <= ROPE_GATHER_MAX_COUNT);
    EXPECT(RopeMakeParams(Shapes({4096, 128}, {4096, 128}, 0, 0, 4), bigUb, p, e));
    EXPECT(p.gatherSwap == 0 && p.chunkRows > 127);
    /* partial rotary: Gather and the work rows cover the rotary lanes only */
    EXPECT(RopeMakeParams(Shapes({1, 8, 16, 128}, {16, 64}, 1, 64, 2), b910, p, e));
    EXPECT(p.rotStride == 64 && RopeLayout(p, 2).tmp == RopeAlign32(4ull * p.chunkRows * 64));
    std::printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
