/*
 * test_cuda_kernels.cu: each kernel group of core/cuda/ against the CPU
 * layer it replaces (core/layers.c, core/scale.c, core/mesh.c, built with real =
 * double), on random inputs with awkward sizes (rows not a multiple of a
 * warp or a tile, head sizes 4, 16, 64, partial chunks, no-overlap shift).
 * Norm-wise relative error per output <= 1e-5. When the whole-model proof
 * (test_cuda_engine) fails, this says which kernel is wrong.
 * Prints "N passed, N failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "cuda_check.cuh"
#include "cuda_kernels.cuh"

extern "C" {
#include "error.h"
#include "layers.h"
#include "mesh.h"
#include "scale.h"
}

static int passed, failed;
static const double TOLERANCE = 1e-5;

static unsigned long long rng_state = 12345;
static double uniform(void) { /* [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}

/* A host vector of fp32-representable doubles, and its float copy on the GPU. */
struct Tensor {
    std::vector<double> host;
    float *dev = NULL;
    explicit Tensor(size_t n, double scale = 1.0) : host(n) {
        for (auto &x : host) x = (double)(float)(scale * uniform());
        upload();
    }
    void upload() {
        std::vector<float> f(host.begin(), host.end());
        if (!dev) cudaMalloc(&dev, host.size() * sizeof(float) + 4);
        cudaMemcpy(dev, f.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice);
    }
    std::vector<float> download() const {
        std::vector<float> f(host.size());
        cudaDeviceSynchronize();
        cudaMemcpy(f.data(), dev, host.size() * sizeof(float), cudaMemcpyDeviceToHost);
        return f;
    }
    ~Tensor() { cudaFree(dev); }
};

/* Compares the GPU copy of t with the CPU values expect (strided view
 * optional): ||gpu - cpu|| / ||cpu||. */
static void compare_within(const char *what, const std::vector<float> &gpu,
                           const std::vector<double> &cpu, double tolerance) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < cpu.size(); i++) {
        double e = gpu[i] - cpu[i];
        diff += e * e;
        norm += cpu[i] * cpu[i];
    }
    double rel = norm > 0 ? sqrt(diff / norm) : sqrt(diff);
    if (!(rel <= tolerance)) rel = rel == rel ? rel : INFINITY;
    int ok = rel <= tolerance;
    printf("  %-48s rel err %.2e %s\n", what, rel, ok ? "" : "FAIL");
    if (ok) passed++; else failed++;
}

static void compare(const char *what, const std::vector<float> &gpu, const std::vector<double> &cpu) {
    compare_within(what, gpu, cpu, TOLERANCE);
}

static void check_status(int status, const char *what) {
    if (status == 0) status = cuda_status(cudaDeviceSynchronize(), what);
    if (status) {
        printf("  %s: %s FAIL\n", what, spiral_last_error());
        failed++;
    }
}

/* A device buffer of count bf16 values, filled with NaN (0xffff) so that
 * an element a kernel leaves unwritten fails the comparison. */
struct Bf16Buffer {
    __nv_bfloat16 *dev = NULL;
    size_t count;
    explicit Bf16Buffer(size_t n) : count(n) {
        cudaMalloc(&dev, n * sizeof(__nv_bfloat16) + 4);
        cudaMemset(dev, 0xff, n * sizeof(__nv_bfloat16));
    }
    ~Bf16Buffer() { cudaFree(dev); }
};

/* A kernel's bf16 output must be exactly its fp32 twin's values rounded to
 * nearest even (the bf16 products take what the fp32 path would have
 * packed): counts the elements that differ. */
static void compare_rounded(const char *what, const Bf16Buffer &gpu16,
                            const std::vector<float> &fp32) {
    std::vector<__nv_bfloat16> h(gpu16.count);
    cudaDeviceSynchronize();
    cudaMemcpy(h.data(), gpu16.dev, h.size() * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost);
    size_t differ = 0;
    for (size_t i = 0; i < h.size(); i++) {
        float got = __bfloat162float(h[i]), want = __bfloat162float(__float2bfloat16_rn(fp32[i]));
        if (!(got == want)) differ++;
    }
    int ok = differ == 0 && h.size() == fp32.size();
    printf("  %-48s %zu of %zu differ %s\n", what, differ, h.size(), ok ? "" : "FAIL");
    if (ok) passed++; else failed++;
}

/* Two bf16 buffers hold the same values, none of them NaN (unwritten). */
static void compare_same_bf16(const char *what, const Bf16Buffer &a, const Bf16Buffer &b) {
    std::vector<__nv_bfloat16> ha(a.count), hb(b.count);
    cudaDeviceSynchronize();
    cudaMemcpy(ha.data(), a.dev, a.count * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost);
    cudaMemcpy(hb.data(), b.dev, b.count * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost);
    size_t differ = a.count == b.count ? 0 : a.count;
    for (size_t i = 0; i < ha.size() && a.count == b.count; i++) {
        float x = __bfloat162float(ha[i]), y = __bfloat162float(hb[i]);
        if (!(x == y)) differ++;
    }
    int ok = differ == 0;
    printf("  %-48s %zu of %zu differ %s\n", what, differ, a.count, ok ? "" : "FAIL");
    if (ok) passed++; else failed++;
}

/* The values of t made bf16-representable (on the host and the device),
 * so that a kernel reading them in bf16 reads exactly what the CPU
 * reference reads. */
static void make_bf16_exact(Tensor &t) {
    for (auto &x : t.host) x = (double)__bfloat162float(__float2bfloat16_rn((float)x));
    t.upload();
}

/* A bf16 device copy of t (exact when t is bf16-representable). */
static void copy_to_bf16(Bf16Buffer &out, const Tensor &t) {
    check_status(round_bf16(out.dev, t.dev, t.host.size(), 0), "round_bf16");
}

static void test_rmsnorm(int M, int d) {
    printf("rmsnorm M=%d d=%d\n", M, d);
    Tensor x(M * (size_t)d), gain(d, 0.5), dy(M * (size_t)d), dx(M * (size_t)d), dgain(d);
    for (auto &g : gain.host) g += 1;
    gain.upload();
    Tensor y(M * (size_t)d), rstd(M), partial(rmsnorm_partial_count(M, d));
    std::vector<double> cy(M * (size_t)d), crstd(M);
    rmsnorm_forward(cy.data(), crstd.data(), x.host.data(), gain.host.data(), M, d, 1e-5);
    check_status(rmsnorm_forward(y.dev, rstd.dev, x.dev, gain.dev, M, d, 1e-5, 0), "rmsnorm_forward");
    compare("y", y.download(), cy);
    compare("rstd", rstd.download(), crstd);
    Bf16Buffer y16(M * (size_t)d);
    Tensor copy(M * (size_t)d); /* starts random: every element must be written */
    check_status(rmsnorm_forward_bf16(y16.dev, rstd.dev, copy.dev, x.dev, gain.dev, M, d, 1e-5, 0),
                 "rmsnorm_forward_bf16");
    compare_rounded("y in bf16 = bf16(y)", y16, y.download());
    compare("the copy of x the bf16 norm writes", copy.download(), x.host);
    compare("rstd (bf16 output)", rstd.download(), crstd);
    std::vector<double> cdx = dx.host, cdgain = dgain.host;
    Tensor onto(M * (size_t)d), dgain2(d); /* onto starts random: every element must be written */
    rmsnorm_backward(cdx.data(), cdgain.data(), dy.host.data(), x.host.data(), gain.host.data(),
                     crstd.data(), M, d);
    check_status(rmsnorm_backward(dx.dev, dgain.dev, partial.dev, dy.dev, x.dev, gain.dev,
                                  rstd.dev, M, d, 0), "rmsnorm_backward");
    check_status(rmsnorm_backward_onto(onto.dev, NULL, x.dev, NULL, dgain2.dev, partial.dev,
                                       dy.dev, x.dev, gain.dev, rstd.dev, M, d, 0),
                 "rmsnorm_backward_onto");
    compare("dx (accumulated)", dx.download(), cdx);
    /* onto a base (x here): base + the same gradient */
    std::vector<double> conto = x.host, zero_gain(d, 0.0);
    rmsnorm_backward(conto.data(), zero_gain.data(), dy.host.data(), x.host.data(), gain.host.data(),
                     crstd.data(), M, d);
    compare("dx onto a base", onto.download(), conto);
    /* onto a base plus an extra term (dy here), with the bf16 copy */
    Tensor onto2(M * (size_t)d);
    Bf16Buffer onto16(M * (size_t)d);
    check_status(rmsnorm_backward_onto(onto2.dev, onto16.dev, x.dev, dy.dev, dgain2.dev,
                                       partial.dev, dy.dev, x.dev, gain.dev, rstd.dev, M, d, 0),
                 "rmsnorm_backward_onto (extra, bf16 copy)");
    std::vector<double> conto2 = conto;
    for (size_t i = 0; i < conto2.size(); i++) conto2[i] += dy.host[i];
    std::vector<float> got2 = onto2.download();
    compare("dx onto a base plus an extra term", got2, conto2);
    compare_rounded("its bf16 copy = bf16(dx)", onto16, got2);
    compare("dgain (accumulated)", dgain.download(), cdgain);
}

/* q, k, v (B, n, D) packed as qkv (B, n, 3 D) */
static std::vector<double> pack(const std::vector<double> &q, const std::vector<double> &k,
                                const std::vector<double> &v, int rows, int D) {
    std::vector<double> out((size_t)rows * 3 * D);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < D; c++) {
            out[(size_t)r * 3 * D + c] = q[(size_t)r * D + c];
            out[(size_t)r * 3 * D + D + c] = k[(size_t)r * D + c];
            out[(size_t)r * 3 * D + 2 * D + c] = v[(size_t)r * D + c];
        }
    return out;
}

static void test_rope(int B, int n, int H, int dh) {
    printf("rope B=%d n=%d H=%d dh=%d\n", B, n, H, dh);
    int D = H * dh, rows = B * n;
    Tensor q((size_t)rows * D), k((size_t)rows * D), v((size_t)rows * D);
    Tensor qkv((size_t)rows * 3 * D), cos_t((size_t)n * dh / 2), sin_t((size_t)n * dh / 2);
    std::vector<int> pos(n);
    for (int i = 0; i < n; i++) pos[i] = 3 * i + 2;
    int *dpos;
    cudaMalloc(&dpos, n * sizeof(int));
    cudaMemcpy(dpos, pos.data(), n * sizeof(int), cudaMemcpyHostToDevice);
    qkv.host = pack(q.host, k.host, v.host, rows, D);
    qkv.upload();
    check_status(rope_table(cos_t.dev, sin_t.dev, dpos, n, dh, 10000.0, 0), "rope_table");
    check_status(rope_apply(qkv.dev, cos_t.dev, sin_t.dev, B, n, H, dh, 1, 0), "rope_apply +1");
    std::vector<double> cq = q.host, ck = k.host;
    rope_forward(cq.data(), pos.data(), B, n, H, dh, 10000.0);
    rope_forward(ck.data(), pos.data(), B, n, H, dh, 10000.0);
    std::vector<float> rotated = qkv.download();
    compare("q, k rotated; v untouched", rotated, pack(cq, ck, v.host, rows, D));
    check_status(rope_apply(qkv.dev, cos_t.dev, sin_t.dev, B, n, H, dh, -1, 0), "rope_apply -1");
    rope_backward(cq.data(), pos.data(), B, n, H, dh, 10000.0);
    rope_backward(ck.data(), pos.data(), B, n, H, dh, 10000.0);
    std::vector<float> inverse = qkv.download();
    compare("inverse rotation", inverse, pack(cq, ck, v.host, rows, D));
    /* the backward straight to bf16, from the same rotated values */
    cudaMemcpy(qkv.dev, rotated.data(), rotated.size() * sizeof(float), cudaMemcpyHostToDevice);
    Bf16Buffer back16((size_t)rows * 3 * D);
    check_status(rope_backward_bf16(back16.dev, qkv.dev, cos_t.dev, sin_t.dev, B, n, H, dh, 0),
                 "rope_backward_bf16");
    compare_rounded("inverse rotation in bf16 = bf16(inverse)", back16, inverse);
    /* the tensor-core attention's heads: rotating on the way in gives the
     * heads of the rotated values */
    size_t heads = attention_mma_heads(B, n, H, dh);
    Bf16Buffer in_rotated(heads), of_rotated(heads);
    check_status(attention_mma_pack(of_rotated.dev, qkv.dev, NULL, NULL, B, n, H, dh, 0),
                 "attention_mma_pack (rotated values)");
    qkv.upload(); /* the values before RoPE */
    check_status(attention_mma_pack(in_rotated.dev, qkv.dev, cos_t.dev, sin_t.dev, B, n, H, dh, 0),
                 "attention_mma_pack (rotating)");
    compare_same_bf16("heads packed with RoPE = heads of rotated q, k", in_rotated, of_rotated);
    /* unpacked, the heads give back the rotated values rounded to bf16 */
    Tensor unpacked((size_t)rows * 3 * D);
    check_status(attention_mma_unpack(unpacked.dev, in_rotated.dev, B, n, H, dh, 0),
                 "attention_mma_unpack");
    std::vector<double> rounded(rotated.size());
    for (size_t i = 0; i < rotated.size(); i++)
        rounded[i] = __bfloat162float(__float2bfloat16_rn(rotated[i]));
    compare_within("unpacked heads = bf16(rotated q, k; v), exactly", unpacked.download(), rounded,
                   0.0);
    /* from a bf16 qkv (the bf16 product's output): the same heads as from
     * its values in fp32 */
    make_bf16_exact(qkv);
    Bf16Buffer qkv16((size_t)rows * 3 * D), from16(heads), from32(heads);
    copy_to_bf16(qkv16, qkv);
    check_status(attention_mma_pack(from16.dev, qkv16.dev, cos_t.dev, sin_t.dev, B, n, H, dh, 0),
                 "attention_mma_pack (bf16 qkv)");
    check_status(attention_mma_pack(from32.dev, qkv.dev, cos_t.dev, sin_t.dev, B, n, H, dh, 0),
                 "attention_mma_pack (its values in fp32)");
    compare_same_bf16("heads from a bf16 qkv = from its fp32 values", from16, from32);
    cudaFree(dpos);
}

/* stats (B, H, n, 2 + nd) from probabilities P (B, H, n, n) in double,
 * straight from the definition (analysis/attention_stats.h): distance
 * sum_j P_ij (pos_i - pos_j), entropy -sum_j P_ij log P_ij, and the mass
 * on keys with pos_i - pos_j > D_k. */
static std::vector<double> reference_stats(const std::vector<double> &P, int B, int H, int n,
                                           const std::vector<int> &pos,
                                           const AttentionDistances &dist) {
    int K = 2 + dist.count;
    std::vector<double> stats((size_t)B * H * n * K, 0.0);
    for (size_t bh = 0; bh < (size_t)B * H; bh++)
        for (int i = 0; i < n; i++) {
            double *out = &stats[(bh * n + i) * K];
            for (int j = 0; j <= i; j++) {
                double p = P[(bh * n + i) * n + j];
                int gap = pos[i] - pos[j];
                out[0] += p * gap;
                if (p > 0) out[1] -= p * log(p);
                for (int k = 0; k < dist.count; k++)
                    if (gap > dist.distance[k]) out[2 + k] += p;
            }
        }
    return stats;
}

/* The fused attention against the CPU layer in double: out, the
 * observer's probabilities and statistics recomputed from the saved lse,
 * and dq, dk, dv. fp32 (tensor_cores 0): norm-wise relative error <= 1e-5.
 * Tensor cores (bf16 products, fp32 accumulation): <= 2e-2 (bf16 rounding
 * is 2^-9 per input). Outputs start random, so an unwritten element fails. */
static void test_attention(int B, int n, int H, int dh, int tensor_cores) {
    printf("attention%s B=%d n=%d H=%d dh=%d\n", tensor_cores ? " (tensor cores, bf16)" : "", B,
           n, H, dh);
    const double tolerance = tensor_cores ? 2e-2 : TOLERANCE;
    int D = H * dh, rows = B * n;
    Tensor q((size_t)rows * D, 2.0), k((size_t)rows * D, 2.0), v((size_t)rows * D);
    Tensor dy((size_t)rows * D), qkv((size_t)rows * 3 * D), out((size_t)rows * D);
    Tensor lse((size_t)B * H * n), dqkv((size_t)rows * 3 * D), rowdot((size_t)B * H * n);
    qkv.host = pack(q.host, k.host, v.host, rows, D);
    qkv.upload();
    std::vector<double> cy((size_t)rows * D), probs((size_t)B * H * n * n);
    attention_forward(cy.data(), probs.data(), q.host.data(), k.host.data(), v.host.data(), B, n,
                      H, dh);
    GemmContext work = {}; /* the tensor cores' bf16 copy of dout */
    Bf16Buffer out16((size_t)rows * D), heads(attention_mma_heads(B, n, H, dh));
    if (tensor_cores)
        check_status(attention_mma_pack(heads.dev, qkv.dev, NULL, NULL, B, n, H, dh, 0),
                     "attention_mma_pack");
    check_status(tensor_cores ? attention_mma_forward_heads(out.dev, out16.dev, lse.dev, heads.dev,
                                                            B, n, H, dh, 0)
                              : attention_forward(out.dev, lse.dev, qkv.dev, B, n, H, dh, 0),
                 "attention forward");
    compare_within("out", out.download(), cy, tolerance);
    if (tensor_cores) {
        compare_rounded("out in bf16 = bf16(out)", out16, out.download());
        Bf16Buffer only16((size_t)rows * D);
        check_status(attention_mma_forward_heads(NULL, only16.dev, lse.dev, heads.dev, B, n, H, dh,
                                                 0),
                     "attention forward, bf16 output alone");
        compare_same_bf16("bf16 output alone = with the fp32 one", only16, out16);
    }
    Tensor gprobs((size_t)B * H * n * n);
    check_status(attention_probs(gprobs.dev, qkv.dev, lse.dev, B, n, H, dh, 0), "attention_probs");
    compare_within("probs (recomputed for the observer)", gprobs.download(), probs, tolerance);
    AttentionDistances dist = {3, {4, 16, 64}};
    std::vector<int> pos(n);
    for (int i = 0; i < n; i++) pos[i] = 3 * i + 2;
    int *dpos;
    cudaMalloc(&dpos, n * sizeof(int));
    cudaMemcpy(dpos, pos.data(), n * sizeof(int), cudaMemcpyHostToDevice);
    Tensor gstats((size_t)B * H * n * (2 + dist.count));
    check_status(attention_stats(gstats.dev, qkv.dev, lse.dev, dpos, B, n, H, dh, &dist, 0),
                 "attention_stats");
    compare_within("statistics (distance, entropy, beyond 4/16/64)", gstats.download(),
                   reference_stats(probs, B, H, n, pos, dist), tolerance);
    cudaFree(dpos);
    std::vector<double> cdq((size_t)rows * D), cdk((size_t)rows * D), cdv((size_t)rows * D);
    std::vector<double> scratch(attention_scratch_size(n));
    attention_backward(cdq.data(), cdk.data(), cdv.data(), scratch.data(), dy.host.data(),
                       probs.data(), q.host.data(), k.host.data(), v.host.data(), B, n, H, dh);
    check_status(tensor_cores
                     ? attention_mma_backward_heads(&work, dqkv.dev, NULL, rowdot.dev, dy.dev,
                                                    out.dev, heads.dev, lse.dev, NULL, NULL, B, n,
                                                    H, dh)
                     : attention_backward(dqkv.dev, rowdot.dev, dy.dev, out.dev, qkv.dev,
                                          lse.dev, B, n, H, dh, 0),
                 "attention backward");
    if (tensor_cores) {
        /* bf16 gradients rotated back need the RoPE tables and a head
         * size the kernels unrotate in registers: refused otherwise,
         * before anything runs */
        Bf16Buffer refused((size_t)rows * 3 * D);
        int status = attention_mma_backward_heads(&work, NULL, refused.dev, rowdot.dev, dy.dev,
                                                  out.dev, heads.dev, lse.dev, NULL, NULL, B, n,
                                                  H, dh);
        int ok = status == -1;
        printf("  %-48s %s\n", "bf16 gradients without RoPE tables refused", ok ? "" : "FAIL");
        if (ok) passed++; else failed++;
    }
    compare_within("dq, dk, dv", dqkv.download(), pack(cdq, cdk, cdv, rows, D), tolerance);
    if (tensor_cores) {
        /* the row dots from the bf16 output (what the bf16 layers keep) */
        Tensor dqkv2((size_t)rows * 3 * D);
        check_status(attention_mma_backward_heads(&work, dqkv2.dev, NULL, rowdot.dev, dy.dev,
                                                  out16.dev, heads.dev, lse.dev, NULL, NULL, B, n,
                                                  H, dh),
                     "attention backward, row dots from the bf16 output");
        compare_within("dq, dk, dv (row dots from the bf16 output)", dqkv2.download(),
                       pack(cdq, cdk, cdv, rows, D), tolerance);
    }
    if (tensor_cores && attention_mma_unrotates(dh)) {
        /* the gradients rotated back and rounded by the kernels themselves
         * equal rope_backward_bf16 of their fp32 gradients */
        Tensor cos_t((size_t)n * dh / 2), sin_t((size_t)n * dh / 2);
        int *dpos2;
        cudaMalloc(&dpos2, n * sizeof(int));
        cudaMemcpy(dpos2, pos.data(), n * sizeof(int), cudaMemcpyHostToDevice);
        check_status(rope_table(cos_t.dev, sin_t.dev, dpos2, n, dh, 10000.0, 0), "rope_table");
        Bf16Buffer expect((size_t)rows * 3 * D), got((size_t)rows * 3 * D);
        check_status(attention_mma_backward_heads(&work, dqkv.dev, NULL, rowdot.dev, dy.dev,
                                                  out.dev, heads.dev, lse.dev, NULL, NULL, B, n,
                                                  H, dh) ||
                         rope_backward_bf16(expect.dev, dqkv.dev, cos_t.dev, sin_t.dev, B, n, H,
                                            dh, 0),
                     "attention backward, then rope_backward_bf16");
        check_status(attention_mma_backward_heads(&work, NULL, got.dev, rowdot.dev, dy.dev,
                                                  out.dev, heads.dev, lse.dev, cos_t.dev,
                                                  sin_t.dev, B, n, H, dh),
                     "attention backward to bf16, rotated back");
        compare_same_bf16("dq, dk (rotated back), dv in bf16 by the kernels", got, expect);
        cudaFree(dpos2);
    } else if (tensor_cores) {
        /* a head size the kernels pad: refused even with the tables */
        Tensor cos_t((size_t)n * dh / 2), sin_t((size_t)n * dh / 2);
        Bf16Buffer refused((size_t)rows * 3 * D);
        int status = attention_mma_backward_heads(&work, NULL, refused.dev, rowdot.dev, dy.dev,
                                                  out.dev, heads.dev, lse.dev, cos_t.dev,
                                                  sin_t.dev, B, n, H, dh);
        int ok = status == -1;
        printf("  %-48s %s\n", "bf16 gradients at a padded head size refused", ok ? "" : "FAIL");
        if (ok) passed++; else failed++;
    }
    gemm_context_free(&work);
}

static void test_swiglu(int M, int F) {
    printf("swiglu M=%d F=%d\n", M, F);
    Tensor a((size_t)M * F, 3.0), c((size_t)M * F), dm((size_t)M * F);
    Tensor ac((size_t)M * 2 * F), m((size_t)M * F), dac((size_t)M * 2 * F);
    make_bf16_exact(a); /* the bf16 kernels read ac in bf16 */
    make_bf16_exact(c);
    std::vector<double> zero((size_t)M * F, 0.0);
    ac.host = pack(a.host, c.host, zero, M, F);
    ac.host.resize((size_t)M * 2 * F);
    for (int r = 0; r < M; r++)
        for (int f = 0; f < F; f++) {
            ac.host[(size_t)r * 2 * F + f] = a.host[(size_t)r * F + f];
            ac.host[(size_t)r * 2 * F + F + f] = c.host[(size_t)r * F + f];
        }
    ac.upload();
    std::vector<double> cm((size_t)M * F), cda((size_t)M * F, 0.0), cdc((size_t)M * F, 0.0);
    swiglu_forward(cm.data(), a.host.data(), c.host.data(), (size_t)M * F);
    check_status(swiglu_forward(m.dev, ac.dev, M, F, 0), "swiglu_forward");
    compare("m", m.download(), cm);
    Bf16Buffer m16((size_t)M * F), dac16((size_t)M * 2 * F), ac16((size_t)M * 2 * F);
    copy_to_bf16(ac16, ac);
    check_status(swiglu_forward_bf16(m16.dev, ac16.dev, M, F, 0), "swiglu_forward_bf16");
    compare_rounded("m in bf16 = bf16(m)", m16, m.download());
    swiglu_backward(cda.data(), cdc.data(), dm.host.data(), a.host.data(), c.host.data(),
                    (size_t)M * F);
    check_status(swiglu_backward(dac.dev, dm.dev, ac.dev, M, F, 0), "swiglu_backward");
    std::vector<double> expect((size_t)M * 2 * F);
    for (int r = 0; r < M; r++)
        for (int f = 0; f < F; f++) {
            expect[(size_t)r * 2 * F + f] = cda[(size_t)r * F + f];
            expect[(size_t)r * 2 * F + F + f] = cdc[(size_t)r * F + f];
        }
    compare("da, dc", dac.download(), expect);
    /* the bf16 backward reads dm in bf16 too: the fp32 kernel again from
     * dm's bf16 values, then the bf16 kernel must write those rounded */
    make_bf16_exact(dm);
    Bf16Buffer dm16((size_t)M * F);
    copy_to_bf16(dm16, dm);
    check_status(swiglu_backward(dac.dev, dm.dev, ac.dev, M, F, 0), "swiglu_backward (bf16 dm)");
    check_status(swiglu_backward_bf16(dac16.dev, dm16.dev, ac16.dev, M, F, 0),
                 "swiglu_backward_bf16");
    compare_rounded("da, dc in bf16 = bf16(da, dc)", dac16, dac.download());
}

/* round_bf16 over counts that are and are not multiples of four. */
static void test_round_bf16(size_t count) {
    printf("round_bf16 count=%zu\n", count);
    Tensor x(count, 100.0);
    Bf16Buffer x16(count);
    check_status(round_bf16(x16.dev, x.dev, count, 0), "round_bf16");
    compare_rounded("bf16(x)", x16, x.download());
}

static void test_crossentropy(int M, int V) {
    printf("crossentropy M=%d V=%d\n", M, V);
    Tensor logits((size_t)M * V, 4.0);
    make_bf16_exact(logits); /* the same values in bf16 for the bf16 kernels */
    Bf16Buffer logits16((size_t)M * V);
    copy_to_bf16(logits16, logits);
    std::vector<int> targets(M);
    for (int r = 0; r < M; r++) targets[r] = r % 7 == 3 ? -1 : (int)((r * 131) % V);
    int *dtargets;
    double *dsum, *drow, *dlse;
    cudaMalloc(&dtargets, M * sizeof(int));
    cudaMalloc(&dsum, sizeof(double));
    cudaMalloc(&drow, M * sizeof(double));
    cudaMalloc(&dlse, M * sizeof(double));
    cudaMemcpy(dtargets, targets.data(), M * sizeof(int), cudaMemcpyHostToDevice);
    int count = 0;
    double loss = crossentropy_forward(logits.host.data(), targets.data(), M, V, &count);
    check_status(crossentropy_forward(dsum, drow, dlse, logits.dev, dtargets, M, V, 0),
                 "crossentropy_forward");
    double sum = 0;
    cudaMemcpy(&sum, dsum, sizeof(double), cudaMemcpyDeviceToHost);
    std::vector<float> got = {(float)(sum / count)};
    compare("mean loss", got, std::vector<double>{loss});
    check_status(crossentropy_forward(dsum, drow, dlse, logits16.dev, dtargets, M, V, 0),
                 "crossentropy_forward (bf16 logits)");
    cudaMemcpy(&sum, dsum, sizeof(double), cudaMemcpyDeviceToHost);
    got[0] = (float)(sum / count);
    compare("mean loss from bf16 logits", got, std::vector<double>{loss});
    std::vector<double> cd((size_t)M * V, 0.0);
    crossentropy_backward(cd.data(), logits.host.data(), targets.data(), M, V, 1.0 / count);
    check_status(crossentropy_backward(logits16.dev, dlse, dtargets, M, V, (float)(1.0 / count),
                                       0),
                 "crossentropy_backward (bf16, in place)");
    check_status(crossentropy_backward(logits.dev, dlse, dtargets, M, V, (float)(1.0 / count), 0),
                 "crossentropy_backward");
    std::vector<float> dlogits = logits.download();
    compare("dlogits", dlogits, cd);
    compare_rounded(V % 4 ? "dlogits in bf16 = bf16(dlogits)" : "dlogits in bf16, 4 a thread = bf16(dlogits)",
                    logits16, dlogits);
    /* the training pass: loss and gradient at once from the bf16 logits */
    if (crossentropy_train_supports(V)) {
        Bf16Buffer train16((size_t)M * V);
        logits.upload(); /* the backward above overwrote the device copy */
        copy_to_bf16(train16, logits);
        cudaMemset(dsum, 0xff, sizeof(double)); /* NaN: the sum must be written */
        check_status(crossentropy_train(dsum, drow, dlse, train16.dev, dtargets, M, V,
                                        (float)(1.0 / count), 0),
                     "crossentropy_train");
        cudaMemcpy(&sum, dsum, sizeof(double), cudaMemcpyDeviceToHost);
        got[0] = (float)(sum / count);
        compare_within("mean loss, training pass", got, std::vector<double>{loss}, 1e-6);
        std::vector<__nv_bfloat16> g16((size_t)M * V);
        cudaMemcpy(g16.data(), train16.dev, g16.size() * sizeof(__nv_bfloat16),
                   cudaMemcpyDeviceToHost);
        std::vector<float> g(g16.size());
        for (size_t i = 0; i < g.size(); i++) g[i] = __bfloat162float(g16[i]);
        /* bf16 keeps 8 bits: 2^-9 relative per element at most */
        compare_within("dlogits, training pass (bf16)", g, cd, 2.0 / 512);
        size_t zero_rows = 0, rows_without = 0;
        for (int r = 0; r < M; r++) {
            if (targets[r] >= 0) continue;
            rows_without++;
            int all_zero = 1;
            for (int c = 0; c < V; c++) all_zero &= g[(size_t)r * V + c] == 0.0f;
            zero_rows += all_zero;
        }
        int ok = zero_rows == rows_without;
        printf("  %-48s %zu of %zu %s\n", "rows without a target: gradient 0", zero_rows,
               rows_without, ok ? "" : "FAIL");
        if (ok) passed++; else failed++;
    } else {
        /* a vocabulary the training pass cannot take: refused, naming why,
         * before anything runs */
        int status = crossentropy_train(dsum, drow, dlse, logits16.dev, dtargets, M, V, 1.0f, 0);
        int ok = status == -1 && strstr(spiral_last_error(), "multiple of 8") != NULL;
        printf("  %-48s %s\n", "training pass refuses V % 8 != 0", ok ? "" : "FAIL");
        if (ok) passed++; else failed++;
    }
    cudaFree(dtargets); cudaFree(dsum); cudaFree(drow); cudaFree(dlse);
}

static void test_scaling(int B, int L, int d, int g, int w, int s, int selfagg, int alloc) {
    printf("scaling B=%d L=%d d=%d g=%d offset=%d shift=%d %s/%s\n", B, L, d, g, w, s,
           selfagg ? "selfagg" : "mean", alloc ? "alloc" : "copy");
    IterSpec spec = {g, w, s};
    ChunkGeometry geo = chunk_geometry(L, &spec);
    GpuGeometry gg = {geo.L, geo.g, geo.w, geo.s, geo.J};
    int J = geo.J;
    GemmContext blas = {};
    cublasCreate(&blas.handle);
    Tensor h((size_t)B * L * d), score(d, 0.5), alloc_w((size_t)g * d, 0.5), base((size_t)B * L * d);
    Tensor z((size_t)B * J * d), alpha((size_t)B * L), dz((size_t)B * J * d);
    Tensor dh((size_t)B * L * d), dscore(d), delta((size_t)B * J * d), coef((size_t)B * J * g);
    Tensor h_out((size_t)B * L * d), dh_out((size_t)B * L * d), ddelta((size_t)B * J * d);
    Tensor dalloc((size_t)g * d), fl((size_t)B * L * g + B * L);
    double *dd;
    size_t scratch = (size_t)B * J * g + (size_t)B * L;
    cudaMalloc(&dd, scratch * sizeof(double));
    int mode = selfagg ? DOWN_SELFAGG : DOWN_MEAN, up = alloc ? UP_ALLOC : UP_COPY;
    /* down */
    std::vector<double> cz((size_t)B * J * d), calpha((size_t)B * L);
    downscale_forward(cz.data(), calpha.data(), h.host.data(), score.host.data(), &geo, B, d, mode);
    check_status(downscale_forward(z.dev, alpha.dev, h.dev, score.dev, gg, B, d, selfagg, 0),
                 "downscale_forward");
    compare("z", z.download(), cz);
    std::vector<double> cdh = dh.host, cdscore = dscore.host, cscratch(scratch);
    downscale_backward(cdh.data(), cdscore.data(), cscratch.data(), dz.host.data(), h.host.data(),
                       calpha.data(), score.host.data(), &geo, B, d, mode);
    check_status(downscale_backward(dh.dev, dscore.dev, dd, fl.dev, dz.dev, h.dev, alpha.dev,
                                    score.dev, gg, B, d, selfagg, &blas, 0),
                 "downscale_backward");
    compare("dh (accumulated)", dh.download(), cdh);
    if (selfagg) compare("dscore (accumulated)", dscore.download(), cdscore);
    /* up */
    std::vector<double> cout_((size_t)B * L * d), ccoef((size_t)B * J * g);
    upscale_forward(cout_.data(), ccoef.data(), base.host.data(), delta.host.data(),
                    alloc_w.host.data(), &geo, B, d, up);
    check_status(upscale_forward(h_out.dev, coef.dev, base.dev, delta.dev, alloc_w.dev, gg, B, d,
                                 alloc, &blas, 0), "upscale_forward");
    compare("h_out", h_out.download(), cout_);
    if (alloc) compare("coef", coef.download(), ccoef);
    std::vector<double> cdd = ddelta.host, cdalloc = dalloc.host;
    upscale_backward(cdd.data(), cdalloc.data(), cscratch.data(), dh_out.host.data(),
                     delta.host.data(), ccoef.data(), alloc_w.host.data(), &geo, B, d, up);
    check_status(upscale_backward(ddelta.dev, dalloc.dev, dd, fl.dev, dh_out.dev, delta.dev,
                                  coef.dev, alloc_w.dev, gg, B, d, alloc, &blas, 0),
                 "upscale_backward");
    compare("ddelta (accumulated)", ddelta.download(), cdd);
    if (alloc) compare("dalloc (accumulated)", dalloc.download(), cdalloc);
    cudaFree(dd);
    gemm_context_free(&blas);
    cublasDestroy(blas.handle);
}

/* One iteration of topology mesh (cuda_mesh.cu against core/mesh.c): the
 * write, the read and the state update, then their backward, at the first
 * iteration (slots m_0 = h0, no K before) or a later one (slots and K of
 * the iteration before). The routers' gradients start non-zero: the
 * kernels must add to them. */
static void test_mesh(int B, int L, int d, int S, int first) {
    printf("mesh B=%d L=%d d=%d S=%d, %s iteration\n", B, L, d, S, first ? "first" : "a later");
    size_t n = (size_t)B * L * d, ns = (size_t)B * L * S;
    Tensor h_out(n), e(n), h0(n), mem_prev((size_t)S * n), k_prev(n, 0.3);
    Tensor write((size_t)S * d, 0.5), write_bias(S, 0.5), read((size_t)S * d, 0.5),
        read_bias(S, 0.5);
    Tensor mem((size_t)S * n), k(n), w(ns), r(ns);
    GpuMeshWeights gpu_weights = {write.dev, write_bias.dev, read.dev, read_bias.dev};
    MeshWeights cpu_weights = {write.host.data(), write_bias.host.data(), read.host.data(),
                               read_bias.host.data()};
    /* forward: h_out holds h(t) + e on entry on both sides */
    std::vector<double> ch = h_out.host, cmem((size_t)S * n), ck(n), cw(ns), cr(ns);
    mesh_forward(ch.data(), cmem.data(), ck.data(), cw.data(), cr.data(), e.host.data(),
                 first ? NULL : mem_prev.host.data(), h0.host.data(),
                 first ? NULL : k_prev.host.data(), &cpu_weights, B, L, d, S);
    check_status(mesh_forward(h_out.dev, mem.dev, k.dev, w.dev, r.dev, e.dev,
                              first ? NULL : mem_prev.dev, h0.dev, first ? NULL : k_prev.dev,
                              &gpu_weights, B, L, d, S, 0),
                 "mesh_forward");
    compare("h(t+1)", h_out.download(), ch);
    compare("slots after the write", mem.download(), cmem);
    compare("K(t+1)", k.download(), ck);
    compare("write weights", w.download(), cw);
    compare("read weights", r.download(), cr);
    /* backward, each side from its own forward's saved values */
    Tensor dh_out(n), dmem((size_t)S * n), de(n);
    Tensor dwrite((size_t)S * d), dwrite_bias(S), dread((size_t)S * d), dread_bias(S);
    GpuMeshWeights gpu_grads = {dwrite.dev, dwrite_bias.dev, dread.dev, dread_bias.dev};
    std::vector<double> cdmem = dmem.host, cdwrite = dwrite.host, cdwrite_bias = dwrite_bias.host;
    std::vector<double> cdread = dread.host, cdread_bias = dread_bias.host;
    MeshWeights cpu_grads = {cdwrite.data(), cdwrite_bias.data(), cdread.data(),
                             cdread_bias.data()};
    std::vector<double> cde(n), cscratch(mesh_scratch_size(B, L, S));
    mesh_backward(cde.data(), cdmem.data(), &cpu_grads, cscratch.data(), dh_out.host.data(),
                  e.host.data(), cmem.data(), cw.data(), cr.data(), &cpu_weights, B, L, d, S);
    float *scratch = NULL;
    cudaMalloc(&scratch, 2 * ns * sizeof(float));
    GemmContext blas = {};
    cublasCreate(&blas.handle);
    check_status(mesh_backward(de.dev, dmem.dev, &gpu_grads, scratch, dh_out.dev, e.dev, mem.dev,
                               w.dev, r.dev, &gpu_weights, B, L, d, S, &blas, 0),
                 "mesh_backward");
    compare("de", de.download(), cde);
    compare("dslots before the write", dmem.download(), cdmem);
    compare("write router gradient (accumulated)", dwrite.download(), cdwrite);
    compare("write bias gradient (accumulated)", dwrite_bias.download(), cdwrite_bias);
    compare("read router gradient (accumulated)", dread.download(), cdread);
    compare("read bias gradient (accumulated)", dread_bias.download(), cdread_bias);
    cudaFree(scratch);
    gemm_context_free(&blas);
    cublasDestroy(blas.handle);
}

int main(void) {
    test_rmsnorm(37, 200);
    test_rmsnorm(5, 8);
    test_rmsnorm(7, 30); /* d % 4 != 0: one column a lane */
    test_rmsnorm(1000, 768); /* the gain sums in the row kernel: 125 blocks of rows */
    test_rmsnorm(21, 1028);  /* d > RMSNORM_FUSED_D: the gain sums in a pass of their own */
    test_rope(2, 19, 3, 8);
    test_rope(2, 19, 3, 6); /* dh % 4 != 0: the heads packed one column pair at a time */
    test_rope(2, 70, 4, 64);
    test_rope(1, 33, 2, 100);
    test_rope(2, 33000, 1, 4); /* more rows than a grid's y (65535): the row stride */
    test_rope(2, 19, 3, 24);   /* four columns a thread, padded to 32 */
    test_rope(1, 9000, 2, 12); /* two columns a thread, padded; more rows than the grid */
    for (int tensor_cores = 0; tensor_cores <= 1; tensor_cores++) {
        test_attention(2, 19, 2, 4, tensor_cores);
        test_attention(2, 150, 3, 16, tensor_cores);
        test_attention(1, 130, 2, 32, tensor_cores);
        test_attention(2, 200, 2, 64, tensor_cores);
        test_attention(1, 70, 2, 128, tensor_cores);
        test_attention(2, 90, 1, 100, tensor_cores);
    }
    test_attention(1, 1000, 2, 64, 1);
    /* heads packed to 64 columns: dh 48 (zero padding), 1 and 63 rows */
    test_attention(2, 77, 2, 48, 1);
    test_attention(3, 1, 2, 64, 1);
    test_attention(1, 63, 3, 64, 1);
    test_attention(1, 300, 1, 128, 1);
    /* from 1024 rows the forward gives each warp two row tiles (head sizes
     * < 64; at 64 the wgmma forward two warpgroups a block); lengths that
     * end inside a block's last tile */
    test_attention(1, 1100, 2, 64, 1);
    test_attention(1, 1030, 1, 32, 1);
    test_attention(2, 1025, 1, 16, 1);
    test_swiglu(33, 70);   /* two columns a thread */
    test_swiglu(5, 700);   /* four */
    test_swiglu(9000, 8);  /* four, more rows than the wide kernels' grid */
    test_swiglu(4, 7);     /* odd: one */
    test_swiglu(70000, 3); /* more rows than a grid's y (65535): the row stride */
    test_round_bf16(1003);
    test_round_bf16(4096);
    test_crossentropy(40, 300);
    test_crossentropy(9, 301);
    test_crossentropy(40, 304);   /* V % 8 == 0: the training pass too */
    test_crossentropy(3, 50304);  /* the d = 768 bench's vocabulary: > 48 KiB of shared memory */
    test_crossentropy(5, 8);
    test_scaling(2, 19, 24, 4, 2, 5, 1, 1);
    test_scaling(2, 19, 24, 3, 1, 2, 0, 0);
    test_scaling(3, 37, 40, 8, 5, 7, 1, 0);
    test_scaling(2, 37, 40, 5, 0, 4, 0, 1);
    test_mesh(2, 19, 24, 4, 1);
    test_mesh(2, 19, 24, 3, 0);
    test_mesh(1, 70, 40, 2, 0);
    test_mesh(3, 33, 100, 8, 0); /* d % 4 != 0 rows, more slots */
    printf("test_cuda_kernels: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
