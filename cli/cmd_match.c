/*
 * cmd_match.c: `spiral match`: the looped and dense baselines of a spiral
 * configuration, matched on parameters and on forward FLOPs
 * (analysis/matching.h), printed and written as run files
 * (analysis/matched_runs.h) so that a sweep can train them directly.
 */
#include <stdio.h>

#include "cli.h"
#include "matched_runs.h"

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
    "to the file's train.seq_len, else 256.\n"
    "\n"
    "Those compare at equal tokens. When SPIRAL.json has a train object, it\n"
    "also prints the equal-FLOPs baselines by steps: the looped and the\n"
    "equal-parameter dense model, each trained for the number of steps that\n"
    "spends the spiral's training FLOPs (its own warmup and cosine decay over\n"
    "those steps), with the mismatch left by whole steps.\n"
    "\n"
    "With --out-dir, writes run files ready for 'spiral train' (<name>:\n"
    "SPIRAL.json's name without extension; the train object kept):\n"
    "  DIR/<name>-looped.json, DIR/<name>-dense-params.json,\n"
    "  DIR/<name>-dense-flops.json                         equal tokens\n"
    "  DIR/<name>-looped-flops.json,\n"
    "  DIR/<name>-dense-params-flops.json                  equal training FLOPs\n"
    "                                                      (with a train object)\n";

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

    if (matched_baselines_report(config_path, (int)L, out_dir, stdout)) return cli_fail("match");
    return 0;
}
