/*
 * cuda_kernels.cuh: the launchers of the CUDA engine's kernels, one group
 * per file (cuda_gemm.cu, cuda_norm.cu, cuda_rope.cu, cuda_attention.cu,
 * cuda_pointwise.cu, cuda_scale.cu, cuda_loss.cu, cuda_adamw.cu).
 *
 * The equations are those of core/layers.h and core/scale.h; row-major
 * throughout, M = rows (batch x positions). Arguments follow llm.c: outputs
 * first, then inputs, then sizes, then the stream. Every launcher returns 0
 * or -1 (spiral_error naming the kernel). Unlike the CPU layers, a "forward"
 * or intermediate output is always overwritten (=); gradients of shared
 * tensors (weights, residual streams) accumulate (+=) where the comment says
 * so. No kernel uses atomics: every sum is taken in an order that depends on
 * the shapes only, so results are reproducible run to run.
 */
#ifndef SPIRAL_CUDA_KERNELS_CUH
#define SPIRAL_CUDA_KERNELS_CUH

#include <stddef.h>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

/* ---- cuda_profile.cu ------------------------------------------------- */

/* Spans of GPU time by phase (developers: SPIRAL_CUDA_PROFILE=1). */
typedef enum {
    PROFILE_PACK, PROFILE_GEMM, PROFILE_ATTENTION_FORWARD, PROFILE_ATTENTION_BACKWARD,
    PROFILE_LOSS, PROFILE_LAYER, PROFILE_OPTIMIZER, PROFILE_PHASES
} ProfilePhase;
typedef struct CudaProfile CudaProfile;
/* A profile when SPIRAL_CUDA_PROFILE is set (and not "0"), else NULL; the
 * functions below do nothing with NULL. */
CudaProfile *profile_create(void);
/* Opens a span of `phase` on stream; profile_end closes the innermost.
 * Spans nest; each phase is charged its exclusive time. */
void profile_begin(CudaProfile *p, ProfilePhase phase, cudaStream_t stream);
void profile_end(CudaProfile *p, cudaStream_t stream);
/* Sums the spans so far and sets the totals back to zero. */
void profile_reset(CudaProfile *p);
/* Prints the sums per phase to stderr and frees p. */
void profile_free(CudaProfile *p);

/* ---- cuda_gemm.cu ---------------------------------------------------- */

/* How the matrix products of one model run (cuda_engine.h's CudaPrecision),
 * on its cuBLAS handle and stream; work holds the bf16 copies of the
 * operands (grown on demand, reused in stream order). */
typedef struct {
    cublasHandle_t handle;
    int precision;        /* CUDA_FP32, CUDA_TF32 or CUDA_BF16 */
    cudaStream_t stream;
    void *work;
    size_t work_bytes;
    void *keep;           /* one bf16 operand kept for two products (gemm_keep) */
    size_t keep_bytes;
    CudaProfile *profile; /* NULL unless profiling */
} GemmContext;

/* C (m, n) = alpha op(A) op(B) + beta C, row-major like base/matmul.h,
 * through cublasGemmEx; C is fp32 and every sum accumulates in fp32. The
 * inputs are fp32 (CUDA_FP32), rounded to TF32 by the tensor cores
 * (CUDA_TF32), or first rounded to bf16 (round to nearest even) into
 * gc->work (CUDA_BF16). */
int gemm(GemmContext *gc, int transpose_a, int transpose_b, int m, int n, int k, float alpha,
         const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* The same from bf16 operands (a16 stored (m, k), or (k, m) when
 * transposed, with leading dimension lda; b16 likewise): no copies. */
int gemm_bf16(GemmContext *gc, int transpose_a, int transpose_b, int m, int n, int k,
              float alpha, const __nv_bfloat16 *a16, int lda, const __nv_bfloat16 *b16, int ldb,
              float beta, float *c, int ldc);
/* The same with C (m, n) = op(A) op(B) written in bf16 (the sums in fp32,
 * rounded once): the products whose outputs only feed kernels that read
 * bf16 (qkv, the SwiGLU input, the logits). */
int gemm_bf16_out16(GemmContext *gc, int transpose_a, int transpose_b, int m, int n, int k,
                    const __nv_bfloat16 *a16, int lda, const __nv_bfloat16 *b16, int ldb,
                    __nv_bfloat16 *c16, int ldc);
/* out (count) = bf16(in (count)), rounded to nearest even. */
int round_bf16(__nv_bfloat16 *out, const float *in, size_t count, cudaStream_t stream);
/* gc->work grown to at least bytes, for a kernel's scratch between two
 * products (stream order keeps the uses apart); NULL on error. */
void *gemm_work(GemmContext *gc, size_t bytes);
/* The backward of a linear map y (M, out) = x (M, in) W^T, W (out, in),
 * all contiguous: dx = beta_dx dx + dy W and dW += dy^T x (two gemm
 * calls; the bf16 layers use linear_backward_rounded). */
int linear_backward(GemmContext *gc, int M, int out, int in, const float *dy, const float *w,
                    const float *x, float *dx, float beta_dx, float *dw);
/* The same with every operand already in bf16 (no copies). */
int linear_backward_rounded(GemmContext *gc, int M, int out, int in,
                            const __nv_bfloat16 *dy16, const __nv_bfloat16 *w16,
                            const __nv_bfloat16 *x16, float *dx, float beta_dx, float *dw);
/* The same with dx (M, in) = dy W written in bf16 (summed in fp32, rounded
 * once): for a dx that only a kernel reading bf16 takes. */
int linear_backward_rounded_out16(GemmContext *gc, int M, int out, int in,
                                  const __nv_bfloat16 *dy16, const __nv_bfloat16 *w16,
                                  const __nv_bfloat16 *x16, __nv_bfloat16 *dx16, float *dw);
/* x (count) rounded to bf16 into gc's keep buffer (gemm_keep); NULL on
 * error. */
const __nv_bfloat16 *keep_bf16(GemmContext *gc, const float *x, size_t count);
/* gc's keep buffer grown to count bf16 values (its contents are lost when
 * it grows); valid until the next gemm_keep or linear_backward. */
__nv_bfloat16 *gemm_keep(GemmContext *gc, size_t count);
/* Frees gc->work and gc->keep. */
void gemm_context_free(GemmContext *gc);

/* ---- cuda_norm.cu ---------------------------------------------------- */

/* y = x rstd gain, rstd = 1 / sqrt(mean(x^2) + eps), per row.
 * x, y (M, d); gain (d); rstd (M) saved. */
int rmsnorm_forward(float *y, float *rstd, const float *x, const float *gain, int M, int d,
                    double eps, cudaStream_t stream);
/* The same with y rounded to bf16 (the input of a bf16 product); copy
 * (M, d), when not NULL, gets x too (the residual sum's first term, without
 * a pass of its own). */
int rmsnorm_forward_bf16(__nv_bfloat16 *y, float *rstd, float *copy, const float *x,
                         const float *gain, int M, int d, double eps, cudaStream_t stream);
/* dx += r g dy - (r^3 / d) x sum_m dy_m g_m x_m  (accumulates);
 * dgain += sum_rows dy x r  (accumulates). partial: rmsnorm_partial_count(M,
 * d) floats. */
enum { RMSNORM_PARTS = 64, RMSNORM_FUSED_D = 1024 };
size_t rmsnorm_partial_count(int M, int d);
int rmsnorm_backward(float *dx, float *dgain, float *partial, const float *dy, const float *x,
                     const float *gain, const float *rstd, int M, int d, cudaStream_t stream);
/* The same with dx = base + extra + (the gradient) instead of dx +=
 * (base may be dx itself; extra NULL adds nothing): the residual sums of
 * a layer's backward without copies; with dx16 not NULL, dx rounded to
 * bf16 into it too (the input of the next bf16 product). */
int rmsnorm_backward_onto(float *dx, __nv_bfloat16 *dx16, const float *base, const float *extra,
                          float *dgain, float *partial, const float *dy, const float *x,
                          const float *gain, const float *rstd, int M, int d,
                          cudaStream_t stream);

/* ---- cuda_rope.cu ---------------------------------------------------- */

/* cos_t, sin_t (n, dh/2): angle = pos[i] base^(-2m/dh) in double, as the CPU
 * computes it, stored in float. */
int rope_table(float *cos_t, float *sin_t, const int *pos, int n, int dh, double base,
               cudaStream_t stream);
/* Rotates q and k of qkv (B, n, 3 D), D = H dh, in place: q is columns
 * [0, D), k is [D, 2 D); per head x1 = first dh/2 dims, x2 = the rest:
 * sign +1: [x1 c - x2 s, x1 s + x2 c]; sign -1 (the backward): the inverse. */
int rope_apply(float *qkv, const float *cos_t, const float *sin_t, int B, int n, int H,
               int dh, int sign, cudaStream_t stream);

/* out (B, n, 3 D) = bf16 of dqkv with q and k rotated back (rope_apply
 * with sign -1) and v as it is: the output gradient of the qkv product.
 * dh even. */
int rope_backward_bf16(__nv_bfloat16 *out, const float *dqkv, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream);

/* ---- cuda_attention.cu ------------------------------------------------- */

/* Whether the fused attention supports this head dimension (dh <= 128). */
int attention_supports(int dh);
/* Causal attention on qkv (B, n, 3 D): out (B, n, D) = softmax(q k^T /
 * sqrt(dh)) v per head, keys j > query i masked; lse (B, H, n) saves the
 * log-sum-exp of each row's scaled scores. Never forms an n x n matrix. */
int attention_forward(float *out, float *lse, const float *qkv, int B, int n, int H, int dh,
                      cudaStream_t stream);
/* The probabilities the forward used, recomputed for the observer from qkv
 * (after RoPE) and its lse: probs (B, H, n, n), P_ij = exp(q_i . k_j /
 * sqrt(dh) - lse_i) for j <= i, 0 above the diagonal. */
int attention_probs(float *probs, const float *qkv, const float *lse, int B, int n, int H,
                    int dh, cudaStream_t stream);
/* From dout (B, n, D): dqkv (B, n, 3 D) = the gradients of q, k, v
 * (overwritten). With P = exp(S - lse), D_i = dout_i . out_i:
 * dS = P (dout v^T - D) / sqrt(dh); dq = dS k; dk = dS^T q; dv = P^T dout.
 * rowdot: (B, H, n) floats of scratch. */
int attention_backward(float *dqkv, float *rowdot, const float *dout, const float *out,
                       const float *qkv, const float *lse, int B, int n, int H, int dh,
                       cudaStream_t stream);

/* The distances (token units) of the "mass beyond D" statistics. */
enum { ATTENTION_MAX_DISTANCES = 8 };
typedef struct {
    int count;
    int distance[ATTENTION_MAX_DISTANCES];
} AttentionDistances;
/* stats (B, H, n, 2 + count) = analysis/attention_stats.h's statistics of
 * the probabilities attention_probs would give, without forming them: per
 * row the mean distance sum_j P_ij (pos_i - pos_j), the entropy, and the
 * mass on keys farther than each distance. pos (n) on the device. */
int attention_stats(float *stats, const float *qkv, const float *lse, const int *pos, int B, int n,
                    int H, int dh, const AttentionDistances *distances, cudaStream_t stream);

/* rowdot (B, H, n): D_i = dout_i . out_i per head (the backward's row term). */
int attention_rowdot(float *rowdot, const float *dout, const float *out, int B, int n, int H,
                     int dh, cudaStream_t stream);

/* ---- cuda_attention_mma.cu --------------------------------------------- */

/* The same attention on the tensor cores, in steps, for a caller that
 * keeps the bf16 heads of a layer from its forward to its backward: q, k,
 * v, the probabilities and dout rounded to bf16 for the products, fp32
 * accumulation and softmax; outputs as attention_forward /
 * attention_backward (lse natural, so attention_probs reads it too). Head
 * dims even, <= 128. DH = the template head size (16, 32, 64 or 128,
 * >= dh); heads (3, B, H, n, DH) bf16 (attention_mma_heads values) = q, k,
 * v per head, zero padded, q and k rotated by RoPE first when cos_t, sin_t
 * (n, dh/2) are given (as rope_apply, sign +1), from an fp32 or a bf16
 * qkv. The forward writes its output in fp32 (out), in bf16 (out16) or
 * both; the one not wanted is NULL. */
int attention_mma_supports(int dh);
int attention_mma_head_size(int dh);
size_t attention_mma_heads(int B, int n, int H, int dh);
int attention_mma_pack(__nv_bfloat16 *heads, const float *qkv, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream);
int attention_mma_pack(__nv_bfloat16 *heads, const __nv_bfloat16 *qkv, const float *cos_t,
                       const float *sin_t, int B, int n, int H, int dh, cudaStream_t stream);
/* qkv (B, n, 3 D) fp32 = the values the heads hold (the inverse of
 * attention_mma_pack without RoPE): what the observer's statistics read. */
int attention_mma_unpack(float *qkv, const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                         cudaStream_t stream);
int attention_mma_forward_heads(float *out, __nv_bfloat16 *out16, float *lse,
                                const __nv_bfloat16 *heads, int B, int n, int H, int dh,
                                cudaStream_t stream);
/* dout packed and the row dots in one pass (dout's bf16 copy in gc's work
 * buffer), then dqkv (B, n, 3 D) = the gradients of q, k, v as
 * attention_backward (of the heads' rotated q and k); or, with dqkv16 given
 * (dqkv unused), the gradients of q and k rotated back by RoPE (cos_t,
 * sin_t) and all three rounded to bf16 into dqkv16 (B, n, 3 D), exactly
 * what rope_backward_bf16 makes of dqkv: for head dims 16, 32, 64 and 128
 * (attention_mma_unrotates). The forward's output `out` for the row dots
 * is fp32, or bf16 (out16 of the forward). */
int attention_mma_unrotates(int dh);
int attention_mma_backward_heads(GemmContext *gc, float *dqkv, __nv_bfloat16 *dqkv16,
                                 float *rowdot, const float *dout, const float *out,
                                 const __nv_bfloat16 *heads, const float *lse, const float *cos_t,
                                 const float *sin_t, int B, int n, int H, int dh);
int attention_mma_backward_heads(GemmContext *gc, float *dqkv, __nv_bfloat16 *dqkv16,
                                 float *rowdot, const float *dout, const __nv_bfloat16 *out,
                                 const __nv_bfloat16 *heads, const float *lse, const float *cos_t,
                                 const float *sin_t, int B, int n, int H, int dh);

/* ---- cuda_pointwise.cu ------------------------------------------------- */

/* x (M, d) = table (V, d) rows tokens (M). */
int embedding_forward(float *x, const int *tokens, const float *table, int M, int d,
                      cudaStream_t stream);
/* dtable[v] += dx[r] for the rows r of token v, in row order: rows_by_token
 * (M) lists the rows grouped by token, token_start (n_present + 1) where
 * each group starts, present (n_present) the tokens; n_present is read
 * from the device (*present_count, at most max_present), so the launch does
 * not depend on the batch (CUDA graphs). */
int embedding_backward(float *dtable, const float *dx, const int *present,
                       const int *token_start, const int *rows_by_token,
                       const int *present_count, int max_present, int d, cudaStream_t stream);
/* m (M, F) = silu(a) c with ac (M, 2 F) = [a | c] per row. */
int swiglu_forward(float *m, const float *ac, int M, int F, cudaStream_t stream);
/* dac (M, 2 F) = [dm c silu'(a) | dm silu(a)] (overwritten). */
int swiglu_backward(float *dac, const float *dm, const float *ac, int M, int F,
                    cudaStream_t stream);
/* The same two in bf16 precision: ac and dm as the bf16 products wrote
 * them, the output rounded to bf16 (a bf16 product's input). */
int swiglu_forward_bf16(__nv_bfloat16 *m, const __nv_bfloat16 *ac, int M, int F,
                        cudaStream_t stream);
int swiglu_backward_bf16(__nv_bfloat16 *dac, const __nv_bfloat16 *dm, const __nv_bfloat16 *ac,
                         int M, int F, cudaStream_t stream);
/* y += x */
int vector_add(float *y, const float *x, size_t count, cudaStream_t stream);
/* y = a - b */
int vector_sub(float *y, const float *a, const float *b, size_t count, cudaStream_t stream);
/* y = -x */
int vector_negate(float *y, const float *x, size_t count, cudaStream_t stream);
/* x = NaN (poisoning buffers in the tests) */
int vector_fill_nan(float *x, size_t count, cudaStream_t stream);
/* y_r = a_r + b_r (rows of d) for the rows r with flag[r] != 0; the other
 * rows of y untouched (an update hook's changed rows). */
int rows_add_where(float *y, const float *a, const float *b, const int *flag, size_t rows, int d,
                   cudaStream_t stream);

/* ---- cuda_scale.cu ------------------------------------------------------ */

/* Chunk geometry of one iteration as the kernels see it (core/scale.h). */
typedef struct {
    int L, g, w, s, J;
} GpuGeometry;

/* z (B, J, d) from h (B, L, d): mean, or (selfagg) alpha = softmax over
 * the chunk of score . h_i, z_j = sum alpha_i h_i; alpha (B, L) saved. */
int downscale_forward(float *z, float *alpha, const float *h, const float *score,
                      GpuGeometry geo, int B, int d, int selfagg, cudaStream_t stream);
/* dh (B, L, d) += the gradient of z's use; selfagg also dscore (d) +=.
 * dot_scratch (B L) doubles, dc_scratch (B L) floats. */
int downscale_backward(float *dh, float *dscore, double *dot_scratch, float *dc_scratch,
                       const float *dz, const float *h, const float *alpha, const float *score,
                       GpuGeometry geo, int B, int d, int selfagg, GemmContext *gc,
                       cudaStream_t stream);
/* h_out (B, L, d) = base + shift(up(delta)) (base NULL: zeros): for i >= s,
 * h_out_i = base_i + coef_{j, rho} delta_j (j, rho of token i - s), coef = 1
 * (copy) or g softmax(W delta_j) (alloc, W = alloc (g, d), coef (B, J, g)
 * saved). h_out must not alias base. */
int upscale_forward(float *h_out, float *coef, const float *base, const float *delta,
                    const float *alloc, GpuGeometry geo, int B, int d, int use_alloc,
                    GemmContext *gc, cudaStream_t stream);
/* ddelta (B, J, d) += the gradient through the up-scaling of dh_out;
 * alloc: dalloc (g, d) += too. dot_scratch (B J g) doubles, dl_scratch
 * (B J g) floats. */
int upscale_backward(float *ddelta, float *dalloc, double *dot_scratch, float *dl_scratch,
                     const float *dh_out, const float *delta, const float *coef,
                     const float *alloc, GpuGeometry geo, int B, int d, int use_alloc,
                     GemmContext *gc, cudaStream_t stream);

/* ---- cuda_loss.cu ------------------------------------------------------- */

/* Per row with target >= 0: row_loss = lse - logits[target] (double), lse
 * saved (M, double); rows without a target get 0. Then *loss_sum (one
 * double on the device) = sum of row_loss in row order. Logits fp32, or
 * bf16 (bf16 precision). */
int crossentropy_forward(double *loss_sum, double *row_loss, double *lse, const float *logits,
                         const int *targets, int M, int V, cudaStream_t stream);
int crossentropy_forward(double *loss_sum, double *row_loss, double *lse,
                         const __nv_bfloat16 *logits, const int *targets, int M, int V,
                         cudaStream_t stream);
/* In place: logits (M, V) becomes dlogits = scale (softmax - onehot) for
 * rows with a target, 0 for the rest (bf16 logits: rounded to bf16). */
int crossentropy_backward(float *logits, const double *lse, const int *targets, int M, int V,
                          float scale, cudaStream_t stream);
int crossentropy_backward(__nv_bfloat16 *logits, const double *lse, const int *targets, int M,
                          int V, float scale, cudaStream_t stream);
/* A training step's two in one pass over bf16 logits: the loss sums and
 * lse of crossentropy_forward, and the logits replaced by the gradient of
 * crossentropy_backward, each row read once (into shared memory) and
 * written once; exponentials on the special-function unit, so the loss
 * agrees with crossentropy_forward to about 1e-7 and each gradient
 * element with crossentropy_backward's to a rounding of bf16. For V a
 * multiple of 8 up to CROSSENTROPY_TRAIN_MAX_V (crossentropy_train_supports). */
enum { CROSSENTROPY_TRAIN_MAX_V = 96 * 1024 };
int crossentropy_train_supports(int V);
int crossentropy_train(double *loss_sum, double *row_loss, double *lse, __nv_bfloat16 *logits,
                       const int *targets, int M, int V, float scale, cudaStream_t stream);

/* ---- cuda_adamw.cu ------------------------------------------------------ */

/* One AdamW update over the whole buffer, rounding like core/adamw.c:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g;
 *   p = p decay - step m / (sqrt(v) c2 + eps)  (the denominator in double),
 * decay = 1 - lr wd on tensors whose flag is set, else 1. tensor_end
 * (n_tensors) is each tensor's end offset, tensor_decay its flag. With
 * params16 not NULL, the new parameters rounded to bf16 into it too (the
 * bf16 products' weights). */
int adamw_update(float *params, __nv_bfloat16 *params16, float *m, float *v, const float *grads,
                 const size_t *tensor_end,
                 const int *tensor_decay, int n_tensors, size_t n, float b1, float b2,
                 float eps, float step_size, float inv_sqrt_correction2, float decay,
                 cudaStream_t stream);
/* *sum_sq (one double on the device) = sum g^2, in a fixed order;
 * partial: NORM_BLOCKS doubles. */
enum { NORM_BLOCKS = 256 };
int grad_sum_squares(double *sum_sq, double *partial, const float *grads, size_t n,
                     cudaStream_t stream);
/* x *= scale */
int vector_scale(float *x, float scale, size_t n, cudaStream_t stream);

/* ---- cuda_mesh.cu ------------------------------------------------------ */

/* The routers of one iteration of topology mesh (core/mesh.h), device views
 * of the parameters or the gradients. */
typedef struct {
    float *write;       /* (S, d) */
    float *write_bias;  /* (S) */
    float *read;        /* (S, d) */
    float *read_bias;   /* (S) */
} GpuMeshWeights;

/* core/mesh.h's mesh_forward: h_out (B, L, d) holds h(t) + e (or z~) on
 * entry and h(t+1) on return; mem (S, B, L, d) the slots after the write;
 * k (B, L, d) K(t+1); w, r (B, L, S); mem_prev and k_prev NULL at the first
 * iteration (m_0 = h0, m_b = 0, K(0) = 0). S <= 64. */
int mesh_forward(float *h_out, float *mem, float *k, float *w, float *r, const float *e,
                 const float *mem_prev, const float *h0, const float *k_prev,
                 const GpuMeshWeights *weights, int B, int L, int d, int S,
                 cudaStream_t stream);
/* core/mesh.h's mesh_backward: de (overwritten), dmem (S, B, L, d) from
 * dL/dm(t+1) to dL/dm(t), the routers' gradients accumulated; scratch
 * 2 B L S floats. */
int mesh_backward(float *de, float *dmem, const GpuMeshWeights *grads, float *scratch,
                  const float *dh_out, const float *e, const float *mem, const float *w,
                  const float *r, const GpuMeshWeights *weights, int B, int L, int d, int S,
                  GemmContext *gc, cudaStream_t stream);

#endif
