/*
 * cmd_eval.c: `spiral eval`: loads weights (from spiral or any program that
 * writes the documented safetensors layout), scores one token sequence, and
 * optionally writes the logits (.npy) and the gradient of the mean loss
 * (safetensors, same tensor names). The work is core/eval.c.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "depth.h"
#include "eval.h"

static const char *help =
    "usage: spiral eval (--weights W.safetensors | --run RUN --store S.db [--step N])\n"
    "                   (--text FILE | --tokens FILE) [--schedule 8,4,2,1,1]\n"
    "                   [--logits OUT.npy] [--grads OUT.safetensors]\n"
    "\n"
    "Reads one sequence of N tokens (the bytes of a text file, or a\n"
    "little-endian uint16 file with --tokens), runs the model on the first\n"
    "N-1, scores each next token and prints the mean cross-entropy in nats.\n"
    "  --logits  writes the (N-1, V) float32 logits as a NumPy .npy file\n"
    "  --grads   writes the gradient of the mean loss for every parameter,\n"
    "            under the parameter's own tensor name\n"
    "  --run     the model of a trained run of the store: its last checkpoint,\n"
    "            or with --step N its checkpoint at or before step N\n"
    "  --schedule  test-time depth: run the same weights with these chunk sizes\n"
    "            (more, fewer or other iterations). Iteration t takes the\n"
    "            per-iteration parameters, offset and shift of trained\n"
    "            iteration t if it has the same g, else of the last trained\n"
    "            iteration with that g; a g no trained iteration has is an\n"
    "            error unless the model uses down 'mean' and up 'copy'\n"
    "Any safetensors file with the documented tensor names and the config in\n"
    "__metadata__[\"config\"] is accepted, e.g. one written by PyTorch.\n";

int cmd_eval(int argc, char **argv) {
    const char *weights_path = NULL, *text_path = NULL, *tokens_path = NULL;
    const char *logits_path = NULL, *grads_path = NULL;
    const char *run = NULL, *store_path = NULL, *step_text = NULL, *schedule_text = NULL;
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
        {"--run", &run, NULL},
        {"--store", &store_path, NULL},
        {"--step", &step_text, NULL},
        {"--schedule", &schedule_text, NULL},
    };
    if (cli_parse_options("eval", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!weights_path == !run)
        return cli_usage_error("eval", "give exactly one of --weights and --run");
    if (run && !store_path) return cli_usage_error("eval", "--run needs --store");
    if (weights_path && (store_path || step_text))
        return cli_usage_error("eval", "--store and --step go with --run, not --weights");
    if (!text_path == !tokens_path)
        return cli_usage_error("eval", "give exactly one of --text and --tokens");

    EvalOptions options = {.weights_path = weights_path, .text_path = text_path,
                           .tokens_path = tokens_path, .logits_path = logits_path,
                           .grads_path = grads_path, .store_path = store_path,
                           .run_name = run, .step = -1};
    long v;
    if (step_text) {
        if (cli_parse_long("--step", step_text, 0, 1L << 40, &v)) return 2;
        options.step = v;
    }
    if (schedule_text &&
        depth_parse_schedule("--schedule", schedule_text, options.schedule, &options.n_schedule))
        return cli_fail("eval");
    EvalResult result;
    if (eval_sequence(&options, &result)) return cli_fail("eval");
    if (run) printf("run %s, checkpoint of step %lld, %d iterations\n", run, result.step,
                    result.n_iters);
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
