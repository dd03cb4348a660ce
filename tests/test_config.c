/*
 * test_config.c: the model configuration (core/config.c).
 *
 * Defaults, the docs/model.md example, the run-file form, schedule shorthands and
 * defaults, exact round trips through config_to_json, config_load, and a table
 * of bad inputs, each of which must fail with a message naming the source and
 * the field path.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "harness.h"

/* The example model object of docs/model.md, verbatim. */
static const char *design_example =
    "{\"vocab_size\": 256, \"d_model\": 64, \"n_heads\": 4, \"d_ff\": 172,\n"
    " \"n_pre\": 1, \"n_loop\": 2, \"n_post\": 1, \"tie_embeddings\": true,\n"
    " \"rope_base\": 10000, \"norm_eps\": 1e-5,\n"
    " \"down\": \"selfagg\", \"up\": \"alloc\", \"topology\": \"residual\",\n"
    " \"schedule\": [{\"g\": 8, \"offset\": 0, \"shift\": 7}, {\"g\": 4}, {\"g\": 2}, {\"g\": 1}]}";

/* A model object in which every field differs from its default. */
static const char *all_fields_changed =
    "{\"vocab_size\": 1000, \"d_model\": 96, \"n_heads\": 3, \"d_ff\": 256,"
    " \"n_pre\": 0, \"n_loop\": 3, \"n_post\": 2, \"tie_embeddings\": false,"
    " \"rope_base\": 500000.5, \"norm_eps\": 1e-6,"
    " \"down\": \"mean\", \"up\": \"copy\", \"topology\": \"anchor\","
    " \"schedule\": [{\"g\": 4, \"offset\": 1, \"shift\": 5}, {\"g\": 2, \"offset\": 1}, 1]}";

/* Builds the expected struct of all_fields_changed by hand. */
static void all_fields_changed_expected(SpiralConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = 1000;
    cfg->d_model = 96;
    cfg->n_heads = 3;
    cfg->d_ff = 256;
    cfg->n_pre = 0;
    cfg->n_loop = 3;
    cfg->n_post = 2;
    cfg->tie_embeddings = 0;
    cfg->rope_base = 500000.5;
    cfg->norm_eps = 1e-6;
    cfg->down = DOWN_MEAN;
    cfg->up = UP_COPY;
    cfg->topology = TOPOLOGY_ANCHOR;
    cfg->mesh_slots = SPIRAL_DEFAULT_MESH_SLOTS;
    cfg->n_iters = 3;
    cfg->schedule[0] = (IterSpec){4, 1, 5};
    cfg->schedule[1] = (IterSpec){2, 1, 1};
    cfg->schedule[2] = (IterSpec){1, 0, 0};
}

/* Whole-struct equality: config_default and config_parse zero unused
 * schedule entries and SpiralConfig has no padding, so memcmp is exact. */
static int configs_equal(const SpiralConfig *a, const SpiralConfig *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

/* Writes text to a fresh temporary file; returns its path in `path`. */
static int write_temp_file(char *path, size_t cap, const char *text) {
    snprintf(path, cap, "/tmp/spiral_test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    ssize_t written = len ? write(fd, text, len) : 0;
    close(fd);
    return written == (ssize_t)len ? 0 : -1;
}

static void test_defaults(void) {
    SpiralConfig cfg;
    config_default(&cfg);
    CHECK(config_validate(&cfg) == 0, "defaults invalid: %s", spiral_last_error());
    CHECK(cfg.vocab_size == 256 && cfg.d_model == 64 && cfg.n_heads == 4 && cfg.d_ff == 172,
          "default sizes");
    CHECK(cfg.n_pre == 1 && cfg.n_loop == 2 && cfg.n_post == 1, "default layer counts");
    CHECK(cfg.tie_embeddings == 1 && cfg.rope_base == 10000.0 && cfg.norm_eps == 1e-5, "default flags");
    CHECK(cfg.down == DOWN_SELFAGG && cfg.up == UP_ALLOC && cfg.topology == TOPOLOGY_RESIDUAL,
          "default kinds");
    CHECK(cfg.n_iters == 4, "default n_iters %d", cfg.n_iters);
    static const int g[4] = {8, 4, 2, 1};
    for (int t = 0; t < 4; t++)
        CHECK(cfg.schedule[t].g == g[t] && cfg.schedule[t].offset == 0 && cfg.schedule[t].shift == g[t] - 1,
              "default schedule[%d] = {%d, %d, %d}", t, cfg.schedule[t].g, cfg.schedule[t].offset,
              cfg.schedule[t].shift);

    /* An empty object is the defaults. */
    SpiralConfig parsed;
    CHECK(config_parse(&parsed, "{}", "empty.json") == 0, "{}: %s", spiral_last_error());
    CHECK(configs_equal(&parsed, &cfg), "{} differs from the defaults");

    /* One field given, the others default. */
    CHECK(config_parse(&parsed, "{\"d_model\": 128, \"d_ff\": 344}", "one.json") == 0, "%s",
          spiral_last_error());
    SpiralConfig expected = cfg;
    expected.d_model = 128;
    expected.d_ff = 344;
    CHECK(configs_equal(&parsed, &expected), "partial object: other fields not default");

    CHECK(strcmp(config_down_name(DOWN_MEAN), "mean") == 0, "down name mean");
    CHECK(strcmp(config_down_name(DOWN_SELFAGG), "selfagg") == 0, "down name selfagg");
    CHECK(strcmp(config_up_name(UP_COPY), "copy") == 0, "up name copy");
    CHECK(strcmp(config_up_name(UP_ALLOC), "alloc") == 0, "up name alloc");
    CHECK(strcmp(config_topology_name(TOPOLOGY_RESIDUAL), "residual") == 0, "topology name residual");
    CHECK(strcmp(config_topology_name(TOPOLOGY_ANCHOR), "anchor") == 0, "topology name anchor");
    CHECK(strcmp(config_topology_name(TOPOLOGY_MESH), "mesh") == 0, "topology name mesh");
    CHECK(strcmp(config_topology_name(3), "unknown") == 0, "topology name 3");
    CHECK(cfg.mesh_slots == 4, "default mesh_slots %d", cfg.mesh_slots);
    CHECK(config_down_name(7) != NULL, "an out-of-range enum still has a printable name");
}

static void test_design_example(void) {
    SpiralConfig cfg, expected;
    config_default(&expected);  /* the docs/model.md example is the default model */
    CHECK(config_parse(&cfg, design_example, "design.json") == 0, "design example: %s", spiral_last_error());
    CHECK(configs_equal(&cfg, &expected), "design example differs from the defaults");

    all_fields_changed_expected(&expected);
    CHECK(config_parse(&cfg, all_fields_changed, "changed.json") == 0, "all fields changed: %s",
          spiral_last_error());
    CHECK(configs_equal(&cfg, &expected), "all fields changed: struct differs");
    CHECK(cfg.d_model == 96 && cfg.n_heads == 3 && cfg.tie_embeddings == 0 && cfg.rope_base == 500000.5,
          "all fields changed: scalars");
    CHECK(cfg.n_iters == 3 && cfg.schedule[1].offset == 1 && cfg.schedule[1].shift == 1,
          "all fields changed: schedule");
}

static void test_run_file(void) {
    /* The train object has keys that are not model fields: they are ignored. */
    const char *run =
        "{\"name\": \"spiral-small\",\n"
        " \"model\": {\"d_model\": 96, \"n_heads\": 3, \"down\": \"mean\", \"schedule\": [4, 1]},\n"
        " \"train\": {\"steps\": 1000, \"lr\": 3e-4, \"batch\": 16}}";
    SpiralConfig cfg, expected;
    CHECK(config_parse(&cfg, run, "run.json") == 0, "run file: %s", spiral_last_error());
    config_default(&expected);
    expected.d_model = 96;
    expected.n_heads = 3;
    expected.down = DOWN_MEAN;
    expected.n_iters = 2;
    memset(expected.schedule, 0, sizeof expected.schedule);
    expected.schedule[0] = (IterSpec){4, 0, 3};
    expected.schedule[1] = (IterSpec){1, 0, 0};
    CHECK(configs_equal(&cfg, &expected), "run file: struct differs");

    /* A run file whose model object is bad reports the model path. */
    const char *bad_run = "{\"model\": {\"d_model\": \"x\"}, \"train\": {}}";
    CHECK(config_parse(&cfg, bad_run, "run.json") == -1, "bad run file accepted");
    CHECK(strstr(spiral_last_error(), "run.json: model.d_model: ") != NULL, "bad run file message: %s",
          spiral_last_error());
}

static void test_schedule_forms(void) {
    SpiralConfig cfg, expected;
    config_default(&expected);

    /* Bare integers mean {"g": n}. */
    CHECK(config_parse(&cfg, "{\"schedule\": [8, 4, 2, 1]}", "ints.json") == 0, "%s", spiral_last_error());
    CHECK(configs_equal(&cfg, &expected), "bare-integer schedule differs from the default schedule");

    /* Mixed forms, and the offset/shift defaults. */
    const char *mixed =
        "{\"schedule\": [{\"g\": 8, \"offset\": 3}, 4, {\"g\": 4, \"shift\": 9},"
        " {\"shift\": 2, \"g\": 2, \"offset\": 1}, {\"g\": 1}]}";
    CHECK(config_parse(&cfg, mixed, "mixed.json") == 0, "mixed schedule: %s", spiral_last_error());
    CHECK(cfg.n_iters == 5, "mixed n_iters %d", cfg.n_iters);
    CHECK(cfg.schedule[0].g == 8 && cfg.schedule[0].offset == 3 && cfg.schedule[0].shift == 7,
          "offset given, shift defaults to g - 1");
    CHECK(cfg.schedule[1].g == 4 && cfg.schedule[1].offset == 0 && cfg.schedule[1].shift == 3,
          "bare integer defaults");
    CHECK(cfg.schedule[2].g == 4 && cfg.schedule[2].offset == 0 && cfg.schedule[2].shift == 9,
          "shift given (no-overlap), offset defaults to 0");
    CHECK(cfg.schedule[3].g == 2 && cfg.schedule[3].offset == 1 && cfg.schedule[3].shift == 2,
          "keys in any order");
    CHECK(cfg.schedule[4].g == 1 && cfg.schedule[4].offset == 0 && cfg.schedule[4].shift == 0, "g = 1");

    /* A shorter schedule leaves no stale entries behind. */
    CHECK(config_parse(&cfg, "{\"schedule\": [1]}", "one.json") == 0, "%s", spiral_last_error());
    CHECK(cfg.n_iters == 1 && cfg.schedule[1].g == 0 && cfg.schedule[3].g == 0, "stale schedule entries");

    /* The limits themselves are accepted. */
    char text[8192];
    int len = snprintf(text, sizeof text, "{\"schedule\": [{\"g\": 4096, \"offset\": 4095, \"shift\": 65535}");
    for (int t = 1; t < SPIRAL_MAX_ITERS; t++) len += snprintf(text + len, sizeof text - (size_t)len, ", 1");
    snprintf(text + len, sizeof text - (size_t)len, "], \"vocab_size\": 65536}");
    CHECK(config_parse(&cfg, text, "limits.json") == 0, "limits: %s", spiral_last_error());
    CHECK(cfg.n_iters == SPIRAL_MAX_ITERS && cfg.schedule[0].shift == 65535, "limits parsed");
}

/* config_to_json -> config_parse gives the identical struct. */
static void check_round_trip(const SpiralConfig *cfg, const char *what) {
    char *json = config_to_json(cfg);
    CHECK(json != NULL, "%s: config_to_json returned NULL", what);
    if (!json) return;
    SpiralConfig back;
    memset(&back, 0xAB, sizeof back);
    CHECK(config_parse(&back, json, what) == 0, "%s: re-parse failed: %s (%s)", what, spiral_last_error(), json);
    CHECK(configs_equal(cfg, &back), "%s: round trip differs: %s", what, json);
    free(json);
}

static void test_round_trip(void) {
    SpiralConfig cfg;
    config_default(&cfg);
    check_round_trip(&cfg, "defaults");

    CHECK(config_parse(&cfg, all_fields_changed, "changed.json") == 0, "%s", spiral_last_error());
    check_round_trip(&cfg, "all fields changed");

    /* mesh: mesh_slots is written (and only for mesh). */
    CHECK(config_parse(&cfg, "{\"topology\": \"mesh\", \"mesh_slots\": 7}", "mesh.json") == 0, "%s",
          spiral_last_error());
    CHECK(cfg.topology == TOPOLOGY_MESH && cfg.mesh_slots == 7, "mesh parsed: %d %d", cfg.topology,
          cfg.mesh_slots);
    check_round_trip(&cfg, "mesh 7 slots");
    char *mesh_json = config_to_json(&cfg);
    CHECK(mesh_json && strstr(mesh_json, "\"topology\":\"mesh\",\"mesh_slots\":7,"), "mesh JSON: %s",
          mesh_json ? mesh_json : "");
    free(mesh_json);
    config_default(&cfg);
    mesh_json = config_to_json(&cfg);
    CHECK(mesh_json && !strstr(mesh_json, "mesh_slots"), "residual JSON names mesh_slots: %s",
          mesh_json ? mesh_json : "");
    free(mesh_json);

    /* Doubles that need 17 significant digits. */
    config_default(&cfg);
    cfg.rope_base = 1.0 / 3.0 * 30000.0;
    cfg.norm_eps = 0.1 + 0.2;
    check_round_trip(&cfg, "awkward doubles");
    cfg.rope_base = 1e300;
    cfg.norm_eps = 4.9406564584124654e-324;  /* smallest subnormal */
    check_round_trip(&cfg, "extreme doubles");

    /* Compact output, fixed key order, schedule written out in full. */
    config_default(&cfg);
    char *json = config_to_json(&cfg);
    CHECK(json != NULL, "config_to_json(defaults) returned NULL");
    if (json) {
        const char *expected =
            "{\"vocab_size\":256,\"d_model\":64,\"n_heads\":4,\"d_ff\":172,\"n_pre\":1,\"n_loop\":2,"
            "\"n_post\":1,\"tie_embeddings\":true,\"rope_base\":10000.0,\"norm_eps\":1.0000000000000001e-5,"
            "\"down\":\"selfagg\",\"up\":\"alloc\",\"topology\":\"residual\",\"schedule\":["
            "{\"g\":8,\"offset\":0,\"shift\":7},{\"g\":4,\"offset\":0,\"shift\":3},"
            "{\"g\":2,\"offset\":0,\"shift\":1},{\"g\":1,\"offset\":0,\"shift\":0}]}";
        CHECK(strcmp(json, expected) == 0, "config_to_json(defaults) =\n%s\nexpected\n%s", json, expected);
        free(json);
    }

    /* A config JSON cannot represent gives NULL rather than bad JSON. */
    cfg.norm_eps = NAN;
    json = config_to_json(&cfg);
    CHECK(json == NULL, "config_to_json wrote a NaN: %s", json ? json : "");
    free(json);
}

/* One bad input: the JSON text and substrings its error must contain (the
 * field path first; `detail` may be NULL). */
typedef struct {
    const char *json;
    const char *path;
    const char *detail;
} BadCase;

static const BadCase bad_cases[] = {
    /* wrong types */
    {"{\"d_model\": \"64\"}", "model.d_model", "expected an integer, got a string"},
    {"{\"d_model\": 64.5}", "model.d_model", "got 64.5"},
    {"{\"d_model\": 64.0}", "model.d_model", "expected an integer, got 64.0"},
    {"{\"d_model\": null}", "model.d_model", "got null"},
    {"{\"d_model\": 99999999999}", "model.d_model", "got 99999999999"},
    {"{\"n_heads\": [4]}", "model.n_heads", "got an array"},
    {"{\"tie_embeddings\": 1}", "model.tie_embeddings", "expected true or false, got 1"},
    {"{\"rope_base\": \"10000\"}", "model.rope_base", "expected a number, got a string"},
    {"{\"up\": 1}", "model.up", "expected \"copy\" or \"alloc\", got 1"},
    {"{\"schedule\": \"8,4,2,1\"}", "model.schedule", "expected an array"},
    {"{\"schedule\": [8, \"4\"]}", "model.schedule[1]", "got a string"},
    {"{\"schedule\": [{\"g\": 4.0}]}", "model.schedule[0].g", "got 4.0"},
    {"{\"schedule\": [{\"g\": 4, \"offset\": true}]}", "model.schedule[0].offset", "got true"},
    {"{\"model\": [1, 2]}", "model", "expected an object, got an array"},
    {"[1, 2]", "model", "expected a JSON object, got an array"},
    /* out-of-range values */
    {"{\"vocab_size\": 0}", "model.vocab_size", "expected an integer >= 1, got 0"},
    {"{\"vocab_size\": 65537}", "model.vocab_size", "expected an integer <= 65536, got 65537"},
    {"{\"d_model\": 1, \"n_heads\": 1}", "model.d_model", ">= 2"},
    {"{\"n_heads\": 0}", "model.n_heads", ">= 1, got 0"},
    {"{\"d_ff\": 0}", "model.d_ff", ">= 1"},
    {"{\"n_pre\": -1}", "model.n_pre", ">= 0, got -1"},
    {"{\"n_post\": -2}", "model.n_post", ">= 0, got -2"},
    {"{\"n_loop\": 0}", "model.n_loop", ">= 1, got 0"},
    {"{\"n_pre\": 100000000}", "model.n_pre", "expected an integer <= 1024, got 100000000"},
    {"{\"n_loop\": 1025}", "model.n_loop", "<= 1024, got 1025"},
    {"{\"d_model\": 131072, \"n_heads\": 4}", "model.d_model", "<= 65536, got 131072"},
    {"{\"n_heads\": 2048}", "model.n_heads", "<= 1024, got 2048"},
    {"{\"rope_base\": 0}", "model.rope_base", "expected a finite number > 0, got 0.0"},
    {"{\"norm_eps\": -1e-5}", "model.norm_eps", "got -1e-05"},
    {"{\"schedule\": [8, 4, -3]}", "model.schedule[2].g", "expected an integer >= 1, got -3"},
    {"{\"schedule\": [{\"g\": 5000}]}", "model.schedule[0].g", "<= 4096"},
    {"{\"schedule\": [{\"g\": 0, \"offset\": 0}]}", "model.schedule[0].g", ">= 1, got 0"},
    /* unknown fields and enum strings */
    {"{\"d_modle\": 64}", "model.d_modle", "unknown field (known: vocab_size, d_model, n_heads"},
    {"{\"schedule\": [{\"g\": 4, \"gap\": 1}]}", "model.schedule[0].gap", "unknown field (known: g, offset, shift)"},
    {"{\"down\": \"max\"}", "model.down", "expected \"mean\" or \"selfagg\", got \"max\""},
    {"{\"up\": \"Alloc\"}", "model.up", "got \"Alloc\""},
    {"{\"topology\": \"loop\"}", "model.topology", "expected \"residual\", \"anchor\" or \"mesh\", got \"loop\""},
    /* mesh */
    {"{\"topology\": \"mesh\", \"mesh_slots\": 1}", "model.mesh_slots", "expected an integer >= 2, got 1"},
    {"{\"topology\": \"mesh\", \"mesh_slots\": 65}", "model.mesh_slots", "expected an integer <= 64, got 65"},
    {"{\"topology\": \"mesh\", \"mesh_slots\": 2.5}", "model.mesh_slots", "expected an integer, got"},
    {"{\"mesh_slots\": 8}", "model.mesh_slots", "applies only to topology \"mesh\" (topology is \"residual\")"},
    /* schedule rules */
    {"{\"schedule\": [{\"g\": 4}, {\"g\": 4, \"offset\": 4}]}", "model.schedule[1].offset", "offset < g = 4, got 4"},
    {"{\"schedule\": [{\"g\": 4, \"offset\": -1}]}", "model.schedule[0].offset", "got -1"},
    {"{\"schedule\": [{\"g\": 8}, {\"g\": 4, \"shift\": 2}]}", "model.schedule[1].shift", "g - 1 = 3"},
    {"{\"schedule\": [{\"g\": 4, \"shift\": 70000}]}", "model.schedule[0].shift", "<= 65535, got 70000"},
    {"{\"schedule\": [{\"offset\": 1}]}", "model.schedule[0].g", "missing"},
    {"{\"schedule\": []}", "model.schedule", "expected 1 to 64 iterations, got 0"},
    /* cross-field rules */
    {"{\"n_heads\": 5}", "model.n_heads", "d_model (64) must be divisible by n_heads (5)"},
    {"{\"d_model\": 12, \"n_heads\": 4}", "model.n_heads", "= 3 must be even"},
    /* in a run file */
    {"{\"model\": {\"schedule\": [2, {\"g\": 2, \"offset\": 2}]}, \"train\": {}}", "model.schedule[1].offset",
     "got 2"},
};

static void test_bad_inputs(void) {
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    CHECK(n >= 15, "only %zu bad cases", n);
    SpiralConfig cfg, sentinel;
    memset(&sentinel, 0x5A, sizeof sentinel);
    for (size_t i = 0; i < n; i++) {
        const BadCase *c = &bad_cases[i];
        cfg = sentinel;
        int rc = config_parse(&cfg, c->json, "bad.json");
        const char *err = spiral_last_error();
        CHECK(rc == -1, "accepted bad input %s", c->json);
        CHECK(strncmp(err, "bad.json: ", 10) == 0, "%s: message lacks the source: %s", c->json, err);
        char path_colon[128];
        snprintf(path_colon, sizeof path_colon, "%s: ", c->path);
        CHECK(strstr(err, path_colon) != NULL, "%s: message lacks \"%s\": %s", c->json, c->path, err);
        if (c->detail) CHECK(strstr(err, c->detail) != NULL, "%s: message lacks \"%s\": %s", c->json, c->detail, err);
        CHECK(configs_equal(&cfg, &sentinel), "%s: cfg written on failure", c->json);
    }

    /* Exact messages for the forms documented in config.h. */
    config_parse(&cfg, "{\"schedule\": [8, 4, -3]}", "c.json");
    CHECK(strcmp(spiral_last_error(), "c.json: model.schedule[2].g: expected an integer >= 1, got -3") == 0,
          "message: %s", spiral_last_error());
    config_parse(&cfg, "{\"down\": \"max\"}", "c.json");
    CHECK(strcmp(spiral_last_error(), "c.json: model.down: expected \"mean\" or \"selfagg\", got \"max\"") == 0,
          "message: %s", spiral_last_error());
    config_parse(&cfg, "{\"d_model\": \"64\"}", "c.json");
    CHECK(strcmp(spiral_last_error(), "c.json: model.d_model: expected an integer, got a string") == 0,
          "message: %s", spiral_last_error());

    /* Too many iterations. */
    char text[4096];
    int len = snprintf(text, sizeof text, "{\"schedule\": [1");
    for (int t = 1; t <= SPIRAL_MAX_ITERS; t++) len += snprintf(text + len, sizeof text - (size_t)len, ", 1");
    snprintf(text + len, sizeof text - (size_t)len, "]}");
    CHECK(config_parse(&cfg, text, "long.json") == -1, "65 iterations accepted");
    CHECK(strstr(spiral_last_error(), "model.schedule: expected 1 to 64 iterations, got 65") != NULL,
          "message: %s", spiral_last_error());

    /* Syntax errors name the source, line and column. */
    const char *broken = "{\n  \"d_model\": 64,\n  \"n_heads\": }\n";
    CHECK(config_parse(&cfg, broken, "broken.json") == -1, "syntax error accepted");
    CHECK(strstr(spiral_last_error(), "broken.json: ") == spiral_last_error(), "syntax message source: %s",
          spiral_last_error());
    CHECK(strstr(spiral_last_error(), "line 3") != NULL && strstr(spiral_last_error(), "column") != NULL,
          "syntax message lacks line 3 / column: %s", spiral_last_error());
    CHECK(config_parse(&cfg, "", "blank.json") == -1, "empty text accepted");
    CHECK(strstr(spiral_last_error(), "blank.json: invalid JSON") != NULL, "message: %s", spiral_last_error());
    CHECK(config_parse(&cfg, "{\"d_model\": 64, \"d_model\": 32}", "dup.json") == -1, "duplicate key accepted");
    CHECK(strstr(spiral_last_error(), "dup.json: ") && strstr(spiral_last_error(), "duplicate"),
          "duplicate message: %s", spiral_last_error());
}

static void test_validate(void) {
    /* Hand-built configs: messages carry no source prefix. */
    SpiralConfig cfg;
    config_default(&cfg);
    cfg.n_heads = 5;
    CHECK(config_validate(&cfg) == -1, "n_heads 5 accepted");
    CHECK(strcmp(spiral_last_error(), "model.n_heads: d_model (64) must be divisible by n_heads (5)") == 0,
          "message: %s", spiral_last_error());

    config_default(&cfg);
    cfg.n_iters = 0;
    CHECK(config_validate(&cfg) == -1 && strncmp(spiral_last_error(), "model.schedule: ", 16) == 0,
          "n_iters 0: %s", spiral_last_error());
    config_default(&cfg);
    cfg.n_iters = SPIRAL_MAX_ITERS + 1;
    CHECK(config_validate(&cfg) == -1 && strncmp(spiral_last_error(), "model.schedule: ", 16) == 0,
          "n_iters 65: %s", spiral_last_error());
    config_default(&cfg);
    cfg.topology = 3;
    CHECK(config_validate(&cfg) == -1 && strncmp(spiral_last_error(), "model.topology: ", 16) == 0,
          "topology 3: %s", spiral_last_error());
    config_default(&cfg);
    cfg.topology = TOPOLOGY_MESH;
    cfg.mesh_slots = 0;
    CHECK(config_validate(&cfg) == -1 && strncmp(spiral_last_error(), "model.mesh_slots: ", 18) == 0,
          "mesh_slots 0: %s", spiral_last_error());
    config_default(&cfg);
    cfg.norm_eps = INFINITY;
    CHECK(config_validate(&cfg) == -1 && strncmp(spiral_last_error(), "model.norm_eps: ", 16) == 0,
          "norm_eps inf: %s", spiral_last_error());
    config_default(&cfg);
    cfg.schedule[3].shift = -1;
    CHECK(config_validate(&cfg) == -1 && strncmp(spiral_last_error(), "model.schedule[3].shift: ", 25) == 0,
          "shift -1: %s", spiral_last_error());
}

static void test_load(void) {
    SpiralConfig cfg, expected;
    char path[64];

    /* A run file on disk. */
    CHECK(write_temp_file(path, sizeof path,
                          "{\"model\": {\"d_model\": 32, \"n_heads\": 2}, \"train\": {\"steps\": 5}}\n") == 0,
          "cannot write a temporary file");
    CHECK(config_load(&cfg, path) == 0, "load: %s", spiral_last_error());
    config_default(&expected);
    expected.d_model = 32;
    expected.n_heads = 2;
    CHECK(configs_equal(&cfg, &expected), "loaded config differs");
    unlink(path);

    /* Errors in a file name the file. */
    CHECK(write_temp_file(path, sizeof path, "{\"schedule\": [8, 4, -3]}") == 0, "cannot write a temporary file");
    CHECK(config_load(&cfg, path) == -1, "bad file accepted");
    char expected_message[256];
    snprintf(expected_message, sizeof expected_message, "%s: model.schedule[2].g: expected an integer >= 1, got -3",
             path);
    CHECK(strcmp(spiral_last_error(), expected_message) == 0, "message: %s", spiral_last_error());
    unlink(path);

    /* An empty file. */
    CHECK(write_temp_file(path, sizeof path, "") == 0, "cannot write a temporary file");
    CHECK(config_load(&cfg, path) == -1, "empty file accepted");
    CHECK(strstr(spiral_last_error(), path) == spiral_last_error() && strstr(spiral_last_error(), "empty"),
          "empty file message: %s", spiral_last_error());
    unlink(path);

    /* A missing file. */
    const char *missing = "/nonexistent/spiral/config.json";
    CHECK(config_load(&cfg, missing) == -1, "missing file accepted");
    CHECK(strstr(spiral_last_error(), missing) == spiral_last_error() &&
              strstr(spiral_last_error(), "No such file"),
          "missing file message: %s", spiral_last_error());

    /* A directory cannot be read as a file. */
    CHECK(config_load(&cfg, "/tmp") == -1, "directory accepted");
    CHECK(strstr(spiral_last_error(), "/tmp: ") == spiral_last_error(), "directory message: %s",
          spiral_last_error());

    /* A file larger than the first read buffer. */
    char *big = malloc(20000);
    CHECK(big != NULL, "malloc");
    if (big) {
        int len = snprintf(big, 20000, "{\"d_model\": 96, \"n_heads\": 3");
        while (len < 15000) len += snprintf(big + len, 20000 - (size_t)len, "%60s", "");
        snprintf(big + len, 20000 - (size_t)len, "}\n");
        CHECK(write_temp_file(path, sizeof path, big) == 0, "cannot write a temporary file");
        CHECK(config_load(&cfg, path) == 0 && cfg.d_model == 96, "large file: %s", spiral_last_error());
        unlink(path);
        free(big);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    test_defaults();
    test_design_example();
    test_run_file();
    test_schedule_forms();
    test_round_trip();
    test_bad_inputs();
    test_validate();
    test_load();
    return test_summary(argv[0]);
}
