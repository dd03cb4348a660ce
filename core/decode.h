/*
 * decode.h: incremental decoding, one token at a time, over a model's
 * weights (docs/model.md, "Incremental decoding").
 *
 * Token i runs the prelude and the coda for itself alone, attending to the
 * keys and values its layers cached for tokens 0 .. i-1. At iteration t the
 * state h(t)_i is kept while its chunk is open; when token i closes chunk j
 * (i = (j+1) g - w - 1) the chunk is down-scaled to z_j, the core runs for
 * latent j alone against level t's own key/value caches (one per core
 * layer and level), and delta_j (with the alloc coefficients of its g
 * slots) is stored. Token i then takes e_i = u_{i-s} from the stored
 * update of an already closed chunk (s >= g - 1), so the tokens between
 * closes do no core work at that level. A partial chunk at the end of the
 * text never reaches a logit. Under topology mesh the memory slots are per
 * token: the token writes e(t) into its own slots and reads h(t+1) from
 * them (core/mesh.h at one token), nothing crosses tokens. The logits equal model_forward's, token for
 * token.
 *
 * A prompt may be prefilled with one full forward pass (model_forward), its
 * saved activations copied into the caches; the steps that follow continue
 * from there exactly as if every token had been stepped.
 *
 * Memory: keys and values for `capacity` tokens per prelude and coda layer,
 * and for the closed latents of each level per core layer, plus one stored
 * update per latent. Nothing is allocated after decoder_build.
 */
#ifndef SPIRAL_DECODE_H
#define SPIRAL_DECODE_H

#include "model.h"

/* One layer's cache: keys (after RoPE) and values of the rows seen so far. */
typedef struct {
    real *k, *v;               /* (rows, d) */
} KVCache;

/* What a level t (loop iteration) keeps between tokens. */
typedef struct {
    ChunkGeometry geo;         /* at L = capacity: J = latents it can hold */
    int full_resolution;       /* g == 1 && shift == 0: the core runs for every token */
    KVCache *core;             /* n_loop caches, J rows each */
    real *members;             /* (g, d) h(t) of the open chunk, token i at slot (i + w) mod g */
    real *delta;               /* (J, d) delta_j of every closed chunk */
    real *coef;                /* (J, g) alloc coefficients g beta_j (alloc only) */
} DecodeLevel;

typedef struct {
    Model *model;              /* the weights (and, for prefill, its forward pass) */
    int capacity;              /* the most tokens this decoder holds */
    int n;                     /* tokens consumed so far; the next one is at position n */
    KVCache *pre, *post;       /* n_pre, n_post caches, capacity rows each */
    DecodeLevel levels[SPIRAL_MAX_ITERS];
    real *h0, *h, *z, *work;   /* (d) each: h(0), the state, a latent, a residual stream */
    real *e;                   /* (d) the token's update e(t) (topology mesh) */
    /* topology mesh (S = mesh_slots), the token's own memory, else unused:
     * slots (S, d) and read correction K (d) after iterations t - 1 and t,
     * at [t % 2] and [(t + 1) % 2]; write and read weights (S) */
    real *mesh_mem[2], *mesh_k[2], *mesh_w, *mesh_r;
    real *xn, *q, *att;        /* (d) each: one layer's row */
    real *a, *c, *m;           /* (F) each */
    real *scores;              /* (capacity) attention weights of one head */
    real *logits;              /* (V) the logits of the last token consumed */
    real *buffer;              /* the one allocation behind every array above */
    void *tables;              /* the KVCache tables */
} Decoder;

/* Builds a decoder for model (built, weights set) holding up to capacity
 * tokens. Returns 0 or -1 (spiral_error: capacity < 1, out of memory). */
int decoder_build(Decoder *dec, Model *model, int capacity);
void decoder_free(Decoder *dec);

/* Forgets every token (the next one is at position 0). */
void decoder_reset(Decoder *dec);

/* Consumes `token` at position dec->n: dec->logits gets its (V) logits.
 * Returns 0 or -1 (token outside the vocabulary, capacity reached). */
int decoder_step(Decoder *dec, int token);

/* Consumes tokens (n >= 1) into an empty decoder with one model_forward
 * pass and fills the caches from its saved activations; dec->logits gets
 * the last token's logits. Equal to n decoder_step calls. Returns 0 or -1
 * (decoder not empty, n > capacity, tokens outside the vocabulary). */
int decoder_prefill(Decoder *dec, const int *tokens, int n);

/* Bytes decoder_build allocates for model at capacity. */
size_t decoder_bytes(const Model *model, int capacity);

/* Analytic forward FLOPs of decoder_step at position p (the counting rules
 * of core/cost.h: matmuls 2mnk, attention 4 d per cached row and layer,
 * down/up-scaling): the prelude, coda and head for one token, the core for
 * each level whose chunk closes at p. */
double decoder_step_flops(const SpiralConfig *cfg, int p);

#endif
