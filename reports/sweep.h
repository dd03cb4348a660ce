/*
 * sweep.h: a whole study from one JSON file (`spiral sweep`).
 *
 * A sweep file lists datasets, runs (each a run file and a list of seeds),
 * and what to do with the trained runs (record, probe, analyze, report):
 *
 *   {"datasets": [{"name": "pcfg", "family": "pcfg", "seed": 1, "params": {...}}],
 *    "runs": [{"name": "spiral", "config": "examples/demo/spiral.json", "seeds": [1, 2]}],
 *    "record": {"split": "test", "sequences": 100},
 *    "probe": {"labels": ["l2.symbol", "l3.symbol"]},
 *    "analyze": {},
 *    "report": {"out": "build/study/report"}}
 *
 * The record object may also give "data": the dataset every run is
 * recorded, probed and analyzed on (else each run's train.dataset).
 * The report object may also give "probe_sites" and "probe_iterations"
 * (strings, as `spiral report --probe-sites/--probe-iterations`).
 * A dataset may also give "text": a file for the text family. A run with
 * "seeds" becomes one run per seed, named NAME-sSEED, whose run file is
 * the given one with train.seed replaced (written to STORE.sweep/). A run
 * with "match_flops": "OTHER" (the name of another run of the file) has its
 * train.steps rescaled so that it trains to OTHER's training FLOPs, with its
 * own full schedule (matched_runs.h, matched_scale_train): the variants of
 * an ablation study then compare at equal compute, each read at its end.
 * "device": "cuda" at the top level trains every run with --device cuda
 * (the sweep must then run a spiral built with `make cuda`); "precision"
 * ("fp32", "tf32", "bf16") adds --precision to every train command.
 *
 * Each step is the `spiral` binary itself run as a child process (`spiral
 * data make`, `spiral train`, ...), so a sweep does exactly what the
 * commands would do by hand and every run records its own command line.
 * sweep_plan reads the file and the store and lists the steps: a dataset
 * the store has and a run that is done are left out, an unfinished run is
 * resumed (`spiral record` itself skips recorded sequences). So an
 * interrupted sweep, started again, continues where it stopped. sweep_run
 * runs the steps stage by stage; within the runs and record stages up to
 * `jobs` processes run at once, each with one thread (SPIRAL_THREADS=1) so
 * that the cores are not oversubscribed.
 */
#ifndef SPIRAL_SWEEP_H
#define SPIRAL_SWEEP_H

#include "progress.h"

/* One step: a child process's argument vector. */
typedef struct {
    char **argv;      /* argc arguments and a NULL; argv[0] is the spiral binary */
    int argc;
    char *label;      /* "dataset pcfg", "run spiral-s1", "record spiral-s1", ... */
} SweepCommand;

/* The stages of a sweep, in order: a stage starts when the one before it
 * has finished. */
typedef enum {
    SWEEP_DATASETS,   /* `spiral data make`, one at a time */
    SWEEP_RUNS,       /* `spiral train`, up to jobs at once */
    SWEEP_RECORD,     /* `spiral record`, up to jobs at once */
    SWEEP_FINISH,     /* `spiral probe` per run, `analyze`, `report`: one at a time */
    SWEEP_STAGE_COUNT
} SweepStage;

/* Every step of a sweep: stage s is commands[stage_start[s] ..
 * stage_start[s + 1]). */
typedef struct {
    SweepCommand *commands;
    int n_commands, capacity;
    int stage_start[SWEEP_STAGE_COUNT + 1];
} SweepPlan;

typedef struct {
    const char *spiral_path;   /* the spiral binary every step runs */
    const char *store_path;    /* the store (created if missing) */
    int jobs;                  /* processes at once in the runs and record stages, 1..64 */
    const Progress *progress;  /* sweep_run's steps done of all steps, or NULL */
    int dry_run;               /* plan only: write nothing, not even the store or run files */
} SweepOptions;

/* Reads the sweep file and the store and lists the steps still to do
 * (writes the seeded run files of new runs to STORE.sweep/, unless
 * options->dry_run). Dataset and run names must be allowed names
 * (base/names.h). Returns 0, or -1 with an error naming the file and
 * field. */
int sweep_plan(SweepPlan *plan, const char *sweep_path, const SweepOptions *options);

/* Runs the plan's steps, stage by stage. After a step fails no new step
 * starts; the running ones finish and the error names the failed step.
 * Waits for child processes with wait(), so the caller should have no
 * other children. Returns 0 or -1. */
int sweep_run(const SweepPlan *plan, const SweepOptions *options);

void sweep_plan_free(SweepPlan *plan);

#endif
