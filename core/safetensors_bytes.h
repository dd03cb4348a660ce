/*
 * safetensors_bytes.h: little-endian loads and stores and float bit
 * conversions for the safetensors reader and writer, for AtomicFile and
 * for the CUDA engine's bf16 logits (internal to core/). Bytes are decoded one at a time with no pointer
 * casts, so nothing depends on the host's byte order or on alignment.
 */
#ifndef SPIRAL_SAFETENSORS_BYTES_H
#define SPIRAL_SAFETENSORS_BYTES_H

#include <stdint.h>
#include <string.h>

#include "half.h" /* float_to_bits, float_from_bits, half_to_float for F16 tensors */

static inline uint16_t load_u16le(const unsigned char *p) {
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t load_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t load_u64le(const unsigned char *p) {
    return (uint64_t)load_u32le(p) | (uint64_t)load_u32le(p + 4) << 32;
}

static inline void store_u32le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void store_u64le(unsigned char *p, uint64_t v) {
    store_u32le(p, (uint32_t)v);
    store_u32le(p + 4, (uint32_t)(v >> 32));
}

/* bfloat16 is the upper half of a binary32. */
static inline float bf16_to_float(uint16_t h) { return float_from_bits((uint32_t)h << 16); }

#endif
