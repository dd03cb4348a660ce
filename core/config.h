/*
 * config.h: the model configuration, one struct for the whole family.
 *
 * SpiralFormer, the vanilla looped baseline and the dense baseline differ only
 * in these fields (see docs/model.md and README "Configuration"):
 *   spiral: schedule coarse-to-fine, e.g. g = 8, 4, 2, 1
 *   looped: every g = 1
 *   dense:  one iteration, g = 1, n_loop distinct layers
 * The JSON form is the `model` object of a run file, and the string stored in
 * a safetensors file's __metadata__["config"].
 */
#ifndef SPIRAL_CONFIG_H
#define SPIRAL_CONFIG_H

#define SPIRAL_MAX_ITERS 64
/* Upper bounds that catch typos (n_pre: 1e8) before any memory is
 * planned; far above any model a single host trains. */
#define SPIRAL_MAX_LAYERS 1024
#define SPIRAL_MAX_WIDTH 65536
#define SPIRAL_MAX_HEADS 1024
/* Memory slots of the mesh topology: 2 .. SPIRAL_MAX_MESH_SLOTS, default 4. */
#define SPIRAL_MAX_MESH_SLOTS 64
#define SPIRAL_DEFAULT_MESH_SLOTS 4

enum { DOWN_MEAN = 0, DOWN_SELFAGG = 1 };
enum { UP_COPY = 0, UP_ALLOC = 1 };
enum { TOPOLOGY_RESIDUAL = 0, TOPOLOGY_ANCHOR = 1, TOPOLOGY_MESH = 2 };

/* One loop iteration: chunk size g, chunk offset (0 <= offset < g) and causal
 * shift (>= g - 1; shift >= g is the "no-overlap" variant). */
typedef struct {
    int g;
    int offset;
    int shift;
} IterSpec;

typedef struct {
    int vocab_size;      /* V, 1..65536 (tokens are uint16) */
    int d_model;         /* d */
    int n_heads;         /* H; d % H == 0 and d/H even (RoPE half split) */
    int d_ff;            /* F, SwiGLU hidden width */
    int n_pre;           /* prelude layers, full resolution, unshared */
    int n_loop;          /* layers of the shared core */
    int n_post;          /* coda layers, full resolution, unshared */
    int tie_embeddings;  /* 1: logits = norm(h) E^T; 0: separate lm_head */
    double rope_base;    /* RoPE base, default 10000 */
    double norm_eps;     /* RMSNorm epsilon, default 1e-5 */
    int down;            /* DOWN_MEAN or DOWN_SELFAGG */
    int up;              /* UP_COPY or UP_ALLOC */
    int topology;        /* TOPOLOGY_RESIDUAL, TOPOLOGY_ANCHOR or TOPOLOGY_MESH */
    int mesh_slots;      /* B, memory slots of TOPOLOGY_MESH (2..64, default 4); the
                            default for the other topologies, and absent from their JSON */
    int n_iters;         /* T, 1..SPIRAL_MAX_ITERS */
    IterSpec schedule[SPIRAL_MAX_ITERS];
} SpiralConfig;

/* Fills cfg with the defaults documented in the README (the example of
 * docs/model.md: V=256, d=64, H=4, F=172, 1+2+1 layers, selfagg/alloc/residual,
 * schedule g = 8, 4, 2, 1). */
void config_default(SpiralConfig *cfg);

/* Parses a model object from JSON text. `source` names the text in error
 * messages (a file name, "safetensors metadata", ...). Absent fields take
 * their defaults; unknown fields, wrong types and out-of-range values are
 * errors naming the field, e.g. "c.json: model.schedule[2].g: expected an
 * integer >= 1, got -3". If the text is a run file (an object with a "model"
 * key) the model object inside is used. Returns 0 or -1 (spiral_error). */
int config_parse(SpiralConfig *cfg, const char *json_text, const char *source);

/* Reads a file and parses it with config_parse. */
int config_load(SpiralConfig *cfg, const char *path);

/* Checks the cross-field rules (d % H, even head dim, 0 <= offset < g,
 * shift >= g - 1, ...). config_parse calls it; code that builds a config by
 * hand calls it too. Returns 0 or -1 (spiral_error naming the field). */
int config_validate(const SpiralConfig *cfg);

/* The model object as compact JSON, every field written out (so a file is
 * self-describing). Returns a malloc'd string the caller frees, or NULL on
 * allocation failure. config_parse(config_to_json(c)) == c. */
char *config_to_json(const SpiralConfig *cfg);

/* Name of each enum value as it appears in JSON ("mean", "selfagg", ...). */
const char *config_down_name(int down);
const char *config_up_name(int up);
const char *config_topology_name(int topology);


#endif
