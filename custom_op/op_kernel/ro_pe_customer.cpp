/*
 * RoPECustomer Ascend C kernel: a thin backend that maps the primitives of rope_core.h to AscendC
 * calls.  The schedule and the arithmetic are rope_core.h's, run and checked on the host by
 * host_sim/ (`rope-onnx kernel-sim`); this file is compiled only by CANN's toolchain.
 *
 * Kernel name: op_host/ro_pe_customer.cpp pins it with ExtendCfgInfo("opFile.value" / "opInterface.value",
 * "ro_pe_customer") -- the form Huawei's own ops use (ops-transformer posembedding/rotary_position_embedding/
 * op_host/rotary_position_embedding_def.cpp:50) -- instead of relying on CANN's closed op-type ->
 * snake-case conversion (RoPECustomer -> ro_pe_customer under the default rule).
 */
#include "kernel_operator.h"

#define ROPE_DEVICE __aicore__ inline
#include "rope_core.h"

using namespace AscendC;

namespace {
constexpr uint32_t FLOATS_PER_REPEAT = 64;  // one 256-byte vector repeat of float32
constexpr uint32_t MAX_REPEAT = 255;

template <class T>
class AscendBackend {
public:
    template <class E> using Local = LocalTensor<E>;
    using Bf16 = bfloat16_t;  // the type RopeCore rounds with CAST_RINT (rope_params.h, ROPE_CAST_*)

    __aicore__ inline void Bind(GM_ADDR x, GM_ADDR cosTab, GM_ADDR sinTab, GM_ADDR y)
    {
        gm_[ROPE_GM_X].SetGlobalBuffer(reinterpret_cast<__gm__ T *>(x));
        gm_[ROPE_GM_COS].SetGlobalBuffer(reinterpret_cast<__gm__ T *>(cosTab));
        gm_[ROPE_GM_SIN].SetGlobalBuffer(reinterpret_cast<__gm__ T *>(sinTab));
        gm_[ROPE_GM_Y].SetGlobalBuffer(reinterpret_cast<__gm__ T *>(y));
    }

    __aicore__ inline void InitBuffers(const RopeUbLayout &l)
    {
        pipe_.InitBuffer(inQ_, 2, l.xSlot);   // double buffering: copy-in of chunk i+1 overlaps compute of i
        pipe_.InitBuffer(outQ_, 2, l.ySlot);
        pipe_.InitBuffer(cosQ_, l.tabBufs, l.cosT);  // 2: the next tile loads while this one is used
        pipe_.InitBuffer(sinQ_, l.tabBufs, l.sinT);
        if (l.cosF != 0) {
            pipe_.InitBuffer(cosF_, l.cosF);
            pipe_.InitBuffer(sinF_, l.sinF);
        }
        if (l.xf != 0) {
            pipe_.InitBuffer(xf_, l.xf);
            pipe_.InitBuffer(acc_, l.acc);
        }
        pipe_.InitBuffer(tmp_, l.tmp);
        if (l.offs != 0) {
            pipe_.InitBuffer(offs_, l.offs);
        }
    }

    __aicore__ inline Local<T> AllocIn() { return inQ_.template AllocTensor<T>(); }
    __aicore__ inline void EnqueIn(Local<T> t) { inQ_.EnQue(t); }
    __aicore__ inline Local<T> DequeIn() { return inQ_.template DeQue<T>(); }
    __aicore__ inline void FreeIn(Local<T> t) { inQ_.FreeTensor(t); }
    __aicore__ inline Local<T> AllocOut() { return outQ_.template AllocTensor<T>(); }
    __aicore__ inline void EnqueOut(Local<T> t) { outQ_.EnQue(t); }
    __aicore__ inline Local<T> DequeOut() { return outQ_.template DeQue<T>(); }
    __aicore__ inline void FreeOut(Local<T> t) { outQ_.FreeTensor(t); }
    __aicore__ inline Local<T> AllocTable(int i)
    {
        return i == 0 ? cosQ_.template AllocTensor<T>() : sinQ_.template AllocTensor<T>();
    }
    __aicore__ inline void EnqueTable(int i, Local<T> t)
    {
        if (i == 0) {
            cosQ_.EnQue(t);
        } else {
            sinQ_.EnQue(t);
        }
    }
    template <class E> __aicore__ inline Local<E> DequeTable(int i)
    {
        return i == 0 ? cosQ_.template DeQue<E>() : sinQ_.template DeQue<E>();
    }
    __aicore__ inline void FreeTable(int i, Local<T> t)
    {
        if (i == 0) {
            cosQ_.FreeTensor(t);
        } else {
            sinQ_.FreeTensor(t);
        }
    }
    __aicore__ inline Local<float> CosF() { return cosF_.template Get<float>(); }
    __aicore__ inline Local<float> SinF() { return sinF_.template Get<float>(); }
    __aicore__ inline Local<float> Xf() { return xf_.template Get<float>(); }
    __aicore__ inline Local<float> Acc() { return acc_.template Get<float>(); }
    __aicore__ inline Local<float> Tmp() { return tmp_.template Get<float>(); }
    __aicore__ inline Local<uint32_t> Offsets() { return offs_.template Get<uint32_t>(); }

    /* One transfer: `count` blocks of `blockLen` elements, block i at gmOff + i*gmStep in GM and at
     * i*ubStep in UB; rope_core.h's RunsFit keeps the fields in range and the host backend checks them.
     * Contiguous: one counted DataCopy.  Strided, 910B: DataCopyPad with DataCopyExtParams{blockCount,
     * blockLen bytes, GM gap bytes, UB gap in 32 B blocks} (GM->UB: srcStride GM bytes, dstStride UB blocks;
     * UB->GM the other way round; the form ops-transformer's rotate_interleaved_split_s.h:150-155 / :197-203
     * uses).  Strided, 310P (no DataCopyPad): DataCopyParams{blockCount, blockLen, srcStride, dstStride},
     * all in 32 B blocks (CANN 8.1.RC1 ascendc/include/basic_api/interface/kernel_struct_data_copy.h:29). */
    __aicore__ inline void CopyIn(Local<T> dst, uint32_t gmId, uint64_t gmOff, uint32_t count, uint32_t blockLen,
                                  uint64_t gmStep, uint32_t ubStep)
    {
        const uint32_t elt = sizeof(T);
        const bool contiguous = count == 1 || (blockLen == gmStep && blockLen == ubStep);
        if (contiguous && (count * blockLen * elt) % ROPE_UB_BLOCK == 0) {
            DataCopy(dst, gm_[gmId][gmOff], count * blockLen);
            return;
        }
        const uint32_t len = contiguous ? count * blockLen * elt : blockLen * elt;
        const uint16_t n = static_cast<uint16_t>(contiguous ? 1 : count);
#if __CCE_AICORE__ == 220
        DataCopyExtParams copy{n, len, static_cast<uint32_t>((gmStep - blockLen) * elt),
                               static_cast<uint32_t>((ubStep * elt - RopeAlign32(len)) / ROPE_UB_BLOCK), 0};
        DataCopyPadExtParams<T> pad{false, 0, 0, 0};
        DataCopyPad(dst, gm_[gmId][gmOff], copy, pad);
#else
        DataCopy(dst, gm_[gmId][gmOff],
                 DataCopyParams(n, static_cast<uint16_t>(len / ROPE_UB_BLOCK),
                                static_cast<uint16_t>((gmStep - blockLen) * elt / ROPE_UB_BLOCK),
                                static_cast<uint16_t>((ubStep - blockLen) * elt / ROPE_UB_BLOCK)));
#endif
    }

    __aicore__ inline void CopyOut(uint32_t gmId, uint64_t gmOff, Local<T> src, uint32_t count, uint32_t blockLen,
                                   uint64_t gmStep, uint32_t ubStep)
    {
        const uint32_t elt = sizeof(T);
        const bool contiguous = count == 1 || (blockLen == gmStep && blockLen == ubStep);
        if (contiguous && (count * blockLen * elt) % ROPE_UB_BLOCK == 0) {
            DataCopy(gm_[gmId][gmOff], src, count * blockLen);
            return;
        }
        const uint32_t len = contiguous ? count * blockLen * elt : blockLen * elt;
        const uint16_t n = static_cast<uint16_t>(contiguous ? 1 : count);
#if __CCE_AICORE__ == 220
        DataCopyExtParams copy{n, len, static_cast<uint32_t>((ubStep * elt - RopeAlign32(len)) / ROPE_UB_BLOCK),
                               static_cast<uint32_t>((gmStep - blockLen) * elt), 0};
        DataCopyPad(gm_[gmId][gmOff], src, copy);
#else
        DataCopy(gm_[gmId][gmOff], src,
                 DataCopyParams(n, static_cast<uint16_t>(len / ROPE_UB_BLOCK),
                                static_cast<uint16_t>((ubStep - blockLen) * elt / ROPE_UB_BLOCK),
                                static_cast<uint16_t>((gmStep - blockLen) * elt / ROPE_UB_BLOCK)));
#endif
    }

    /* UB->UB: n rows of len elements (a 32 B multiple) from element off of rows `stride` elements apart;
     * DataCopyParams(blockCount, blockLen, srcStride, dstStride) counts 32 B blocks (CANN 8.1.RC1
     * ascendc/include/basic_api/interface/kernel_struct_data_copy.h:29). */
    __aicore__ inline void CopyRows(Local<T> dst, uint32_t dOff, Local<T> src, uint32_t sOff, uint32_t stride,
                                    uint32_t n, uint32_t len)
    {
        const uint16_t blocks = static_cast<uint16_t>(len * sizeof(T) / ROPE_UB_BLOCK);
        const uint16_t gap = static_cast<uint16_t>((stride - len) * sizeof(T) / ROPE_UB_BLOCK);
        for (uint32_t r = 0; r < n; r += 4095) {  // blockCount is 12 bits
            const uint32_t k = n - r < 4095 ? n - r : 4095;
            DataCopy(dst[dOff + r * stride], src[sOff + r * stride],
                     DataCopyParams(static_cast<uint16_t>(k), blocks, gap, gap));
        }
    }

    /* T -> float32 for n rows of len lanes (the rotary lanes only when rotary_dim < D). */
    template <class S>
    __aicore__ inline void ToFloatRows(Local<float> dst, uint32_t dOff, uint32_t dS, Local<S> src, uint32_t sOff,
                                       uint32_t sS, uint32_t n, uint32_t len)
    {
        for (uint32_t g = 0; g < len; g += FLOATS_PER_REPEAT) {
            const uint64_t lanes = len - g < FLOATS_PER_REPEAT ? len - g : FLOATS_PER_REPEAT;
            for (uint32_t r = 0; r < n; r += MAX_REPEAT) {
                const uint32_t rep = n - r < MAX_REPEAT ? n - r : MAX_REPEAT;
                UnaryRepeatParams rp(1, 1, static_cast<uint8_t>(dS * sizeof(float) / ROPE_UB_BLOCK),
                                     static_cast<uint8_t>(sS * sizeof(S) / ROPE_UB_BLOCK));
                Cast(dst[dOff + r * dS + g], src[sOff + r * sS + g], RoundMode::CAST_NONE, lanes,
                     static_cast<uint8_t>(rep), rp);
            }
        }
    }

    template <class S> __aicore__ inline void ToFloat(Local<float> dst, Local<S> src, uint32_t count)
    {
        Cast(dst, src, RoundMode::CAST_NONE, count);
    }

    /* float32 -> T, n rows of len lanes, with the RoundMode RopeCore chose (ROPE_CAST_NONE for half: the
     * only nearest-even mode dav_m200 has; ROPE_CAST_RINT for bfloat16: dav_c220 has no CAST_NONE there). */
    template <class S>
    __aicore__ inline void FromFloatRows(Local<S> dst, uint32_t dOff, uint32_t dS, Local<float> src,
                                         uint32_t sOff, uint32_t sS, uint32_t n, uint32_t len, uint32_t mode)
    {
        const RoundMode round = mode == ROPE_CAST_RINT ? RoundMode::CAST_RINT : RoundMode::CAST_NONE;
        for (uint32_t g = 0; g < len; g += FLOATS_PER_REPEAT) {
            const uint64_t lanes = len - g < FLOATS_PER_REPEAT ? len - g : FLOATS_PER_REPEAT;
            for (uint32_t r = 0; r < n; r += MAX_REPEAT) {
                const uint32_t rep = n - r < MAX_REPEAT ? n - r : MAX_REPEAT;
                UnaryRepeatParams rp(1, 1, static_cast<uint8_t>(dS * sizeof(S) / ROPE_UB_BLOCK),
                                     static_cast<uint8_t>(sS * sizeof(float) / ROPE_UB_BLOCK));
                Cast(dst[dOff + r * dS + g], src[sOff + r * sS + g], round, lanes,
                     static_cast<uint8_t>(rep), rp);
            }
        }
    }

    __aicore__ inline void MulRows(Local<float> d, uint32_t dOff, uint32_t dS, Local<float> a, uint32_t aOff,
                                   uint32_t aS, Local<float> b, uint32_t bOff, uint32_t bS, uint32_t n, uint32_t len)
    {
        BinaryRows<0>(d, dOff, dS, a, aOff, aS, b, bOff, bS, n, len);
    }

    __aicore__ inline void AddRows(Local<float> d, uint32_t dOff, uint32_t dS, Local<float> a, uint32_t aOff,
                                   uint32_t aS, Local<float> b, uint32_t bOff, uint32_t bS, uint32_t n, uint32_t len)
    {
        BinaryRows<1>(d, dOff, dS, a, aOff, aS, b, bOff, bS, n, len);
    }

    /* partner channels: dst[i] = src[offs[i] / 4] */
    __aicore__ inline void Gather(Local<float> dst, Local<float> src, Local<uint32_t> offs, uint32_t count)
    {
        AscendC::Gather(dst, src, offs, static_cast<uint32_t>(0), count);
    }

    /* masked negation: every even lane of a span (bit-mode mask 0101...) */
    __aicore__ inline void NegEvenLanes(Local<float> d, uint32_t count)
    {
        const uint32_t full = count / FLOATS_PER_REPEAT;
        uint64_t mask[2] = {0x5555555555555555ull, 0};
        for (uint32_t r = 0; r < full; r += MAX_REPEAT) {
            const uint32_t rep = full - r < MAX_REPEAT ? full - r : MAX_REPEAT;
            Muls(d[r * FLOATS_PER_REPEAT], d[r * FLOATS_PER_REPEAT], -1.0f, mask, static_cast<uint8_t>(rep),
                 UnaryRepeatParams(1, 1, 8, 8));
        }
        const uint32_t rest = count % FLOATS_PER_REPEAT;
        if (rest != 0) {
            mask[0] = 0x5555555555555555ull & ((1ull << rest) - 1);
            Muls(d[full * FLOATS_PER_REPEAT], d[full * FLOATS_PER_REPEAT], -1.0f, mask, 1,
                 UnaryRepeatParams(1, 1, 8, 8));
        }
    }

    /* masked negation: the first len lanes of n rows (half layout) */
    __aicore__ inline void NegRows(Local<float> d, uint32_t off, uint32_t stride, uint32_t n, uint32_t len)
    {
        for (uint32_t g = 0; g < len; g += FLOATS_PER_REPEAT) {
            const uint64_t lanes = len - g < FLOATS_PER_REPEAT ? len - g : FLOATS_PER_REPEAT;
            for (uint32_t r = 0; r < n; r += MAX_REPEAT) {
                const uint32_t rep = n - r < MAX_REPEAT ? n - r : MAX_REPEAT;
                const uint8_t rs = static_cast<uint8_t>(stride * sizeof(float) / ROPE_UB_BLOCK);
                Muls(d[off + r * stride + g], d[off + r * stride + g], -1.0f, lanes, static_cast<uint8_t>(rep),
                     UnaryRepeatParams(1, 1, rs, rs));
            }
        }
    }

    __aicore__ inline void SetU32(Local<uint32_t> d, uint32_t idx, uint32_t value) { d.SetValue(idx, value); }

    __aicore__ inline void ScalarToVector()
    {
        event_t id = static_cast<event_t>(GetTPipePtr()->FetchEventID(HardEvent::S_V));
        SetFlag<HardEvent::S_V>(id);
        WaitFlag<HardEvent::S_V>(id);
    }

    __aicore__ inline void AddsU32(Local<uint32_t> d, uint32_t dOff, Local<uint32_t> s, uint32_t sOff,
                                   uint32_t value, uint32_t count)
    {
        Local<int32_t> di = d[dOff].template ReinterpretCast<int32_t>();
        Local<int32_t> si = s[sOff].template ReinterpretCast<int32_t>();
        Adds(di, si, static_cast<int32_t>(value), count);
        PipeBarrier<PIPE_V>();  // the next doubling step reads what this one wrote
    }

private:
    template <int OP>
    __aicore__ inline void BinaryRows(Local<float> d, uint32_t dOff, uint32_t dS, Local<float> a, uint32_t aOff,
                                      uint32_t aS, Local<float> b, uint32_t bOff, uint32_t bS, uint32_t n,
                                      uint32_t len)
    {
        if (dS == len && aS == len && bS == len) {  // contiguous span: one counted instruction
            if (OP == 0) {
                Mul(d[dOff], a[aOff], b[bOff], n * len);
            } else {
                Add(d[dOff], a[aOff], b[bOff], n * len);
            }
            return;
        }
        for (uint32_t g = 0; g < len; g += FLOATS_PER_REPEAT) {
            const uint64_t lanes = len - g < FLOATS_PER_REPEAT ? len - g : FLOATS_PER_REPEAT;
            for (uint32_t r = 0; r < n; r += MAX_REPEAT) {
                const uint32_t rep = n - r < MAX_REPEAT ? n - r : MAX_REPEAT;
                BinaryRepeatParams rp(1, 1, 1, static_cast<uint8_t>(dS * 4 / ROPE_UB_BLOCK),
                                      static_cast<uint8_t>(aS * 4 / ROPE_UB_BLOCK),
                                      static_cast<uint8_t>(bS * 4 / ROPE_UB_BLOCK));  // bS == 0: broadcast row
                if (OP == 0) {
                    Mul(d[dOff + r * dS + g], a[aOff + r * aS + g], b[bOff + r * bS + g], lanes,
                        static_cast<uint8_t>(rep), rp);
                } else {
                    Add(d[dOff + r * dS + g], a[aOff + r * aS + g], b[bOff + r * bS + g], lanes,
                        static_cast<uint8_t>(rep), rp);
                }
            }
        }
    }

    TPipe pipe_;
    TQue<QuePosition::VECIN, 2> inQ_;
    TQue<QuePosition::VECOUT, 2> outQ_;
    TQue<QuePosition::VECIN, 2> cosQ_, sinQ_;
    TBuf<TPosition::VECCALC> cosF_, sinF_, xf_, acc_, tmp_, offs_;
    GlobalTensor<T> gm_[4];
};
}  // namespace

extern "C" __global__ __aicore__ void ro_pe_customer(GM_ADDR x, GM_ADDR cos, GM_ADDR sin, GM_ADDR y,
                                                     GM_ADDR workspace, GM_ADDR tiling)
{
#if __CCE_AICORE__ == 220
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);  // vector work only: run on the 910B's vector cores
#endif
    GET_TILING_DATA(td, tiling);
    RopeParams p;
    p.rowLen = td.rowLen;
    p.rotary = td.rotary;
    p.halfRot = td.halfRot;
    p.rowStride = td.rowStride;
    p.tabStride = td.tabStride;
    p.rotStride = td.rotStride;
    p.interleaved = td.interleaved;
    p.gatherSwap = td.gatherSwap;
    p.P = td.P;
    p.Q = td.Q;
    p.S = td.S;
    p.T = td.T;
    p.split = td.split;
    p.blocks = td.blocks;
    p.perBlock = td.perBlock;
    p.remainder = td.remainder;
    p.tileRows = td.tileRows;
    p.chunkRows = td.chunkRows;
    p.usePad = td.usePad;
    p.tableBufs = td.tableBufs;
    p.stridedRuns = td.stridedRuns;
    AscendBackend<DTYPE_X> be;
    be.Bind(x, cos, sin, y);
    RopeCore<AscendBackend<DTYPE_X>, DTYPE_X> core(be, p);
    core.Run(GetBlockIdx());
}
