/*
 * steps.h: the loop steps of a model and the recorded sites they produce.
 *
 * One place for the rules every reader of a recording needs:
 *
 *   kind      spiral (some iteration compresses or shifts), looped (T > 1
 *             full-resolution iterations), dense (one full-resolution pass)
 *   steps     the units a probe or an analysis walks through: spiral and
 *             looped iterate the core T times, so step t is iteration t; a
 *             dense model runs its n_loop distinct core layers once, and
 *             each layer counts as a step (step l is core layer l)
 *   sites     'token' state h(t) at steps t = 0 .. steps (t = 0 is the
 *             prelude output; for dense, h(l + 1) is core layer l's output),
 *             'latent_in' z and 'latent_out' z~ of step t (only when the
 *             step compresses or shifts), 'coda' at step = steps,
 *             'memory.b' (topology mesh only, b = 0 .. mesh_slots - 1):
 *             memory slot b after iteration t's write, at the step that
 *             ends iteration t (step t; for dense, its last step n_loop - 1)
 *
 * A site's rows: L tokens at scale 1 (token, coda, memory.b); the J latents of the step's chunk
 * geometry at a latent site, row j at the token position of its last member.
 */
#ifndef SPIRAL_STEPS_H
#define SPIRAL_STEPS_H

#include "config.h"
#include "model.h"
#include "scale.h"

typedef enum { KIND_SPIRAL = 0, KIND_LOOPED = 1, KIND_DENSE = 2 } ModelKind;

/* The kind of a configuration (not stored: derived from the schedule). */
ModelKind model_kind(const SpiralConfig *cfg);
/* "spiral", "looped", "dense". */
const char *model_kind_name(ModelKind kind);

/* Loop steps: T for spiral and looped, n_loop for dense. */
int loop_steps(const SpiralConfig *cfg);
/* Core layers applied in one step: n_loop, or 1 for dense. */
int loop_layers_per_step(const SpiralConfig *cfg);
/* The chunk size g of step t (1 for dense and at full resolution). */
int step_chunk_size(const SpiralConfig *cfg, int step);
/* 1 if step t records latent sites: it compresses (g > 1) or shifts. */
int step_has_latents(const SpiralConfig *cfg, int step);

/* A recorded state: site name, step, scale (the chunk size of its rows). */
typedef struct {
    char site[16];      /* "token", "latent_in", "latent_out", "coda", "memory.b" */
    int step;
    int scale;
} SiteKey;

/* The slot b of a site named "memory.b" (digits only, no sign or leading
 * zero), or -1 for any other name. */
int site_memory_slot(const char *site);

/* The step under which iteration t's memory slots are recorded. */
int memory_site_step(const SpiralConfig *cfg, int iteration);

/* The recorded state a forward-pass event is, if any: returns 1 and fills
 * *key, or 0 when the event is not recorded as a state (a dense model's
 * intermediate h(1) is its last core layer's output, already recorded as a
 * layer output; full-resolution latents equal token states). */
int event_site(const ObserveEvent *event, const SpiralConfig *cfg, SiteKey *key);

/* The (step, layer) under which an attention event is recorded: a loop
 * layer of spiral/looped is (iteration, layer); a dense core layer l is
 * (l + 1, 0); prelude and coda layers keep their iteration -1. */
void event_attention_key(const ObserveEvent *event, const SpiralConfig *cfg, int *step,
                         int *layer);

/* The rows of a recorded site over L tokens: its chunk geometry (g = 1 for
 * token-level sites). Checks the site against the configuration: a latent
 * site must name a step that records latents at scale = its g, any other
 * site scale 1. Returns 0, or -1 (spiral_error naming the site). */
int site_geometry(const SpiralConfig *cfg, const char *site, int step, int scale, int L,
                  ChunkGeometry *geo);

/* Token position of each of the geo->J rows (pos (J)): the last member of
 * the row's chunk, i.e. the row itself at g = 1. */
void site_row_positions(const ChunkGeometry *geo, int *pos);

/* The attention_stats key (event_attention_key's (step, layer)) of layer
 * `layer` (0 .. loop_layers_per_step - 1) of loop step `step`: (step,
 * layer) for spiral and looped; (step + 1, 0) for a dense model, whose step
 * is core layer `step`. */
void step_attention_key(const SpiralConfig *cfg, int step, int layer, int *key_step, int *key_layer);

/* The inverse for a 'loop' block row keyed (key_step, key_layer): the loop
 * step and its layer. Returns 1, or 0 if no loop layer of cfg has that key. */
int attention_key_step(const SpiralConfig *cfg, int key_step, int key_layer, int *step, int *layer);

#endif
