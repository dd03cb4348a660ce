/*
 * cuda_wgmma.cuh: Hopper's warpgroup matrix products (wgmma, sm_90a) as
 * the attention kernels use them: A from registers, B from shared memory
 * laid out in the tensor cores' 128-byte swizzled layout.
 *
 * A warpgroup is 4 consecutive warps (128 threads, the first warp index a
 * multiple of 4); one wgmma m64nNk16 computes D (64 x N) += A (64 x 16) B
 * (16 x N): warp w of the group supplies and receives rows 16 w .. 16 w +
 * 15, with exactly the fragment layouts of mma.sync m16n8k16 (A: 4
 * registers of bf16 pairs; D: N / 8 tiles of 4 floats, tile j holding
 * (g, 8 j + 2 t, + 1) and (g + 8, 8 j + 2 t, + 1), lane = 4 g + t).
 *
 * Swizzled tiles: a (R, 64) bf16 tile (128-byte rows) is stored row after
 * row, with the 16-byte chunk c of row r at chunk position c ^ (r % 8)
 * (the tensor cores' 128-byte swizzle; the tile starts 1024-byte
 * aligned), so that 8 rows' chunks of the same columns fall in distinct
 * banks for the tensor cores' reads as for the copies' writes. The same
 * bytes serve as B in both orientations:
 *   K-major (tile rows are B's n, columns its k: B = tile^T, e.g. keys
 *     for q k^T): k steps of 16 advance the start by 32 bytes;
 *   MN-major (tile rows are B's k, columns its n: B = tile, e.g. values
 *     for p v; transposed B): k steps of 16 rows advance it by 2048.
 * Either way 8-row groups lie 1024 bytes apart (the stride offset).
 *
 * Ordering: shared memory written by the generic proxy (st.shared,
 * cp.async) needs fence.proxy.async before the barrier that precedes the
 * wgmma reading it; registers written by ordinary instructions need
 * wgmma.fence before the wgmma that reads them; results are valid after
 * wgmma.wait_group (wgmma_wait, then pin_registers on them).
 */
#ifndef SPIRAL_CUDA_WGMMA_CUH
#define SPIRAL_CUDA_WGMMA_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#include "cuda_check.cuh"

/* The first 1024-byte aligned address at or after p in shared memory
 * (where a kernel's swizzled tiles start; reserve 1024 bytes more). */
static __device__ __forceinline__ __nv_bfloat16 *swizzle_aligned(__nv_bfloat16 *p) {
    uint32_t address = (uint32_t)__cvta_generic_to_shared(p);
    return p + ((1024 - (address & 1023)) & 1023) / 2;
}

/* Copies rows [row0, row0 + R) of one head's packed (n, 64) bf16 array
 * into the swizzled tile (R, 64) with cp.async (16 bytes a thread,
 * consecutive threads along a row; zero filled beyond n rows). The caller
 * commits the group. */
template <int R>
static __device__ void stage_swizzled_tile(__nv_bfloat16 *tile, const __nv_bfloat16 *head,
                                           int row0, int n) {
    for (int e = threadIdx.x; e < R * 8; e += blockDim.x) {
        int r = e / 8, c = e % 8, row = row0 + r;
        const __nv_bfloat16 *src = head + (size_t)(row < n ? row : 0) * 64 + c * 8;
        async_copy16(tile + r * 64 + ((c ^ (r % 8)) * 8), src, row < n ? 16 : 0);
    }
}

/* Shared-memory matrix descriptor, 128-byte swizzle: start address,
 * leading byte offset (unused by these layouts: 16) and stride byte
 * offset (between 8-row groups: 1024), each in 16-byte units. */
static __device__ __forceinline__ uint64_t wgmma_descriptor(const void *start) {
    uint32_t address = (uint32_t)__cvta_generic_to_shared(start);
    return (uint64_t)((address & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) |
           ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}

/* B (16 x N) = the transpose of swizzled tile rows [0, N), columns [16 s,
 * 16 s + 16) (K-major). */
static __device__ __forceinline__ uint64_t b_rows_transposed(const __nv_bfloat16 *tile, int s) {
    return wgmma_descriptor(tile + 16 * s);
}

/* B (16 x 64) = swizzled tile rows [16 s, 16 s + 16) (MN-major). */
static __device__ __forceinline__ uint64_t b_rows(const __nv_bfloat16 *tile, int s) {
    return wgmma_descriptor(tile + 16 * s * 64);
}

/* Orders the warpgroup's register writes (accumulators, A fragments)
 * before the wgmma that follows reads them. */
static __device__ __forceinline__ void wgmma_fence(void) {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

/* Closes the group of the wgmma issued since the last commit (what
 * wgmma_wait counts). */
static __device__ __forceinline__ void wgmma_commit(void) {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

/* Orders generic-proxy shared-memory writes before async-proxy reads
 * (each writing thread, before the barrier). */
static __device__ __forceinline__ void fence_proxy_async(void) {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/* Keeps the compiler from moving uses of an accumulator register across
 * the wait that makes it valid. */
static __device__ __forceinline__ void pin_register(float &x) {
    asm volatile("" : "+f"(x)::"memory");
}

/* Waits for all wgmma groups of the warpgroup; the caller then pins the
 * accumulators it reads (pin_registers). */
static __device__ __forceinline__ void wgmma_wait(void) {
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}

template <int COUNT>
static __device__ __forceinline__ void pin_registers(float *d) {
#pragma unroll
    for (int i = 0; i < COUNT; i++) pin_register(d[i]);
}

/* d (64 x 64, 32 floats a thread) = (accumulate ? d : 0) + a (64 x 16,
 * registers) b (16 x 64, descriptor; TRANSPOSE 1 for MN-major). */
template <int TRANSPOSE>
static __device__ __forceinline__ void wgmma_m64n64k16(float d[32], const uint32_t a[4],
                                                       uint64_t b, int accumulate) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, p, 1, 1, %38;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]),
          "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]),
          "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
          "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]),
          "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TRANSPOSE));
}

#endif
