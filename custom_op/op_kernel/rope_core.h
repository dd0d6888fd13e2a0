/*
 * RoPECustomer kernel: the per-block schedule and the per-tile arithmetic, written once as a template
 * over a backend.  The Ascend C backend (ro_pe_customer.cpp) maps each primitive to AscendC calls; the
 * host backend (host_sim/host_backend.h) executes them on arrays and checks the hardware's rules.
 *
 * Schedule (docs/ascend.md): a block owns a contiguous range of unique table rows.  A tile of them is
 * loaded once into UB (cos, sin), then every x row that uses those rows -- all heads, all batch entries
 * the table broadcasts over -- is streamed through double-buffered queues.  x is read once, y written
 * once, each table row read once per block.
 *
 * Transfer size: the x rows that share a tile's table rows but belong to different heads (or batch entries
 * the table broadcasts over) lie `T` rows apart in GM -- for BNSD x with [L, R] tables each head holds only
 * the block's few positions.  They are moved as ONE strided DataCopy of several runs (blockCount = runs,
 * GM gap = the other positions), as Huawei's RoPE kernel moves several batches' rows of one sequence range
 * (ops-transformer posembedding/rotary_position_embedding/op_kernel/rotate_interleaved_split_s.h:150-155 at
 * c29bc10: blockCount = batchSize, srcStride = (seqLen - calcLen) * N * D * sizeof(T)), instead of one
 * small copy per head.
 *
 * Arithmetic (bit-exact with rope_onnx.op.reference.rope): float32, y = x*cos + partner(x)*sin_signed,
 * rounded once to nearest even (CAST_NONE for half, CAST_RINT for bfloat16: rope_params.h).
 * sin_signed is the sin tile with the rotation's minus sign applied by a masked negation
 * (even lanes for interleaved, the first half of each row for the half layout) once per tile, so
 * partner(x)*sin_signed == rot(x)*sin exactly (negation commutes with IEEE multiplication).
 */
#ifndef ROPE_CORE_H
#define ROPE_CORE_H

#include "rope_params.h"

template <class A, class B> struct RopeSame { static constexpr bool value = false; };
template <class A> struct RopeSame<A, A> { static constexpr bool value = true; };

enum RopeGm : uint32_t { ROPE_GM_X = 0, ROPE_GM_COS = 1, ROPE_GM_SIN = 2, ROPE_GM_Y = 3 };

template <class Be, class T>
class RopeCore {
    template <class E> using Local = typename Be::template Local<E>;
    static constexpr bool F32 = RopeSame<T, float>::value;
    /* The per-type rounding rule of the result (rope_params.h, ROPE_CAST_*): bfloat16 CAST_RINT, half
     * CAST_NONE.  The backend names its bfloat16 type (Be::Bf16); the rule itself lives here, once. */
    static constexpr uint32_t DOWN_CAST = RopeSame<T, typename Be::Bf16>::value ? ROPE_CAST_RINT : ROPE_CAST_NONE;

public:
    ROPE_DEVICE RopeCore(Be &be, const RopeParams &p) : be_(be), p_(p) {}

    ROPE_DEVICE void Run(uint32_t block)
    {
        if (block >= p_.blocks) {
            return;
        }
        be_.InitBuffers(RopeLayout(p_, sizeof(T)));
        if (p_.gatherSwap) {
            BuildSwapOffsets();
        }
        if (p_.split == ROPE_SPLIT_TABLE_ROWS) {
            RunTableRows(block);
        } else {
            RunXRows(block);
        }
    }

private:
    /* Gather byte offsets for one chunk: entry r*rotStride + j is the byte offset in X (row stride
     * rowStride) of the partner of rotary lane j in row r, so Gather reads and writes only rotary lanes,
     * never the pass-through ones.  Row 0 is written by scalar stores (8 for interleaved pairs, which
     * repeat every 8 lanes, and doubled across the row), then replicated by doubling over rows (each copy
     * adds the rows it moved times the row stride), so only a handful of scalar writes are needed. */
    ROPE_DEVICE void BuildSwapOffsets()
    {
        const uint32_t Rs = p_.rotStride, Dp = p_.rowStride, rows = p_.chunkRows;
        const uint32_t first = p_.interleaved ? 8u : Rs;  // Rs is a multiple of 8
        Local<uint32_t> offs = be_.Offsets();
        for (uint32_t j = 0; j < first; ++j) {
            uint32_t lane = j;  // lanes in [R, Rs) pad the row to 32 B: any in-row source will do
            if (p_.interleaved) {
                lane = j ^ 1u;
            } else if (j < p_.halfRot) {
                lane = j + p_.halfRot;
            } else if (j < p_.rotary) {
                lane = j - p_.halfRot;
            }
            be_.SetU32(offs, j, lane * 4u);
        }
        be_.ScalarToVector();
        for (uint32_t n = first; n < Rs; n *= 2) {  // interleaved: (j ^ 1) + n == (j + n) ^ 1 for n % 8 == 0
            const uint32_t m = (Rs - n < n) ? Rs - n : n;
            be_.AddsU32(offs, n, offs, 0, n * 4u, m);
        }
        for (uint32_t k = 1; k < rows; k *= 2) {
            const uint32_t m = (rows - k < k) ? rows - k : k;
            be_.AddsU32(offs, k * Rs, offs, 0, k * Dp * 4u, m * Rs);
        }
    }

    /* One tile of a block's table-row range: whole q slices (per p the x rows form one contiguous block
     * ordered (q, s, t)) or part of one q slice (per (p, s) a run of nt consecutive x rows). */
    struct Tile {
        uint64_t u, q, t, n;  // first table row; its q and t; nq (whole) or nt (part)
        uint32_t rows;
        bool whole;
    };

    ROPE_DEVICE Tile TileAt(uint64_t u, uint64_t end) const
    {
        const uint64_t tRows = p_.T;
        Tile k{u, u / tRows, u % tRows, 0, 0, false};
        if (k.t == 0 && end - u >= tRows && p_.tileRows >= tRows) {
            k.n = (end - u) / tRows;
            if (k.n > p_.tileRows / tRows) {
                k.n = p_.tileRows / tRows;
            }
            k.rows = static_cast<uint32_t>(k.n * tRows);
            k.whole = true;
        } else {
            k.n = tRows - k.t;
            if (k.n > end - u) {
                k.n = end - u;
            }
            if (k.n > p_.tileRows) {
                k.n = p_.tileRows;
            }
            k.rows = static_cast<uint32_t>(k.n);
        }
        return k;
    }

    ROPE_DEVICE void StreamTile(const Tile &k)
    {
        const uint64_t tRows = p_.T;
        for (uint64_t p = 0; p < p_.P; ++p) {
            if (k.whole) {
                StreamBlock(((p * p_.Q + k.q) * p_.S) * tRows, k.n * p_.S * tRows, p_.S, p_.T);
                continue;
            }
            StreamRuns(((p * p_.Q + k.q) * p_.S) * tRows + k.t, p_.S, k.n, tRows);
        }
    }

    /* With two table buffers (p_.tableBufs == 2) the next tile's cos/sin copy-in is issued before the
     * current tile is used, so MTE2 loads it while the vector unit streams x through the current one. */
    ROPE_DEVICE void RunTableRows(uint32_t block)
    {
        const uint64_t extra = block < p_.remainder ? block : p_.remainder;
        const uint64_t start = static_cast<uint64_t>(block) * p_.perBlock + extra;
        const uint64_t end = start + p_.perBlock + (block < p_.remainder ? 1 : 0);
        if (start >= end) {
            return;
        }
        Tile cur = TileAt(start, end);
        IssueTile(cur.u, cur.rows);
        while (true) {
            const uint64_t next = cur.u + cur.rows;
            Tile ahead{};
            if (next < end && p_.tableBufs == 2) {
                ahead = TileAt(next, end);
                IssueTile(ahead.u, ahead.rows);
            }
            UseTile(cur.rows);
            StreamTile(cur);
            FreeTile();
            if (next >= end) {
                break;
            }
            if (p_.tableBufs != 2) {
                ahead = TileAt(next, end);
                IssueTile(ahead.u, ahead.rows);
            }
            cur = ahead;
        }
    }

    ROPE_DEVICE uint64_t RowOf(uint64_t q, uint64_t t, uint64_t m) const
    {
        const uint64_t p = m / p_.S;
        const uint64_t s = m % p_.S;
        return ((p * p_.Q + q) * p_.S + s) * p_.T + t;
    }

    ROPE_DEVICE void RunXRows(uint32_t block)
    {
        const uint32_t k = p_.perBlock;
        const uint64_t u = block / k;
        const uint64_t j = block % k;
        const uint64_t M = static_cast<uint64_t>(p_.P) * p_.S;
        const uint64_t base = M / k;
        const uint64_t rem = M % k;
        const uint64_t m0 = j * base + (j < rem ? j : rem);
        const uint64_t m1 = m0 + base + (j < rem ? 1 : 0);
        const uint64_t q = u / p_.T;
        const uint64_t t = u % p_.T;
        LoadTile(u, 1);
        if (p_.T > 1) {  // per p, the rows of consecutive s lie T apart: strided runs of one row
            for (uint64_t m = m0; m < m1;) {
                const uint64_t pEnd = (m / p_.S + 1) * p_.S;
                const uint64_t end = pEnd < m1 ? pEnd : m1;
                StreamRuns(RowOf(q, t, m), end - m, 1, p_.T);
                m = end;
            }
            FreeTile();
            return;
        }
        uint64_t m = m0;
        while (m < m1) {
            const uint64_t row = RowOf(q, t, m);
            uint64_t len = 1;
            while (m + len < m1 && RowOf(q, t, m + len) == row + len) {
                ++len;
            }
            StreamBlock(row, len, static_cast<uint32_t>(len), 1);
            m += len;
        }
        FreeTile();
    }

    ROPE_DEVICE void LoadTile(uint64_t u, uint32_t rows)
    {
        IssueTile(u, rows);
        UseTile(rows);
    }

    /* cos/sin rows [u, u + rows) into the next free table buffers (copy-in only). */
    ROPE_DEVICE void IssueTile(uint64_t u, uint32_t rows)
    {
        const uint64_t R = p_.rotary;
        Local<T> c = be_.AllocTable(0);
        Local<T> s = be_.AllocTable(1);
        be_.CopyIn(c, ROPE_GM_COS, u * R, rows, p_.rotary, R, p_.tabStride);
        be_.CopyIn(s, ROPE_GM_SIN, u * R, rows, p_.rotary, R, p_.tabStride);
        be_.EnqueTable(0, c);
        be_.EnqueTable(1, s);
    }

    /* The oldest issued tile becomes the current one: float32 copies, the rotation's sign. */
    ROPE_DEVICE void UseTile(uint32_t rows)
    {
        cosT_ = be_.template DequeTable<T>(0);
        sinT_ = be_.template DequeTable<T>(1);
        const uint32_t span = rows * p_.tabStride;
        if constexpr (F32) {
            cosF_ = cosT_;
            sinF_ = sinT_;
        } else {
            cosF_ = be_.CosF();
            sinF_ = be_.SinF();
            be_.ToFloat(cosF_, cosT_, span);
            be_.ToFloat(sinF_, sinT_, span);
        }
        if (p_.interleaved) {
            be_.NegEvenLanes(sinF_, span);
        } else {
            be_.NegRows(sinF_, 0, p_.tabStride, rows, p_.halfRot);
        }
    }

    ROPE_DEVICE void FreeTile()
    {
        be_.FreeTable(0, cosT_);
        be_.FreeTable(1, sinT_);
    }

    /* The x rows one chunk moves: `runs` runs of `rows` consecutive rows, run i starting at row + i*step. */
    struct Span {
        uint64_t row;
        uint32_t runs, rows;
        uint64_t step;
    };

    ROPE_DEVICE void StreamBlock(uint64_t xRow, uint64_t len, uint32_t sn, uint32_t tn)
    {
        for (uint64_t r0 = 0; r0 < len; r0 += p_.chunkRows) {
            const uint64_t left = len - r0;
            const uint32_t n = static_cast<uint32_t>(left < p_.chunkRows ? left : p_.chunkRows);
            Chunk(Span{xRow + r0, 1, n, n}, r0, sn, tn);
        }
    }

    /* Whether one strided transfer can move runs of `rows` rows `step` rows apart (rope_params.h,
     * ROPE_MAX_*): within a run the UB rows must be unpadded (rows == 1 or D a 32 B multiple), and the GM
     * gap and block length must fit the copy's fields -- bytes (uint32_t) with DataCopyPad, 16-bit counts
     * of 32 B blocks without it. */
    ROPE_DEVICE bool RunsFit(uint64_t rows, uint64_t step) const
    {
        if (rows != 1 && p_.rowStride != p_.rowLen) {
            return false;
        }
        const uint64_t elt = sizeof(T);
        const uint64_t len = rows * p_.rowLen * elt;
        const uint64_t gap = (step - rows) * p_.rowLen * elt;
        if (p_.usePad) {
            return gap <= 0xffffffffull;
        }
        return len % ROPE_UB_BLOCK == 0 && gap % ROPE_UB_BLOCK == 0 && len / ROPE_UB_BLOCK <= ROPE_MAX_BLOCKS16 &&
               gap / ROPE_UB_BLOCK <= ROPE_MAX_BLOCKS16;
    }

    /* `runs` runs of `rows` consecutive x rows, run i at row + i*step (step > rows), all using the current
     * tile's rows 0..rows-1 (or its one row when rows == 1).  As many runs as a chunk holds go in one
     * strided transfer; a run longer than a chunk, or a gap the copy cannot express, streams run by run. */
    ROPE_DEVICE void StreamRuns(uint64_t row, uint64_t runs, uint64_t rows, uint64_t step)
    {
        uint64_t per = rows <= p_.chunkRows ? p_.chunkRows / rows : 0;
        per = per > ROPE_MAX_BURSTS ? ROPE_MAX_BURSTS : per;
        if (!p_.stridedRuns || runs == 1 || per < 2 || step == rows || !RunsFit(rows, step)) {
            if (step == rows) {  // adjacent runs: one contiguous block
                StreamBlock(row, runs * rows, static_cast<uint32_t>(runs), static_cast<uint32_t>(rows));
                return;
            }
            for (uint64_t i = 0; i < runs; ++i) {
                StreamBlock(row + i * step, rows, 1, static_cast<uint32_t>(rows));
            }
            return;
        }
        for (uint64_t i = 0; i < runs; i += per) {
            const uint32_t g = static_cast<uint32_t>(runs - i < per ? runs - i : per);
            Chunk(Span{row + i * step, g, static_cast<uint32_t>(rows), step}, 0, g, static_cast<uint32_t>(rows));
        }
    }

    /* x rows of a span <-> UB rows `rowStride` apart, in as few transfers as the span allows. */
    ROPE_DEVICE void MoveX(bool in, Local<T> ub, const Span &sp)
    {
        const uint32_t D = p_.rowLen, Dp = p_.rowStride;
        const uint64_t gmOff = sp.row * D;
        uint32_t count = sp.rows * sp.runs, blockLen = D, ubStep = Dp;
        uint64_t gmStep = D;
        if (sp.runs > 1 && sp.step != sp.rows) {
            count = sp.runs;
            gmStep = sp.step * D;
            if (sp.rows > 1) {  // RunsFit: D == Dp
                blockLen = ubStep = sp.rows * D;
            }
        }
        if (in) {
            be_.CopyIn(ub, ROPE_GM_X, gmOff, count, blockLen, gmStep, ubStep);
        } else {
            be_.CopyOut(ROPE_GM_Y, gmOff, ub, count, blockLen, gmStep, ubStep);
        }
    }

    /* One chunk: the n = runs * rows x rows of a span, block rows r0 .. r0+n-1 of a block ordered
     * (q, s, t) (a strided span: r0 = 0, sn = runs, tn = rows; the table row of UB row i is i % rows).  With
     * rotary_dim < D the pass-through lanes are copied UB->UB from the 32 B block holding lane R onward
     * and are neither cast, gathered nor multiplied; lanes [lo, R) of that copy are overwritten below. */
    ROPE_DEVICE void Chunk(const Span &sp, uint64_t r0, uint32_t sn, uint32_t tn)
    {
        const uint32_t D = p_.rowLen, R = p_.rotary, h = p_.halfRot, Dp = p_.rowStride, Rp = p_.tabStride;
        const uint32_t Rs = p_.rotStride;
        const uint32_t n = sp.runs * sp.rows;

        Local<T> xs = be_.AllocIn();
        MoveX(true, xs, sp);
        be_.EnqueIn(xs);
        xs = be_.DequeIn();
        Local<T> ys = be_.AllocOut();

        if (R < D) {
            const uint32_t perBlock = ROPE_UB_BLOCK / sizeof(T);
            const uint32_t lo = R / perBlock * perBlock;
            be_.CopyRows(ys, lo, xs, lo, Dp, n, Dp - lo);
        }
        Local<float> tmp = be_.Tmp();
        Local<float> X;
        Local<float> acc;
        if constexpr (F32) {
            X = xs;
            acc = ys;
        } else {
            X = be_.Xf();
            acc = be_.Acc();
            if (R == Dp) {
                be_.ToFloat(X, xs, n * Dp);  // whole rows: one counted Cast
            } else {
                be_.ToFloatRows(X, 0, Dp, xs, 0, Dp, n, R);
            }
        }
        if (p_.gatherSwap) {
            be_.Gather(tmp, X, be_.Offsets(), n * Rs);
        }
        uint64_t r = r0;
        const uint64_t rEnd = r0 + n;
        while (r < rEnd) {
            uint64_t tileRow;
            uint64_t k;
            uint32_t tStride;
            if (tn > 1) {  // table row advances with x row
                tileRow = (r / (static_cast<uint64_t>(sn) * tn)) * tn + r % tn;
                k = tn - r % tn;
                tStride = Rp;
            } else {       // runs of x rows sharing one table row (stride 0 broadcast)
                tileRow = r / sn;
                k = sn - r % sn;
                tStride = 0;
            }
            if (k > rEnd - r) {
                k = rEnd - r;
            }
            const uint32_t i = static_cast<uint32_t>(r - r0);
            const uint32_t kk = static_cast<uint32_t>(k);
            const uint32_t tOff = static_cast<uint32_t>(tileRow) * Rp;
            be_.MulRows(acc, i * Dp, Dp, X, i * Dp, Dp, cosF_, tOff, tStride, kk, R);
            if (p_.gatherSwap) {
                be_.MulRows(tmp, i * Rs, Rs, tmp, i * Rs, Rs, sinF_, tOff, tStride, kk, R);
            } else {
                be_.MulRows(tmp, i * Rs, Rs, X, i * Dp + h, Dp, sinF_, tOff, tStride, kk, h);
                be_.MulRows(tmp, i * Rs + h, Rs, X, i * Dp, Dp, sinF_, tOff + h, tStride, kk, h);
            }
            r += k;
        }
        be_.AddRows(acc, 0, Dp, acc, 0, Dp, tmp, 0, Rs, n, R);
        if constexpr (!F32) {
            be_.FromFloatRows(ys, 0, Dp, acc, 0, Dp, n, R, DOWN_CAST);
        }
        be_.FreeIn(xs);
        be_.EnqueOut(ys);
        ys = be_.DequeOut();
        MoveX(false, ys, sp);
        be_.FreeOut(ys);
    }

    Be &be_;
    const RopeParams &p_;
    Local<T> cosT_, sinT_;
    Local<float> cosF_, sinF_;
};

#endif  // ROPE_CORE_H
