/* Exact float32 <-> float16 / bfloat16 conversions for the host build (round to nearest, ties to even),
 * matching NumPy's astype and the AI core's Cast with RoundMode::CAST_RINT. */
#ifndef ROPE_HALF_CONVERT_H
#define ROPE_HALF_CONVERT_H

#include <cstdint>
#include <cstring>

struct RopeHalf {
    uint16_t bits;
};
struct RopeBf16 {
    uint16_t bits;
};

inline uint32_t RopeBitsOf(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float RopeFloatOf(uint32_t u)
{
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline uint16_t RopeFloatToHalf(float f)
{
    const uint32_t x = RopeBitsOf(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {  // inf, nan (quiet, payload kept)
        return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? (0x200u | ((ax >> 13) & 0x3ffu)) : 0u));
    }
    if (ax >= 0x477ff000u) {  // >= 65520 rounds to inf
        return static_cast<uint16_t>(sign | 0x7c00u);
    }
    if (ax < 0x38800000u) {   // below 2^-14: half subnormal or zero
        if (ax < 0x33000000u) {  // <= 2^-25 (the tie) rounds to zero
            return static_cast<uint16_t>(sign);
        }
        const uint32_t e = ax >> 23;
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e;  // 14 .. 24
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u);
        const uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (r & 1u))) {
            ++r;
        }
        return static_cast<uint16_t>(sign | r);
    }
    uint32_t r = ((((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3ffu));
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) {
        ++r;  // a carry into the exponent is the correct result
    }
    return static_cast<uint16_t>(sign | r);
}

inline float RopeHalfToFloat(uint16_t h)
{
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0) {
        if (m == 0) {
            return RopeFloatOf(sign);
        }
        int ee = 1;
        while ((m & 0x400u) == 0) {
            m <<= 1;
            --ee;
        }
        m &= 0x3ffu;
        return RopeFloatOf(sign | (static_cast<uint32_t>(ee + 112) << 23) | (m << 13));
    }
    if (e == 31) {
        return RopeFloatOf(sign | 0x7f800000u | (m << 13));
    }
    return RopeFloatOf(sign | ((e + 112u) << 23) | (m << 13));
}

inline uint16_t RopeFloatToBf16(float f)
{
    const uint32_t x = RopeBitsOf(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        return static_cast<uint16_t>((x >> 16) | 0x40u);
    }
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float RopeBf16ToFloat(uint16_t b) { return RopeFloatOf(static_cast<uint32_t>(b) << 16); }

#endif  // ROPE_HALF_CONVERT_H
