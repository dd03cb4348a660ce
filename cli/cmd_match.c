/*
 * cmd_match.c: `spiral match`: the looped and dense baselines of a spiral
 * configuration, matched on parameters and on forward FLOPs
 * (analysis/matching.h), printed and written as run files
 * (compare_write_baselines) so that a sweep can train them directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "config.h"
#include "matching.h"

static const char *help =
    "usage: spiral match --config SPIRAL.json [--seq-len L] [--out-dir DIR]\n"
    "\n"
    "Derives the baselines a spiral configuration is compared with:\n"
    "  looped         the same core, every iteration at full resolution (g = 1)\n"
    "  dense (params) schedule [1], n_loop chosen for the closest non-embedding\n"
    "                 parameter count\n"
    "  dense (FLOPs)  schedule [1], n_loop chosen for the closest forward FLOPs\n"
    "                 per sequence of L tokens\n"
    "and prints their counts, mismatches and derived model configs. L defaults\n"
    "to the file's train.seq_len, else 256. With --out-dir, writes\n"
    "DIR/<name>-looped.json, DIR/<name>-dense-params.json and\n"
    "DIR/<name>-dense-flops.json (<name>: SPIRAL.json's name without extension),\n"
    "run files that keep SPIRAL.json's train object, ready for 'spiral train'.\n";

/* The file's name without directory and extension. */
static void base_name(char *out, size_t size, const char *path) {
    const char *base = strrchr(path, '/');
    snprintf(out, size, "%s", base ? base + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

int cmd_match(int argc, char **argv) {
    const char *config_path = NULL, *len_text = NULL, *out_dir = NULL;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--config", &config_path, NULL},
        {"--seq-len", &len_text, NULL},
        {"--out-dir", &out_dir, NULL},
    };
    if (cli_parse_options("match", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!config_path) return cli_usage_error("match", "--config is required");
    long L = 0;
    if (len_text && cli_parse_long("--seq-len", len_text, 1, 1 << 20, &L)) return 2;

    SpiralConfig cfg;
    char *train_json = NULL;
    int train_len;
    if (compare_read_spiral_file(config_path, &cfg, &train_json, &train_len)) return cli_fail("match");
    if (L == 0) L = train_len > 0 ? train_len : 256;
    MatchedBaselines m;
    char text[8192];
    if (matching_derive(&m, &cfg, (int)L) || matching_format(text, sizeof text, &m)) {
        free(train_json);
        return cli_fail("match");
    }
    fputs(text, stdout);
    const MatchedBaseline *rows[3] = {&m.looped, &m.dense_params, &m.dense_flops};
    const char *names[3] = {"looped", "dense (params)", "dense (FLOPs)"};
    printf("\nderived model configs:\n");
    for (int i = 0; i < 3; i++) {
        char *json = config_to_json(&rows[i]->cfg);
        printf("%s: %s\n", names[i], json ? json : "(out of memory)");
        free(json);
    }
    int status = 0;
    if (out_dir) {
        char base[256], paths[3][1024];
        base_name(base, sizeof base, config_path);
        status = compare_write_baselines(&m, train_json, out_dir, base, paths);
        if (status == 0) {
            printf("\n");
            for (int i = 0; i < 3; i++)
                printf("wrote %s: %s, %.0f parameters (%.0f non-embedding), %.0f forward FLOPs at L = %ld%s\n",
                       paths[i], names[i], rows[i]->params, rows[i]->params_nonembedding, rows[i]->forward_flops,
                       L, train_json ? "; train object kept" : "");
        }
    }
    free(train_json);
    return status ? cli_fail("match") : 0;
}
