/* Tiling data of RoPECustomer: the fields of RopeParams (op_kernel/rope_params.h), in the same order. */
#ifndef RO_PE_CUSTOMER_TILING_H
#define RO_PE_CUSTOMER_TILING_H
#include "register/tilingdata_base.h"

namespace optiling {
BEGIN_TILING_DATA_DEF(RoPECustomerTilingData)
TILING_DATA_FIELD_DEF(uint32_t, rowLen);
TILING_DATA_FIELD_DEF(uint32_t, rotary);
TILING_DATA_FIELD_DEF(uint32_t, halfRot);  // not `half`: a device-compiler type name
TILING_DATA_FIELD_DEF(uint32_t, rowStride);
TILING_DATA_FIELD_DEF(uint32_t, tabStride);
TILING_DATA_FIELD_DEF(uint32_t, rotStride);
TILING_DATA_FIELD_DEF(uint32_t, interleaved);
TILING_DATA_FIELD_DEF(uint32_t, gatherSwap);
TILING_DATA_FIELD_DEF(uint32_t, P);
TILING_DATA_FIELD_DEF(uint32_t, Q);
TILING_DATA_FIELD_DEF(uint32_t, S);
TILING_DATA_FIELD_DEF(uint32_t, T);
TILING_DATA_FIELD_DEF(uint32_t, split);
TILING_DATA_FIELD_DEF(uint32_t, blocks);
TILING_DATA_FIELD_DEF(uint32_t, perBlock);
TILING_DATA_FIELD_DEF(uint32_t, remainder);
TILING_DATA_FIELD_DEF(uint32_t, tileRows);
TILING_DATA_FIELD_DEF(uint32_t, chunkRows);
TILING_DATA_FIELD_DEF(uint32_t, usePad);
TILING_DATA_FIELD_DEF(uint32_t, tableBufs);
TILING_DATA_FIELD_DEF(uint32_t, stridedRuns);
END_TILING_DATA_DEF;

REGISTER_TILING_DATA_CLASS(RoPECustomer, RoPECustomerTilingData)
}  // namespace optiling
#endif  // RO_PE_CUSTOMER_TILING_H
