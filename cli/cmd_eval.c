/*
 * cmd_eval.c: `spiral eval`: loads weights (from spiral or any program that
 * writes the documented safetensors layout), scores one token sequence, and
 * optionally writes the logits (.npy) and the gradient of the mean loss
 * (safetensors, same tensor names). The work is core/eval.c.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "eval.h"
#include "eval_run.h"

static const char *help =
    "usage: spiral eval --weights W.safetensors (--text FILE | --tokens FILE)\n"
    "                   [--logits OUT.npy] [--grads OUT.safetensors]\n"
    "       spiral eval --store S.db --run RUN [--per-position]\n"
    "\n"
    "Reads one sequence of N tokens (the bytes of a text file, or a\n"
    "little-endian uint16 file with --tokens), runs the model on the first\n"
    "N-1, scores each next token and prints the mean cross-entropy in nats.\n"
    "  --logits  writes the (N-1, V) float32 logits as a NumPy .npy file\n"
    "  --grads   writes the gradient of the mean loss for every parameter,\n"
    "            under the parameter's own tensor name\n"
    "Any safetensors file with the documented tensor names and the config in\n"
    "__metadata__[\"config\"] is accepted, e.g. one written by PyTorch.\n"
    "\n"
    "--run: scores RUN's last checkpoint on the validation windows its\n"
    "training used (its train object: dataset, seq_len, window, eval_batches\n"
    "x batch_size windows) and prints the loss beside the entropy floor and\n"
    "the n-gram baselines over exactly those targets, and the gap to the floor.\n"
    "  --per-position  also the loss, floor and gap by slot rho = (i + w) mod g\n"
    "                  within the chunks of each level of the schedule, and by\n"
    "                  position in the window (in the document with\n"
    "                  \"window\": \"document\")\n";

/* spiral eval --store S --run RUN: the run's validation windows again. */
static int eval_run_command(const char *store_path, const char *run_name, int per_position) {
    if (!store_path || !run_name)
        return cli_usage_error("eval", "--run and --store go together");
    Store store;
    if (store_open_readonly(&store, store_path)) return cli_fail("eval");
    EvalRunResult result;
    int status = eval_run(&result, &store, run_name);
    store_close(&store);
    if (status) return cli_fail("eval");
    eval_run_print(stdout, &result, run_name, per_position);
    eval_run_result_free(&result);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *weights_path = NULL, *text_path = NULL, *tokens_path = NULL;
    const char *logits_path = NULL, *grads_path = NULL, *store_path = NULL, *run_name = NULL;
    int per_position = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--weights", &weights_path, NULL},
        {"--text", &text_path, NULL},
        {"--tokens", &tokens_path, NULL},
        {"--logits", &logits_path, NULL},
        {"--grads", &grads_path, NULL},
        {"--store", &store_path, NULL},
        {"--run", &run_name, NULL},
        {"--per-position", NULL, &per_position},
    };
    if (cli_parse_options("eval", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if ((run_name || store_path) &&
        (weights_path || text_path || tokens_path || logits_path || grads_path))
        return cli_usage_error("eval", "--run scores a run's validation windows; --weights, "
                                       "--text, --tokens, --logits and --grads go without it");
    if (run_name || store_path) return eval_run_command(store_path, run_name, per_position);
    if (per_position) return cli_usage_error("eval", "--per-position goes with --run RUN");
    if (!weights_path) return cli_usage_error("eval", "--weights is required");
    if (!text_path == !tokens_path)
        return cli_usage_error("eval", "give exactly one of --text and --tokens");

    EvalOptions options = {.weights_path = weights_path, .text_path = text_path,
                           .tokens_path = tokens_path, .logits_path = logits_path,
                           .grads_path = grads_path};
    EvalResult result;
    if (eval_sequence(&options, &result)) return cli_fail("eval");
    printf("loss %.6f nats over %d predictions (perplexity %.4f, %.4f bits/token)\n", result.loss,
           result.n_predictions, exp(result.loss), result.loss / log(2.0));
    if (logits_path)
        printf("wrote %s: logits (%d, %d) float32\n", logits_path, result.n_predictions,
               result.vocab_size);
    if (grads_path)
        printf("wrote %s: gradient of the mean loss, %d tensors\n", grads_path,
               result.n_tensors);
    return 0;
}
