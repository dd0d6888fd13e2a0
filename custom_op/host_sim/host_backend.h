/*
 * Host backend of the RoPECustomer kernel core: executes each primitive on arrays and asserts the rules
 * the AI core's hardware imposes, so a schedule that passes here is one the Ascend C shell can run:
 *   - every UB operand address is 32-byte aligned; every access stays inside its UB buffer;
 *   - a plain DataCopy moves a multiple of 32 bytes (DataCopyPad, 910B only, lifts that), and a strided
 *     transfer stays inside the DataCopy / DataCopyPad parameter fields (rope_params.h, ROPE_MAX_*);
 *   - the buffers a core allocates fit the chip's UB;
 *   - queue discipline (alloc -> enque -> deque -> free, depth 2 for x/y);
 *   - GM accesses stay inside the tensors, and every y element is written exactly once;
 *   - the float32 -> float16/bfloat16 Cast uses a RoundMode the chip has (ROPE_CHIP_F16_RINT: only chips
 *     whose vconv list has f322f16r take CAST_RINT for half; bfloat16 takes CAST_RINT only), and a counted
 *     Gather stays within its uint8_t repeat count (rope_params.h cites the CANN headers).
 * It also counts the bytes moved between global memory and UB, and the x / y transfers (DataCopy calls).
 */
#ifndef ROPE_HOST_BACKEND_H
#define ROPE_HOST_BACKEND_H

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../op_kernel/rope_core.h"
#include "half_convert.h"

/* Chip capabilities the backend enforces, as bits of rope_sim_run's chipFlags. */
constexpr int ROPE_CHIP_DATA_COPY_PAD = 1;  // DataCopyPad exists (910B)
constexpr int ROPE_CHIP_F16_RINT = 2;       // float->half Cast has CAST_RINT (vconv f322f16r; 910B yes, 310P no)
/* Not a chip capability: run the schedule before issue 14 (one transfer per run of x rows, stridedRuns = 0)
 * so bench/kernel_traffic.py can print the transfers before and after. */
constexpr int ROPE_SIM_ONE_RUN_PER_COPY = 256;

struct HostGm {
    uint8_t *data[4];        // x, cos, sin, y
    uint64_t elems[4];
    std::vector<uint8_t> yWrites;
    uint64_t bytesRead = 0, bytesWritten = 0;
    uint64_t ubPeak = 0;
    uint64_t xCopies = 0, xCopyMin = 0;  // x-in and y-out transfers (DataCopy calls) and the smallest, bytes
    std::string violation;   // first rule broken, empty if none
    void Violate(const std::string &what)
    {
        if (violation.empty()) {
            violation = what;
        }
    }
};

template <class T> struct HostElem;
template <> struct HostElem<float> {
    static float Up(float v) { return v; }
    static float Down(float v) { return v; }
};
template <> struct HostElem<RopeHalf> {
    static float Up(RopeHalf v) { return RopeHalfToFloat(v.bits); }
    static RopeHalf Down(float v) { return RopeHalf{RopeFloatToHalf(v)}; }
};
template <> struct HostElem<RopeBf16> {
    static float Up(RopeBf16 v) { return RopeBf16ToFloat(v.bits); }
    static RopeBf16 Down(float v) { return RopeBf16{RopeFloatToBf16(v)}; }
};

template <class T>
class HostBackend {
public:
    template <class E> struct Local {
        uint32_t off = 0;
        uint32_t bytes = 0;
    };

    using Bf16 = RopeBf16;  // the type RopeCore rounds with CAST_RINT

    HostBackend(HostGm &gm, uint64_t ubCapacity, int chipFlags)
        : gm_(gm), cap_(ubCapacity), pad_((chipFlags & ROPE_CHIP_DATA_COPY_PAD) != 0),
          f16Rint_((chipFlags & ROPE_CHIP_F16_RINT) != 0)
    {
    }

    void InitBuffers(const RopeUbLayout &l)
    {
        uint32_t at = 0;
        auto take = [&at](uint32_t bytes) {
            const uint32_t off = at;
            at += RopeAlign32(bytes);
            return off;
        };
        for (int i = 0; i < 2; ++i) {
            xSlot_[i] = {take(l.xSlot), l.xSlot};
            ySlot_[i] = {take(l.ySlot), l.ySlot};
        }
        tabBufs_ = l.tabBufs;
        for (uint32_t b = 0; b < l.tabBufs; ++b) {
            tab_[0][b] = {take(l.cosT), l.cosT};
            tab_[1][b] = {take(l.sinT), l.sinT};
        }
        cosF_ = {take(l.cosF), l.cosF};
        sinF_ = {take(l.sinF), l.sinF};
        xf_ = {take(l.xf), l.xf};
        acc_ = {take(l.acc), l.acc};
        tmp_ = {take(l.tmp), l.tmp};
        offs_ = {take(l.offs), l.offs};
        if (at != RopeUbBytes(l)) {
            gm_.Violate("UB layout size differs from RopeUbBytes");
        }
        if (at > cap_) {
            gm_.Violate("UB overflow: " + std::to_string(at) + " bytes allocated, capacity " + std::to_string(cap_));
        }
        gm_.ubPeak = at > gm_.ubPeak ? at : gm_.ubPeak;
        ub_.assign(at > cap_ ? at : cap_, 0xA5);  // poison: unwritten lanes are garbage, as on the chip
    }

    /* ---- queues (TQue semantics) ---- */
    Local<T> AllocIn() { return Alloc(xState_, xSlot_, "x-in"); }
    void EnqueIn(Local<T> t) { Move(xState_, xSlot_, t, 1, 2, "x-in enque"); }
    Local<T> DequeIn() { return Pop(xState_, xSlot_, "x-in"); }
    void FreeIn(Local<T> t) { Move(xState_, xSlot_, t, 3, 0, "x-in free"); }
    Local<T> AllocOut() { return Alloc(yState_, ySlot_, "y-out"); }
    void EnqueOut(Local<T> t) { Move(yState_, ySlot_, t, 1, 2, "y-out enque"); }
    Local<T> DequeOut() { return Pop(yState_, ySlot_, "y-out"); }
    void FreeOut(Local<T> t) { Move(yState_, ySlot_, t, 3, 0, "y-out free"); }
    /* table queues: tabBufs slots each, first in first out (TQue semantics) */
    Local<T> AllocTable(int i)
    {
        for (uint32_t b = 0; b < tabBufs_; ++b) {
            if (tabState_[i][b] == 0) {
                tabState_[i][b] = 1;
                uint32_t live = 0;
                for (uint32_t k = 0; k < tabBufs_; ++k) {
                    live += tabState_[i][k] != 0 ? 1u : 0u;
                }
                tablesPeak_ = live > tablesPeak_ ? live : tablesPeak_;
                return {tab_[i][b].off, tab_[i][b].bytes};
            }
        }
        gm_.Violate("table queue: more tiles allocated than its buffers");
        return {tab_[i][0].off, tab_[i][0].bytes};
    }
    void EnqueTable(int i, Local<T> t)
    {
        for (uint32_t b = 0; b < tabBufs_; ++b) {
            if (tab_[i][b].off == t.off && tabState_[i][b] == 1) {
                tabState_[i][b] = 2;
                tabSeq_[i][b] = ++seq_;
                return;
            }
        }
        gm_.Violate("table enque of a tensor not allocated");
    }
    template <class E> Local<E> DequeTable(int i)
    {
        int pick = -1;
        for (uint32_t b = 0; b < tabBufs_; ++b) {
            if (tabState_[i][b] == 2 && (pick < 0 || tabSeq_[i][b] < tabSeq_[i][pick])) {
                pick = static_cast<int>(b);
            }
        }
        if (pick < 0) {
            gm_.Violate("table dequeued before enque");
            return {tab_[i][0].off, tab_[i][0].bytes};
        }
        tabState_[i][pick] = 3;
        return {tab_[i][pick].off, tab_[i][pick].bytes};
    }
    void FreeTable(int i, Local<T> t)
    {
        for (uint32_t b = 0; b < tabBufs_; ++b) {
            if (tab_[i][b].off == t.off && tabState_[i][b] == 3) {
                tabState_[i][b] = 0;
                return;
            }
        }
        gm_.Violate("table free of a tensor not dequeued");
    }
    /* Most table tiles resident at once (loaded or in use), for the double-buffering test. */
    uint32_t TablesInFlight() const { return tablesPeak_; }

    Local<float> CosF() { return {cosF_.off, cosF_.bytes}; }
    Local<float> SinF() { return {sinF_.off, sinF_.bytes}; }
    Local<float> Xf() { return {xf_.off, xf_.bytes}; }
    Local<float> Acc() { return {acc_.off, acc_.bytes}; }
    Local<float> Tmp() { return {tmp_.off, tmp_.bytes}; }
    Local<uint32_t> Offsets() { return {offs_.off, offs_.bytes}; }

    /* ---- data movement ---- */
    /* One GM->UB transfer (one DataCopy / DataCopyPad call): `count` blocks of `blockLen` elements, block i
     * at gmOff + i*gmStep in GM and at i*ubStep in UB. */
    void CopyIn(Local<T> dst, uint32_t gmId, uint64_t gmOff, uint32_t count, uint32_t blockLen, uint64_t gmStep,
                uint32_t ubStep)
    {
        if (!CheckTransfer(gmId, gmOff, count, blockLen, gmStep, ubStep) ||
            !CheckRows(dst, 0, ubStep, count, blockLen, "CopyIn")) {
            return;
        }
        const uint8_t *src = gm_.data[gmId] + gmOff * sizeof(T);
        for (uint32_t r = 0; r < count; ++r) {
            std::memcpy(&ub_[dst.off + static_cast<uint64_t>(r) * ubStep * sizeof(T)],
                        src + static_cast<uint64_t>(r) * gmStep * sizeof(T), static_cast<uint64_t>(blockLen) * sizeof(T));
        }
        Count(gmId, static_cast<uint64_t>(count) * blockLen * sizeof(T));
        gm_.bytesRead += static_cast<uint64_t>(count) * blockLen * sizeof(T);
    }

    void CopyOut(uint32_t gmId, uint64_t gmOff, Local<T> src, uint32_t count, uint32_t blockLen, uint64_t gmStep,
                 uint32_t ubStep)
    {
        if (!CheckTransfer(gmId, gmOff, count, blockLen, gmStep, ubStep) ||
            !CheckRows(src, 0, ubStep, count, blockLen, "CopyOut")) {
            return;
        }
        uint8_t *dst = gm_.data[gmId] + gmOff * sizeof(T);
        for (uint32_t r = 0; r < count; ++r) {
            const uint64_t at = gmOff + static_cast<uint64_t>(r) * gmStep;
            std::memcpy(dst + static_cast<uint64_t>(r) * gmStep * sizeof(T),
                        &ub_[src.off + static_cast<uint64_t>(r) * ubStep * sizeof(T)], static_cast<uint64_t>(blockLen) * sizeof(T));
            for (uint64_t e = at; e < at + blockLen; ++e) {
                if (++gm_.yWrites[e] > 1) {
                    gm_.Violate("y element " + std::to_string(e) + " written twice");
                }
            }
        }
        Count(gmId, static_cast<uint64_t>(count) * blockLen * sizeof(T));
        gm_.bytesWritten += static_cast<uint64_t>(count) * blockLen * sizeof(T);
    }

    /* UB->UB DataCopy of n rows of len elements from element off of each row (stride elements apart). */
    void CopyRows(Local<T> dst, uint32_t dOff, Local<T> src, uint32_t sOff, uint32_t stride, uint32_t n, uint32_t len)
    {
        if ((static_cast<uint64_t>(len) * sizeof(T)) % ROPE_UB_BLOCK != 0) {
            gm_.Violate("UB->UB DataCopy of a row length that is not a multiple of 32 bytes");
        }
        if (CheckRows(dst, dOff, stride, n, len, "CopyRows") && CheckRows(src, sOff, stride, n, len, "CopyRows")) {
            for (uint32_t r = 0; r < n; ++r) {
                const uint64_t at = (static_cast<uint64_t>(r) * stride) * sizeof(T);
                std::memmove(&ub_[dst.off + dOff * sizeof(T) + at], &ub_[src.off + sOff * sizeof(T) + at],
                             static_cast<uint64_t>(len) * sizeof(T));
            }
        }
        moved_ += static_cast<uint64_t>(n) * len;
    }

    /* Elements moved UB->UB (pass-through lanes); a test checks it is zero when rotary_dim == D. */
    uint64_t Moved() const { return moved_; }

    /* ---- vector arithmetic ---- */
    template <class S> void ToFloat(Local<float> dst, Local<S> src, uint32_t count)
    {
        if (CheckRows(dst, 0, count, 1, count, "Cast") && CheckRows(src, 0, count, 1, count, "Cast")) {
            for (uint32_t i = 0; i < count; ++i) {
                At(dst, i) = HostElem<S>::Up(At(src, i));
            }
        }
    }

    template <class S>
    void ToFloatRows(Local<float> dst, uint32_t dOff, uint32_t dS, Local<S> src, uint32_t sOff, uint32_t sS,
                     uint32_t n, uint32_t len)
    {
        if (CheckRows(dst, dOff, dS, n, len, "Cast") && CheckRows(src, sOff, sS, n, len, "Cast")) {
            for (uint32_t r = 0; r < n; ++r) {
                for (uint32_t j = 0; j < len; ++j) {
                    At(dst, dOff + r * dS + j) = HostElem<S>::Up(At(src, sOff + r * sS + j));
                }
            }
        }
    }

    /* float32 -> S with RoundMode `mode`.  A mode the chip lacks is an empty assert on the device
     * (CANN 8.1.RC1 impl/kernel_log.h:220): nothing is written, so y keeps whatever the UB held. */
    template <class S>
    void FromFloatRows(Local<S> dst, uint32_t dOff, uint32_t dS, Local<float> src, uint32_t sOff, uint32_t sS,
                       uint32_t n, uint32_t len, uint32_t mode)
    {
        const bool bf16 = RopeSame<S, RopeBf16>::value;
        if (bf16 && mode != ROPE_CAST_RINT) {
            gm_.Violate("Cast float->bfloat16 with a RoundMode other than CAST_RINT (dav_c220 asserts: nothing "
                        "is converted)");
            return;
        }
        if (!bf16 && mode == ROPE_CAST_RINT && !f16Rint_) {
            gm_.Violate("Cast float->half with RoundMode::CAST_RINT on a chip without vconv f322f16r (310P: an "
                        "empty assert, y is never rounded back)");
            return;
        }
        if (!bf16 && mode != ROPE_CAST_RINT && mode != ROPE_CAST_NONE) {
            gm_.Violate("Cast float->half with a RoundMode that does not round to nearest even");
            return;
        }
        if (CheckRows(dst, dOff, dS, n, len, "Cast") && CheckRows(src, sOff, sS, n, len, "Cast")) {
            for (uint32_t r = 0; r < n; ++r) {
                for (uint32_t j = 0; j < len; ++j) {
                    At(dst, dOff + r * dS + j) = HostElem<S>::Down(At(src, sOff + r * sS + j));
                }
            }
        }
    }

    void MulRows(Local<float> d, uint32_t dOff, uint32_t dS, Local<float> a, uint32_t aOff, uint32_t aS,
                 Local<float> b, uint32_t bOff, uint32_t bS, uint32_t n, uint32_t len)
    {
        Binary(d, dOff, dS, a, aOff, aS, b, bOff, bS, n, len, 0);
    }

    void AddRows(Local<float> d, uint32_t dOff, uint32_t dS, Local<float> a, uint32_t aOff, uint32_t aS,
                 Local<float> b, uint32_t bOff, uint32_t bS, uint32_t n, uint32_t len)
    {
        Binary(d, dOff, dS, a, aOff, aS, b, bOff, bS, n, len, 1);
    }

    void Gather(Local<float> dst, Local<float> src, Local<uint32_t> offs, uint32_t count)
    {
        if (count / 64 > 255) {
            gm_.Violate("counted Gather of " + std::to_string(count) + " floats: its uint8_t repeat count wraps");
            return;
        }
        if (!CheckRows(dst, 0, count, 1, count, "Gather") || !CheckRows(offs, 0, count, 1, count, "Gather")) {
            return;
        }
        std::vector<float> out(count);
        for (uint32_t i = 0; i < count; ++i) {
            const uint32_t o = At(offs, i);
            if (o % 4 != 0 || o + 4 > src.bytes) {
                gm_.Violate("Gather offset outside its source buffer");
                return;
            }
            std::memcpy(&out[i], &ub_[src.off + o], 4);
        }
        std::memcpy(&ub_[dst.off], out.data(), static_cast<uint64_t>(count) * 4);
    }

    void NegEvenLanes(Local<float> d, uint32_t count)
    {
        if (CheckRows(d, 0, count, 1, count, "Muls")) {
            for (uint32_t i = 0; i < count; i += 2) {
                At(d, i) = At(d, i) * -1.0f;
            }
        }
    }

    void NegRows(Local<float> d, uint32_t off, uint32_t stride, uint32_t n, uint32_t len)
    {
        if (CheckRows(d, off, stride, n, len, "Muls")) {
            for (uint32_t r = 0; r < n; ++r) {
                for (uint32_t j = 0; j < len; ++j) {
                    At(d, off + r * stride + j) = At(d, off + r * stride + j) * -1.0f;
                }
            }
        }
    }

    void SetU32(Local<uint32_t> d, uint32_t idx, uint32_t value)
    {
        if ((idx + 1ull) * 4 > d.bytes) {
            gm_.Violate("SetValue outside its buffer");
            return;
        }
        At(d, idx) = value;
    }
    void ScalarToVector() {}
    void AddsU32(Local<uint32_t> d, uint32_t dOff, Local<uint32_t> s, uint32_t sOff, uint32_t value, uint32_t count)
    {
        if (CheckRows(d, dOff, count, 1, count, "Adds") && CheckRows(s, sOff, count, 1, count, "Adds")) {
            for (uint32_t i = 0; i < count; ++i) {
                At(d, dOff + i) = At(s, sOff + i) + value;
            }
        }
    }

private:
    struct Slot {
        uint32_t off, bytes;
    };

    template <class E> E &At(Local<E> l, uint64_t i) { return *reinterpret_cast<E *>(&ub_[l.off + i * sizeof(E)]); }

    /* n rows of len elements at off + r*stride: 32 B-aligned starts, inside the buffer. */
    template <class E> bool CheckRows(Local<E> l, uint32_t off, uint32_t stride, uint32_t n, uint32_t len, const char *op)
    {
        if (n == 0 || len == 0) {
            return true;
        }
        const uint64_t first = l.off + static_cast<uint64_t>(off) * sizeof(E);
        if (first % ROPE_UB_BLOCK != 0 || (n > 1 && (static_cast<uint64_t>(stride) * sizeof(E)) % ROPE_UB_BLOCK != 0)) {
            gm_.Violate(std::string(op) + ": UB operand not 32-byte aligned");
            return false;
        }
        const uint64_t last = (static_cast<uint64_t>(off) + static_cast<uint64_t>(n - 1) * stride + len) * sizeof(E);
        if (last > l.bytes) {
            gm_.Violate(std::string(op) + ": UB access past the end of its buffer");
            return false;
        }
        return true;
    }

    bool CheckGm(uint32_t id, uint64_t off, uint64_t count)
    {
        if (off + count > gm_.elems[id]) {
            gm_.Violate("GM access outside tensor " + std::to_string(id));
            return false;
        }
        return true;
    }

    /* The fields of the one DataCopy / DataCopyPad call the Ascend backend issues for a transfer
     * (rope_params.h, ROPE_MAX_*): a contiguous transfer is one counted DataCopy (32 B multiple without
     * DataCopyPad); a strided one has at most 4095 blocks, and without DataCopyPad 32 B-multiple block
     * lengths and gaps that fit 16 bits of 32 B blocks; with it, a GM gap that fits 32 bits of bytes. */
    bool CheckTransfer(uint32_t id, uint64_t off, uint32_t count, uint32_t blockLen, uint64_t gmStep, uint32_t ubStep)
    {
        if (count == 0 || blockLen == 0) {
            return true;
        }
        if (blockLen > gmStep && count > 1) {
            gm_.Violate("transfer blocks overlap in GM");
            return false;
        }
        if (!CheckGm(id, off + static_cast<uint64_t>(count - 1) * gmStep, blockLen)) {
            return false;
        }
        const uint64_t elt = sizeof(T);
        const bool contiguous = count == 1 || (blockLen == gmStep && blockLen == ubStep);
        if (contiguous) {
            if (!pad_ && (static_cast<uint64_t>(count) * blockLen * elt) % ROPE_UB_BLOCK != 0) {
                gm_.Violate("plain DataCopy of " + std::to_string(static_cast<uint64_t>(count) * blockLen * elt) +
                            " bytes is not a multiple of 32 (no DataCopyPad on this chip)");
                return false;
            }
            return true;
        }
        if (count > ROPE_MAX_BURSTS) {
            gm_.Violate("strided transfer of " + std::to_string(count) + " blocks: blockCount is at most 4095");
            return false;
        }
        const uint64_t len = blockLen * elt, gap = (gmStep - blockLen) * elt, ubGap = (ubStep - blockLen) * elt;
        if (pad_) {
            if (gap > 0xffffffffull) {
                gm_.Violate("DataCopyPad GM gap of " + std::to_string(gap) + " bytes does not fit 32 bits");
                return false;
            }
            return true;
        }
        if (len % ROPE_UB_BLOCK != 0 || gap % ROPE_UB_BLOCK != 0 || ubGap % ROPE_UB_BLOCK != 0) {
            gm_.Violate("plain DataCopy block of " + std::to_string(len) + " bytes or gap of " + std::to_string(gap) +
                        " bytes is not a multiple of 32 (no DataCopyPad on this chip)");
            return false;
        }
        if (len / ROPE_UB_BLOCK > ROPE_MAX_BLOCKS16 || gap / ROPE_UB_BLOCK > ROPE_MAX_BLOCKS16 ||
            ubGap / ROPE_UB_BLOCK > ROPE_MAX_BLOCKS16) {
            gm_.Violate("plain DataCopy block or gap above 65535 blocks of 32 B");
            return false;
        }
        return true;
    }

    /* x / y transfers: how many, and the smallest (tables are counted in bytes only). */
    void Count(uint32_t id, uint64_t bytes)
    {
        if (id != ROPE_GM_X && id != ROPE_GM_Y) {
            return;
        }
        ++gm_.xCopies;
        gm_.xCopyMin = gm_.xCopies == 1 || bytes < gm_.xCopyMin ? bytes : gm_.xCopyMin;
    }

    void Binary(Local<float> d, uint32_t dOff, uint32_t dS, Local<float> a, uint32_t aOff, uint32_t aS,
                Local<float> b, uint32_t bOff, uint32_t bS, uint32_t n, uint32_t len, int op)
    {
        const char *name = op == 0 ? "Mul" : "Add";
        if (!CheckRows(d, dOff, dS, n, len, name) || !CheckRows(a, aOff, aS, n, len, name) ||
            !CheckRows(b, bOff, bS, n, len, name)) {
            return;
        }
        for (uint32_t r = 0; r < n; ++r) {
            for (uint32_t j = 0; j < len; ++j) {
                const float x = At(a, aOff + r * aS + j);
                const float y = At(b, bOff + r * bS + j);
                At(d, dOff + r * dS + j) = op == 0 ? x * y : x + y;
            }
        }
    }

    Local<T> Alloc(int *state, const Slot *slots, const char *what)
    {
        for (int i = 0; i < 2; ++i) {
            if (state[i] == 0) {
                state[i] = 1;
                return {slots[i].off, slots[i].bytes};
            }
        }
        gm_.Violate(std::string(what) + ": queue depth 2 exceeded");
        return {slots[0].off, slots[0].bytes};
    }
    Local<T> Pop(int *state, const Slot *slots, const char *what)
    {
        for (int i = 0; i < 2; ++i) {
            if (state[i] == 2) {
                state[i] = 3;
                return {slots[i].off, slots[i].bytes};
            }
        }
        gm_.Violate(std::string(what) + ": deque of an empty queue");
        return {slots[0].off, slots[0].bytes};
    }
    void Move(int *state, const Slot *slots, Local<T> t, int from, int to, const char *what)
    {
        for (int i = 0; i < 2; ++i) {
            if (slots[i].off == t.off && state[i] == from) {
                state[i] = to;
                return;
            }
        }
        gm_.Violate(std::string(what) + ": tensor not in the expected state");
    }

    HostGm &gm_;
    uint64_t cap_;
    bool pad_;
    bool f16Rint_;
    uint64_t moved_ = 0;
    std::vector<uint8_t> ub_;
    Slot xSlot_[2]{}, ySlot_[2]{}, tab_[2][2]{}, cosF_{}, sinF_{}, xf_{}, acc_{}, tmp_{}, offs_{};
    int xState_[2]{}, yState_[2]{}, tabState_[2][2]{};
    uint64_t tabSeq_[2][2]{}, seq_ = 0;
    uint32_t tabBufs_ = 1, tablesPeak_ = 0;
};

#endif  // ROPE_HOST_BACKEND_H
