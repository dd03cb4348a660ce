/*
 * bench_cuda_engine.cu: training throughput of the CUDA engine, and the
 * matrix-product ceilings of the same GPU measured in the same run.
 *
 * A step is what core/train.c does per batch through the engine: zero the
 * gradients, the training forward with targets (cuda_model_forward_train),
 * backward, global-norm clip, AdamW. Timed with the GPU idle
 * before and after (each phase ends in a synchronization), after two
 * warm-up steps. Model FLOP/s uses core/cost.h's analytic count (training =
 * 3 x forward). Ceilings: one 8192^3 product in fp32, TF32 and bf16 (fp32
 * accumulation) through cublasGemmEx.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda_engine.h"
#include "cuda_check.cuh"
#include "cuda_kernels.cuh"

extern "C" {
#include "cost.h"
#include "error.h"
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* x_i = uniform in [-1, 1) from a hash of i, as float or bf16. */
template <typename T>
static __global__ void fill_kernel(T *x, size_t n, uint32_t seed) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13; h *= 3266489917u; h ^= h >> 16;
    x[i] = (T)((float)(h >> 8) / 8388608.0f - 1.0f);
}

/* TFLOP/s of C = A B (N x N x N) with the given types and compute mode. */
static double gemm_ceiling(cublasHandle_t handle, cudaDataType_t ab_type, cublasComputeType_t compute,
                           int N) {
    size_t n = (size_t)N * N, ab_size = ab_type == CUDA_R_16BF ? 2 : 4;
    void *a = NULL, *b = NULL;
    float *c = NULL;
    if (cudaMalloc(&a, n * ab_size) || cudaMalloc(&b, n * ab_size) || cudaMalloc(&c, n * 4)) {
        fprintf(stderr, "gemm_ceiling: cudaMalloc failed\n");
        return NAN;
    }
    unsigned blocks = (unsigned)((n + 255) / 256);
    if (ab_type == CUDA_R_16BF) {
        fill_kernel<__nv_bfloat16><<<blocks, 256>>>((__nv_bfloat16 *)a, n, 1);
        fill_kernel<__nv_bfloat16><<<blocks, 256>>>((__nv_bfloat16 *)b, n, 2);
    } else {
        fill_kernel<float><<<blocks, 256>>>((float *)a, n, 1);
        fill_kernel<float><<<blocks, 256>>>((float *)b, n, 2);
    }
    float alpha = 1, beta = 0;
    double best = NAN;
    for (int rep = 0; rep < 13; rep++) {
        if (rep == 3) {
            cudaDeviceSynchronize();
            best = seconds_now();
        }
        cublasStatus_t status = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &alpha, a,
                                             ab_type, N, b, ab_type, N, &beta, c, CUDA_R_32F, N,
                                             compute, CUBLAS_GEMM_DEFAULT);
        if (status != CUBLAS_STATUS_SUCCESS) {
            fprintf(stderr, "gemm_ceiling: cublasGemmEx: %s\n", cublasGetStatusString(status));
            best = NAN;
            break;
        }
    }
    cudaDeviceSynchronize();
    double seconds = (seconds_now() - best) / 10;
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    return 2.0 * N * N * (double)N / seconds / 1e12;
}

typedef struct {
    const char *name;
    SpiralConfig cfg;
    int B, L, steps;
    const char *key;   /* the case's name in bench/torch_spiral.py */
    int bf16_only;     /* time the bf16 modes only */
} BenchCase;

/* The modes timed: each precision with CUDA graphs (the default), and bf16
 * eager (every kernel launched on every step) to show what graphs save. */
typedef struct {
    CudaPrecision precision;
    int eager;
    const char *name;
} BenchMode;

static const BenchMode MODES[4] = {{CUDA_FP32, 0, "fp32"}, {CUDA_TF32, 0, "tf32"},
                                   {CUDA_BF16, 0, "bf16"}, {CUDA_BF16, 1, "bf16-eager"}};

/* Times forward, backward and the optimizer over `steps` steps. Memory in
 * GB: the parameters, gradients and AdamW moments (16 bytes a parameter),
 * the activations and bf16 work buffers the model holds, and the device
 * memory the process took since before the model was built (cudaMemGetInfo:
 * adds cuBLAS's workspace). */
static int bench_model(const BenchCase *bc, const BenchMode *mode) {
    CudaOptions options = {mode->precision, mode->eager};
    CudaModel *model = NULL;
    size_t free_before = 0, free_after = 0, total = 0;
    cudaMemGetInfo(&free_before, &total);
    if (cuda_model_build(&model, &bc->cfg, &options)) return -1;
    const ParamLayout *layout = cuda_model_layout(model);
    size_t n = layout->n_params;
    int B = bc->B, L = bc->L, V = bc->cfg.vocab_size, M = B * L;
    float *params = (float *)malloc(n * sizeof(float));
    int *tokens = (int *)malloc((size_t)M * sizeof(int)), *targets = (int *)malloc((size_t)M * sizeof(int));
    if (!params || !tokens || !targets) return spiral_error("out of memory");
    uint64_t state = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        params[i] = (float)(0.02 * ((double)(state >> 11) / 4503599627370496.0 - 1.0));
    }
    for (int i = 0; i < layout->n_tensors; i++)
        if (strstr(layout->tensors[i].name, "norm.weight"))
            for (size_t k = 0; k < layout->tensors[i].numel; k++) params[layout->tensors[i].offset + k] = 1;
    for (int i = 0; i < M; i++) {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        tokens[i] = (int)(state % (uint64_t)V);
    }
    for (int i = 0; i < M; i++) targets[i] = (i + 1) % L ? tokens[i + 1] : -1;
    AdamWSettings adam = {3e-4, 0.9, 0.95, 1e-8, 0.1};
    if (cuda_model_set_params(model, params)) return -1;
    double fwd = 0, bwd = 0, opt = 0, loss = 0, norm = 0;
    for (int step = 1; step <= bc->steps + 2; step++) {
        double t0 = seconds_now();
        if (cuda_model_zero_grad(model) ||
            cuda_model_forward_train(model, tokens, targets, B, L, &loss))
            return -1;
        double t1 = seconds_now();
        if (cuda_model_backward(model) || cuda_model_synchronize(model)) return -1;
        double t2 = seconds_now();
        if (cuda_model_clip_grad_norm(model, 1.0, &norm) ||
            cuda_model_adamw_step(model, &adam, step) || cuda_model_synchronize(model))
            return -1;
        double t3 = seconds_now();
        if (step == 2) cuda_model_profile_reset(model); /* SPIRAL_CUDA_PROFILE: timed steps only */
        if (step > 2) {
            fwd += t1 - t0;
            bwd += t2 - t1;
            opt += t3 - t2;
        }
    }
    int steps = bc->steps;
    double step_s = (fwd + bwd + opt) / steps;
    ModelCost cost;
    model_cost(&cost, &bc->cfg, L);
    double tflops = cost.train_flops * B / step_s / 1e12;
    cudaMemGetInfo(&free_after, &total);
    double state_gb = 16.0 * n / 1e9, model_gb = cuda_model_device_bytes(model) / 1e9;
    printf("%-34s %-10s %8.2f %8.2f %7.2f %9.2f %12.0f %8.1f %7.1f %7.1f %7.1f  loss %.4f\n",
           bc->name, mode->name, 1e3 * fwd / steps, 1e3 * bwd / steps,
           1e3 * opt / steps, 1e3 * step_s, M / step_s, tflops, state_gb, model_gb - state_gb,
           (double)(free_before - free_after) / 1e9, loss);
    /* for bench/cuda_vs_torch.sh */
    printf("# result %s spiral-%s %.0f %.1f\n", bc->key, mode->name, M / step_s, tflops);
    if (!mode->eager && cuda_model_graph_launches(model) == 0)
        printf("# warning: %s %s ran eagerly: no CUDA graph was captured (profiling, or a "
               "capture failed)\n", bc->key, mode->name);
    fflush(stdout);
    cuda_model_free(model);
    free(params);
    free(tokens);
    free(targets);
    return 0;
}

/* The bf16 attention alone at the d = 768 case's shape (B = 8, H = 12, dh =
 * 64) and each latent length of its schedule: forward (bf16 output and
 * lse) and backward (dout packed with its row dots, dq and dk/dv rotated
 * back into bf16), each timed over 20 launches with CUDA events after 3
 * warm-up ones. TFLOP/s counts the causal products actually needed: the
 * forward 2 (q k^T, p v), the backward 5 (s, dp, dq, dk, dv), each 2 dh
 * flops per (query, key <= query) pair. */
static int bench_attention(void) {
    const int B = 8, H = 12, dh = 64, D = H * dh, lengths[4] = {256, 512, 1024, 2048};
    printf("%-28s %10s %10s %10s %10s\n", "attention B=8 H=12 dh=64", "fwd ms", "fwd TF/s",
           "bwd ms", "bwd TF/s");
    GemmContext work = {};
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    for (int c = 0; c < 4; c++) {
        int n = lengths[c];
        size_t rows = (size_t)B * n, nheads = attention_mma_heads(B, n, H, dh);
        __nv_bfloat16 *heads = NULL, *out16 = NULL, *dqkv16 = NULL;
        float *lse = NULL, *rowdot = NULL, *dout = NULL, *cos_t = NULL, *sin_t = NULL;
        int *pos = NULL;
        if (cudaMalloc(&heads, nheads * 2) || cudaMalloc(&out16, rows * D * 2) ||
            cudaMalloc(&dqkv16, rows * 3 * D * 2) || cudaMalloc(&lse, (size_t)B * H * n * 4) ||
            cudaMalloc(&rowdot, (size_t)B * H * n * 4) || cudaMalloc(&dout, rows * D * 4) ||
            cudaMalloc(&cos_t, (size_t)n * dh / 2 * 4) || cudaMalloc(&sin_t, (size_t)n * dh / 2 * 4) ||
            cudaMalloc(&pos, n * sizeof(int)))
            return spiral_error("bench_attention: cudaMalloc failed");
        fill_kernel<__nv_bfloat16><<<(unsigned)((nheads + 255) / 256), 256>>>(heads, nheads, 3);
        fill_kernel<float><<<(unsigned)((rows * D + 255) / 256), 256>>>(dout, rows * D, 4);
        int *host_pos = (int *)malloc(n * sizeof(int));
        for (int i = 0; i < n; i++) host_pos[i] = i;
        cudaMemcpy(pos, host_pos, n * sizeof(int), cudaMemcpyHostToDevice);
        free(host_pos);
        if (rope_table(cos_t, sin_t, pos, n, dh, 10000.0, 0)) return -1;
        float ms[2] = {0, 0};
        for (int pass = 0; pass < 2; pass++) {
            for (int rep = 0; rep < 23; rep++) {
                if (rep == 3) cudaEventRecord(start);
                int status = pass == 0
                    ? attention_mma_forward_heads(NULL, out16, lse, heads, B, n, H, dh, 0)
                    : attention_mma_backward_heads(&work, NULL, dqkv16, rowdot, dout, out16, heads,
                                                   lse, cos_t, sin_t, B, n, H, dh);
                if (status) return -1;
            }
            cudaEventRecord(stop);
            if (cuda_status(cudaEventSynchronize(stop), "bench_attention")) return -1;
            cudaEventElapsedTime(&ms[pass], start, stop);
            ms[pass] /= 20;
        }
        double pairs = (double)B * H * n * (n + 1) / 2, product = 2.0 * dh * pairs;
        char name[64];
        snprintf(name, sizeof name, "  n=%d", n);
        printf("%-28s %10.3f %10.1f %10.3f %10.1f\n", name, ms[0], 2 * product / ms[0] / 1e9,
               ms[1], 5 * product / ms[1] / 1e9);
        cudaFree(heads); cudaFree(out16); cudaFree(dqkv16); cudaFree(lse); cudaFree(rowdot);
        cudaFree(dout); cudaFree(cos_t); cudaFree(sin_t); cudaFree(pos);
    }
    gemm_context_free(&work);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return 0;
}

static SpiralConfig bench_config(int V, int d, int H, int F) {
    SpiralConfig c;
    config_default(&c); /* selfagg / alloc / residual, g = 8, 4, 2, 1, 1 + 2 + 1 layers */
    c.vocab_size = V;
    c.d_model = d;
    c.n_heads = H;
    c.d_ff = F;
    c.n_pre = 1;
    c.n_loop = 2;
    c.n_post = 1;
    return c;
}

/* The same model as a vanilla looped Transformer: every iteration at full
 * resolution (g = 1). */
static SpiralConfig looped_config(SpiralConfig c) {
    for (int t = 0; t < c.n_iters; t++) c.schedule[t].g = 1;
    return c;
}

/* bench_cuda_engine [CASE [MODE]]: CASE d256, d768 or d768-looped, MODE fp32, tf32, bf16
 * or bf16-eager run only those (e.g. under a profiler); none: all.
 * bench_cuda_engine attention: the bf16 attention kernels alone. */
int main(int argc, char **argv) {
    const char *only_case = argc > 1 ? argv[1] : NULL, *only_precision = argc > 2 ? argv[2] : NULL;
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        fprintf(stderr, "bench_cuda_engine: no CUDA device\n");
        return 1;
    }
    printf("device: %s, %d SMs, %.0f GB\n\n", prop.name, prop.multiProcessorCount,
           prop.totalGlobalMem / 1e9);
    if (only_case && !strcmp(only_case, "attention")) {
        if (bench_attention() == 0) return 0;
        fprintf(stderr, "bench_cuda_engine: %s\n", spiral_last_error());
        return 1;
    }
    enum { CASES = 3 };
    BenchCase cases[CASES] = {
        {"d=256 H=4 F=688 V=256 L=256 B=64", bench_config(256, 256, 4, 688), 64, 256, 50, "d256", 0},
        {"d=768 H=12 F=2048 V=50304 L=2048 B=8", bench_config(50304, 768, 12, 2048), 8, 2048, 4, "d768", 0},
        {"the same, looped (g=1,1,1,1)", looped_config(bench_config(50304, 768, 12, 2048)), 8,
         2048, 4, "d768-looped", 1},
    };
    printf("%-34s %-10s %8s %8s %7s %9s %12s %8s %7s %7s %7s\n",
           "model (1 pre + 2 core x g=8,4,2,1 + 1 post)", "mode", "fwd ms", "bwd ms", "opt ms",
           "step ms", "tokens/s", "TFLOP/s", "stateGB", "actGB", "usedGB");
    for (int i = 0; i < CASES; i++)
        for (int k = 0; k < 4; k++)
            if ((!only_case || !strcmp(only_case, cases[i].key)) &&
                (!cases[i].bf16_only || MODES[k].precision == CUDA_BF16) &&
                (!only_precision || !strcmp(only_precision, MODES[k].name)) &&
                bench_model(&cases[i], &MODES[k]))
                fprintf(stderr, "%s: %s\n", cases[i].name, spiral_last_error());
    if (only_case) return 0;
    cublasHandle_t handle;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) return 1;
    printf("\ncuBLAS 8192^3 ceilings (same run): fp32 %.1f TFLOP/s, tf32 %.1f TFLOP/s, "
           "bf16 %.1f TFLOP/s\n",
           gemm_ceiling(handle, CUDA_R_32F, CUBLAS_COMPUTE_32F, 8192),
           gemm_ceiling(handle, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, 8192),
           gemm_ceiling(handle, CUDA_R_16BF, CUBLAS_COMPUTE_32F, 8192));
    cublasDestroy(handle);
    return 0;
}
