/*
 * cmd_generate.c: `spiral generate`: continues a prompt with a trained
 * model, token by token through the incremental decoder (core/decode.h,
 * core/generate.h), printing each token as it comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "checkpoint.h"
#include "cli.h"
#include "engine.h"
#include "error.h"
#include "generate.h"
#include "run_model.h"
#include "store.h"
#include "tokens.h"

static const char *help =
    "usage: spiral generate (--run RUN --store S.db | --weights W.safetensors)\n"
    "                       (--prompt TEXT | --prompt-file F | --prompt-tokens F.u16)\n"
    "                       --max-tokens N [--temperature T] [--top-k K] [--top-p P]\n"
    "                       [--seed S] [--out FILE]\n"
    "                       [--device cpu|cuda [--precision fp32|tf32|bf16]] [--quiet]\n"
    "\n"
    "Continues the prompt with N new tokens and prints them to stdout as they\n"
    "are generated: as bytes (text) for a 256-token byte vocabulary, as token\n"
    "ids separated by spaces otherwise. The prompt is run through the model\n"
    "once; every new token then costs one incremental step (the prelude and\n"
    "coda for that token alone, the core of an iteration only when the token\n"
    "closes one of its chunks), with the same logits as the full forward pass.\n"
    "\n"
    "  --run RUN       the last checkpoint of a trained run of the store; the\n"
    "                  prompt plus N - 1 must fit the run's context (train.seq_len)\n"
    "  --weights W     any safetensors file of the documented layout; the\n"
    "                  context is then the prompt plus N - 1 positions\n"
    "  --prompt TEXT   the prompt's bytes; --prompt-file F: a file's bytes;\n"
    "                  --prompt-tokens F.u16: little-endian uint16 token ids\n"
    "  --temperature T 0 = greedy, the most likely token (default 1)\n"
    "  --top-k K       draw among the K most likely tokens only (default 0: all)\n"
    "  --top-p P       draw among the most likely tokens holding probability P\n"
    "                  (default 1: all)\n"
    "  --seed S        the sampler's seed (default 1); the same seed, model and\n"
    "                  prompt give the same tokens\n"
    "  --out FILE      also writes a TSV: a header line 'position token logprob',\n"
    "                  then one line per new token: its position in the sequence\n"
    "                  (the prompt holds 0 .. P-1), its id, and its log-probability\n"
    "                  in nats under the model itself (temperature 1, before the\n"
    "                  top-k/top-p cuts)\n"
    "  --device cpu    the incremental decoder on the CPU (default); cuda (a spiral\n"
    "                  built with 'make cuda'): every new token runs the whole\n"
    "                  forward pass over the sequence so far on the GPU (no\n"
    "                  incremental decoder there yet), same tokens up to rounding\n"
    "  --precision P   on cuda: fp32 (default), tf32 or bf16 matrix products\n"
    "  --quiet         no timing line on stderr\n";

/* What the token callback needs. */
typedef struct {
    int text;                 /* 1: print bytes, 0: print ids */
    int printed;
} Printer;

static void print_token(void *user, int token, int position, double logprob) {
    Printer *printer = user;
    if (printer->text) {
        putchar(token);
    } else {
        printf(printer->printed ? " %d" : "%d", token);
    }
    printer->printed++;
    fflush(stdout);
}

/* The prompt's tokens from exactly one of the three sources. */
static int read_prompt(const char *text, const char *text_file, const char *token_file,
                       int **tokens, size_t *count) {
    if (text_file) return tokens_read_text(text_file, tokens, count);
    if (token_file) return tokens_read_u16(token_file, tokens, count);
    *count = strlen(text);
    *tokens = malloc((*count + 1) * sizeof(int));
    if (!*tokens) return spiral_error("out of memory reading the prompt");
    for (size_t i = 0; i < *count; i++) (*tokens)[i] = (unsigned char)text[i];
    return 0;
}

/* The model of --run (in the store) or --weights; *context gets the run's
 * seq_len, or 0 for a weights file (no limit of its own). */
static int load_model(const char *run, const char *store_path, const char *weights_path,
                      Model *model, int *context) {
    *context = 0;
    if (run) {
        Store store;
        long long step;
        if (store_open_readonly(&store, store_path)) return -1;
        int status = generate_run_context(&store, run, context);
        if (status == 0) status = run_model_load_named(&store, run, -1, model, &step);
        store_close(&store);
        return status;
    }
    SpiralConfig cfg;
    ParamLayout layout = {0};
    real *values = NULL;
    int status = weights_load(weights_path, &cfg, &layout, &values);
    if (status == 0) status = model_build(model, &cfg);
    if (status == 0) memcpy(model->params, values, model->layout.n_params * sizeof(real));
    free(values);
    param_layout_free(&layout);
    return status;
}

/* Writes the TSV of --out atomically. */
static int write_tsv(const char *path, const int *tokens, const double *logprobs, int n,
                     int first_position) {
    AtomicFile af;
    if (atomic_file_open(&af, path)) return -1;
    char line[96];
    int length = snprintf(line, sizeof line, "position\ttoken\tlogprob\n");
    if (atomic_file_write(&af, line, (size_t)length)) {
        atomic_file_abort(&af);
        return -1;
    }
    for (int k = 0; k < n; k++) {
        length = snprintf(line, sizeof line, "%d\t%d\t%.6f\n", first_position + k, tokens[k],
                          logprobs[k]);
        if (atomic_file_write(&af, line, (size_t)length)) {
            atomic_file_abort(&af);
            return -1;
        }
    }
    return atomic_file_commit(&af);
}

int cmd_generate(int argc, char **argv) {
    const char *run = NULL, *store_path = NULL, *weights_path = NULL, *prompt_text = NULL;
    const char *prompt_file = NULL, *prompt_tokens = NULL, *max_text = NULL, *temp_text = NULL;
    const char *top_k_text = NULL, *top_p_text = NULL, *seed_text = NULL, *out_path = NULL;
    const char *device = "cpu", *precision = NULL;
    int quiet = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--run", &run, NULL},
        {"--store", &store_path, NULL},
        {"--weights", &weights_path, NULL},
        {"--prompt", &prompt_text, NULL},
        {"--prompt-file", &prompt_file, NULL},
        {"--prompt-tokens", &prompt_tokens, NULL},
        {"--max-tokens", &max_text, NULL},
        {"--temperature", &temp_text, NULL},
        {"--top-k", &top_k_text, NULL},
        {"--top-p", &top_p_text, NULL},
        {"--seed", &seed_text, NULL},
        {"--out", &out_path, NULL},
        {"--device", &device, NULL},
        {"--precision", &precision, NULL},
        {"--quiet", NULL, &quiet},
    };
    if (cli_parse_options("generate", argc, argv, table, (int)(sizeof table / sizeof table[0]),
                          NULL))
        return 2;
    if (!run == !weights_path)
        return cli_usage_error("generate", "give exactly one of --run and --weights");
    if (run && !store_path) return cli_usage_error("generate", "--run needs --store");
    if (!!prompt_text + !!prompt_file + !!prompt_tokens != 1)
        return cli_usage_error("generate",
                               "give exactly one of --prompt, --prompt-file and --prompt-tokens");
    if (!max_text) return cli_usage_error("generate", "--max-tokens is required");
    GenerateOptions options = {.sample = {.temperature = 1, .top_k = 0, .top_p = 1}, .seed = 1};
    long v;
    if (cli_parse_long("--max-tokens", max_text, 1, 1 << 24, &v)) return 2;
    options.max_tokens = (int)v;
    if (top_k_text) {
        if (cli_parse_long("--top-k", top_k_text, 0, 1 << 16, &v)) return 2;
        options.sample.top_k = (int)v;
    }
    if (seed_text) {
        if (cli_parse_long("--seed", seed_text, 0, 0x7fffffffffffffffL, &v)) return 2;
        options.seed = (uint64_t)v;
    }
    if (temp_text && cli_parse_double("--temperature", temp_text, &options.sample.temperature))
        return 2;
    if (top_p_text && cli_parse_double("--top-p", top_p_text, &options.sample.top_p)) return 2;
    if (sample_settings_check(&options.sample))
        return cli_usage_error("generate", "%s", spiral_last_error());
    if (engine_device_check(device)) return cli_fail("generate");
    int on_gpu = !strcmp(device, "cuda");
    if (!on_gpu && precision && strcmp(precision, "fp32"))
        return cli_usage_error("generate", "--precision %s: the CPU engine computes in fp32 only",
                               precision);
    if (on_gpu && engine_precision_check(device, precision ? precision : "fp32"))
        return cli_fail("generate");

    int status = 1, *prompt = NULL, *tokens = NULL, context;
    double *logprobs = NULL;
    size_t n_prompt = 0;
    Model model = {0};
    Decoder dec = {0};
    Engine *engine = NULL;
    if (read_prompt(prompt_text, prompt_file, prompt_tokens, &prompt, &n_prompt)) goto done;
    if (load_model(run, store_path, weights_path, &model, &context)) goto done;
    if (n_prompt == 0) {
        spiral_error("the prompt is empty: give at least one token");
        goto done;
    }
    if (context > 0 && n_prompt > (size_t)context) {
        spiral_error("the prompt has %zu tokens, more than run %s's context of %d tokens "
                     "(train.seq_len)", n_prompt, run, context);
        goto done;
    }
    int positions = generate_positions((int)n_prompt, options.max_tokens);
    if (context > 0 && positions > context) {
        spiral_error("a prompt of %zu tokens and --max-tokens %d need %d positions, more than "
                     "run %s's context of %d tokens (train.seq_len); lower --max-tokens to %d",
                     n_prompt, options.max_tokens, positions, run, context,
                     context - (int)n_prompt + 1);
        goto done;
    }
    tokens = malloc((size_t)options.max_tokens * sizeof *tokens);
    logprobs = malloc((size_t)options.max_tokens * sizeof *logprobs);
    if (!tokens || !logprobs) {
        spiral_error("out of memory for %d tokens", options.max_tokens);
        goto done;
    }
    if (on_gpu ? engine_open_with_weights(&engine, "cuda", precision ? precision : "fp32", &model)
               : decoder_build(&dec, &model, positions))
        goto done;
    Printer printer = {.text = model.cfg.vocab_size == 256};
    options.on_token = print_token;
    options.user = &printer;
    GenerateResult result;
    int generated =
        on_gpu ? generate_tokens_engine(engine, model.cfg.vocab_size, positions, prompt,
                                        (int)n_prompt, &options, tokens, logprobs, &result)
               : generate_tokens(&dec, prompt, (int)n_prompt, &options, tokens, logprobs,
                                 &result);
    if (!printer.text && printer.printed) putchar('\n');
    fflush(stdout);
    if (generated) goto done;
    if (out_path && write_tsv(out_path, tokens, logprobs, result.n_generated, (int)n_prompt))
        goto done;
    if (!quiet)
        fprintf(stderr, "\nspiral generate: %d prompt tokens in %.3f s, %d new tokens in %.3f s "
                "(%.1f tokens/s)%s%s\n", result.n_prompt, result.prefill_seconds,
                result.n_generated, result.step_seconds,
                result.step_seconds > 0 ? result.n_generated / result.step_seconds : 0.0,
                out_path ? "; wrote " : "", out_path ? out_path : "");
    status = 0;
done:
    if (status) cli_fail("generate");
    free(prompt);
    free(tokens);
    free(logprobs);
    decoder_free(&dec);
    if (engine) engine_free(engine);
    model_free(&model);
    return status;
}
