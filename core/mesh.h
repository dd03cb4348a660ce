/*
 * mesh.h: the memory of topology "mesh" (docs/model.md, "The mesh
 * topology"), the state update that replaces h(t+1) = h(t) + e.
 *
 * S memory slots m_0 .. m_{S-1}, each (B, L, d) at token level; after the
 * prelude m_0 = h(0) and m_b = 0 for b >= 1. Iteration t, given its update
 * e (B, L, d), first writes, then reads, token by token:
 *
 *   w_i = softmax_b(Wr e_i + bw)          write weights   (S)
 *   m_b,i <- m_b,i + w_{i,b} e_i
 *   r_i = softmax_b(Rd e_i + br)          read weights    (S)
 *   h(t+1)_i = S sum_b r_{i,b} m_{b,i}
 *
 * with Wr = iter.{t}.mesh.write (S, d), bw = .mesh.write_bias (S), Rd =
 * .mesh.read (S, d), br = .mesh.read_bias (S).
 *
 * The order of operations. The write weights sum to 1, so sum_b m_b grows
 * by e at every iteration and equals h(0) + e(0) + ... + e(t), the residual
 * stream. Writing c_b = S r_b - 1 (sum_b c_b = 0),
 *
 *   h(t+1) = sum_b m_b + K(t+1),   K(t+1) = sum_b c_b m_b(t+1),
 *          = h(t) + e - K(t) + K(t+1)            (K(0) = 0),
 *
 * and that is what mesh_forward evaluates, from the residual update
 * h(t) + e (or z~ itself at full resolution, where h(t) + e = z~) that the
 * caller has already written to h_out. c_b is formed as (S x_b - sum x) /
 * sum x from the softmax's exponentials x, which is exactly 0 when the
 * read logits are equal; then K = 0 and the state is the residual
 * topology's, bit for bit (zero routers, as initialized, give exactly the
 * residual model). The backward pass differentiates the definition above
 * (h(t+1) = S sum_b r_b m_b), which is the same function.
 */
#ifndef SPIRAL_MESH_H
#define SPIRAL_MESH_H

#include <stddef.h>

#include "real.h"

/* The router weights of one iteration (parameters or gradients). */
typedef struct {
    real *write;       /* (S, d) */
    real *write_bias;  /* (S) */
    real *read;        /* (S, d) */
    real *read_bias;   /* (S) */
} MeshWeights;

/* Write and read of one iteration.
 *   h_out (B, L, d): holds h(t) + e (or z~) on entry, h(t+1) on return;
 *   mem (S, B, L, d): the slots after the write, slot b at mem + b B L d;
 *   k (B, L, d): K(t+1); w, r (B, L, S): write and read weights (saved);
 *   e (B, L, d): the update; mem_prev (S, B, L, d): the slots before the
 *   write, or NULL at the first iteration (then m_0 = h0, m_b = 0);
 *   k_prev (B, L, d): K(t), or NULL at the first iteration (K(0) = 0). */
void mesh_forward(real *h_out, real *mem, real *k, real *w, real *r, const real *e,
                  const real *mem_prev, const real *h0, const real *k_prev,
                  const MeshWeights *weights, int B, int L, int d, int S);

/* Backward of one iteration's write and read, given dh_out = dL/dh(t+1):
 *   de (B, L, d) = dL/de through the write and the read (overwritten);
 *   dmem (S, B, L, d): on entry dL/dm(t+1) from the later iterations' reads,
 *   on return dL/dm(t) (the slots before this write);
 *   grads: the routers' gradients, accumulated;
 *   scratch: mesh_scratch_size(B, L, S) reals, overwritten. */
void mesh_backward(real *de, real *dmem, const MeshWeights *grads, real *scratch,
                   const real *dh_out, const real *e, const real *mem, const real *w,
                   const real *r, const MeshWeights *weights, int B, int L, int d, int S);

/* Reals of mesh_backward's scratch: the router logits' gradients. */
size_t mesh_scratch_size(int B, int L, int S);

#endif
