/*
 * cuda_check.cuh: the one error path of the CUDA engine.
 *
 * Every CUDA runtime and cuBLAS call is checked; a failure becomes a
 * spiral_error naming the call, so the engine's functions return 0 or -1
 * like the rest of the library and never abort the caller.
 */
#ifndef SPIRAL_CUDA_CHECK_CUH
#define SPIRAL_CUDA_CHECK_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

/* 0 if status is success, else -1 after spiral_error("<what>: <reason>"). */
int cuda_status(cudaError_t status, const char *what);
int cuda_status(cublasStatus_t status, const char *what);

/* Returns -1 from the enclosing function if the call failed; the message
 * names the call as written. */
#define CUDA_CHECK(call)                                   \
    do {                                                   \
        if (cuda_status((call), #call)) return -1;         \
    } while (0)

/* Checks the launch of the kernel named `what` (a bad configuration shows
 * at once; faults inside the kernel show at the next synchronization). */
int cuda_launched(const char *what);

/* Lets kernel (a __global__ function) take `bytes` of dynamic shared
 * memory where that is over the default 48 KiB: raises its limit with
 * cudaFuncSetAttribute only when bytes exceeds what an earlier call raised
 * it to, so the runtime is called once per size, in an eager pass, never
 * while a pass is being captured into a CUDA graph (the capture replays
 * shapes an eager pass ran first). `what` names the kernel in errors. */
int cuda_allow_smem(const void *kernel, size_t bytes, const char *what);

/* Threads per block of the elementwise kernels, and the number of blocks
 * for count elements. */
enum { CUDA_THREADS = 256 };
static inline unsigned cuda_blocks(size_t count) {
    return (unsigned)((count + CUDA_THREADS - 1) / CUDA_THREADS);
}

/* A float stored as T: float, or bf16 rounded to nearest even (kernels
 * templated on their output type). */
static __device__ __forceinline__ void store_as(float *p, float v) { *p = v; }
static __device__ __forceinline__ void store_as(__nv_bfloat16 *p, float v) {
    *p = __float2bfloat16_rn(v);
}

/* A stored value (float or bf16) as a float (kernels templated on their
 * input type). */
static __device__ __forceinline__ float as_float(float v) { return v; }
static __device__ __forceinline__ float as_float(__nv_bfloat16 v) { return __bfloat162float(v); }

/* Four bf16 values held in one 8-byte word (the lowest first) as floats,
 * and four floats rounded (to nearest even) into one such word. */
static __device__ __forceinline__ void bf16x4_to_floats(float v[4], uint2 word) {
    float2 lo = __bfloat1622float2(*(__nv_bfloat162 *)&word.x);
    float2 hi = __bfloat1622float2(*(__nv_bfloat162 *)&word.y);
    v[0] = lo.x;
    v[1] = lo.y;
    v[2] = hi.x;
    v[3] = hi.y;
}

static __device__ __forceinline__ uint2 floats_to_bf16x4(const float v[4]) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]), hi = __floats2bfloat162_rn(v[2], v[3]);
    uint2 word;
    word.x = *(uint32_t *)&lo;
    word.y = *(uint32_t *)&hi;
    return word;
}

/* The sum of x over the 32 lanes of a warp, in every lane (a fixed
 * butterfly order). */
static __device__ __forceinline__ float warp_sum(float x) {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

static const float LOG2E = 1.4426950408889634f;

/* W adjacent stored values (float or bf16; W = 2 or 4: p W-element
 * aligned) as floats, and W floats stored as float or bf16 (one store for
 * W > 1). */
template <int W>
static __device__ __forceinline__ void load_values(float v[W], const float *p) {
    if constexpr (W == 4) {
        float4 quad = *(const float4 *)p;
        v[0] = quad.x;
        v[1] = quad.y;
        v[2] = quad.z;
        v[3] = quad.w;
    } else if constexpr (W == 2) {
        float2 pair = *(const float2 *)p;
        v[0] = pair.x;
        v[1] = pair.y;
    } else {
        v[0] = p[0];
    }
}
template <int W>
static __device__ __forceinline__ void load_values(float v[W], const __nv_bfloat16 *p) {
    if constexpr (W == 4) {
        bf16x4_to_floats(v, *(const uint2 *)p);
    } else if constexpr (W == 2) {
        float2 pair = __bfloat1622float2(*(const __nv_bfloat162 *)p);
        v[0] = pair.x;
        v[1] = pair.y;
    } else {
        v[0] = __bfloat162float(p[0]);
    }
}
template <int W>
static __device__ __forceinline__ void store_values(float *p, const float v[W]) {
    if constexpr (W == 4)
        *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
    else if constexpr (W == 2)
        *(float2 *)p = make_float2(v[0], v[1]);
    else
        p[0] = v[0];
}
template <int W>
static __device__ __forceinline__ void store_values(__nv_bfloat16 *p, const float v[W]) {
    if constexpr (W == 4)
        *(uint2 *)p = floats_to_bf16x4(v);
    else if constexpr (W == 2)
        *(__nv_bfloat162 *)p = __floats2bfloat162_rn(v[0], v[1]);
    else
        p[0] = __float2bfloat16_rn(v[0]);
}

/* Copies 16 bytes from global src to shared dst (both 16-byte aligned)
 * asynchronously (cp.async), the first `bytes` of them (16 or 0; the rest
 * zero-filled); async_commit closes the group of copies issued so far,
 * async_wait<pending> waits until at most `pending` groups are in flight. */
static __device__ __forceinline__ void async_copy16(void *dst, const void *src, int bytes) {
    uint32_t address = (uint32_t)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(src),
                 "r"(bytes));
}

static __device__ __forceinline__ void async_commit(void) {
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int pending>
static __device__ __forceinline__ void async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(pending));
}

/* 2^x on the special-function unit (ex2.approx.ftz, relative error about
 * 2^-22; results below 2^-126 flush to zero, which no probability here can
 * tell from zero). */
static __device__ __forceinline__ float exp2_fast(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* RoPE's rotation of the pair (a, b) by the angle whose cosine is c and
 * sine s: *x1 = a c - b s, *x2 = a s + b c, each product and sum rounded
 * as core/layers.c rounds them (no fused multiply-add); the inverse is
 * the same with -s. */
static __device__ __forceinline__ void rope_rotate(float *x1, float *x2, float a, float b, float c,
                                                   float s) {
    *x1 = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    *x2 = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
}

#endif
