/*
 * sweep.c: runs a sweep's plan (sweep.h): each step a child process of the
 * spiral binary, stage by stage, up to `jobs` at once in the runs and
 * record stages, with the sweep's progress (steps done of all steps)
 * reported through base/progress.h.
 */
#include "sweep.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"

extern char **environ;

/* At most this many steps run at once. */
#define SWEEP_MAX_JOBS 64

/* Where the sweep stands, for its progress reports. */
typedef struct {
    const Progress *progress;
    double start;         /* seconds_now() when the sweep started */
    long done, total;     /* steps finished, steps in the plan */
} SweepProgress;

/* Reports steps done of all steps; detail says which step started or
 * finished. */
static void report(const SweepProgress *p, const char *detail, int finished) {
    ProgressReport r = {.task = "sweep", .unit = "steps", .done = p->done, .total = p->total,
                        .elapsed = seconds_now() - p->start, .detail = detail,
                        .finished = finished};
    progress_report(p->progress, &r);
}

/* The caller's environment with SPIRAL_THREADS=1 (one thread per step when
 * several run at once): a malloc'd array of environ's own strings. */
static char **single_thread_environment(void) {
    static char one_thread[] = "SPIRAL_THREADS=1";
    size_t n = 0;
    while (environ[n]) n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SPIRAL_THREADS=", 15) != 0) env[k++] = environ[i];
    env[k++] = one_thread;
    env[k] = NULL;
    return env;
}

/* Runs commands[first, last) of the plan with at most jobs at a time; no
 * new one starts after a failure. Returns 0 if all succeeded, else -1 with
 * the first failure's error. */
static int run_stage(const SweepPlan *plan, int first, int last, int jobs, SweepProgress *p) {
    pid_t pids[SWEEP_MAX_JOBS];
    int which[SWEEP_MAX_JOBS];
    char **env = environ, **own_env = NULL;
    if (jobs > SWEEP_MAX_JOBS) jobs = SWEEP_MAX_JOBS;
    if (jobs > 1) {
        own_env = single_thread_environment();
        if (!own_env) return spiral_error("out of memory starting the sweep's steps");
        env = own_env;
    }
    int next = first, running = 0, failed = 0;
    char detail[600];
    while (next < last || running > 0) {
        while (!failed && next < last && running < jobs) {
            const SweepCommand *c = &plan->commands[next];
            pid_t pid;
            int rc = posix_spawn(&pid, c->argv[0], NULL, NULL, c->argv, env);
            if (rc) {
                spiral_error("cannot run %s (%s): %s", c->argv[0], c->label, strerror(rc));
                failed = 1;
                break;
            }
            pids[running] = pid;
            which[running] = next++;
            running++;
            snprintf(detail, sizeof detail, "started %s", c->label);
            report(p, detail, 0);
        }
        if (running == 0) break;
        int status;
        pid_t done = wait(&status);
        if (done < 0) {
            if (errno == EINTR) continue;
            spiral_error("waiting for the sweep's steps: %s", strerror(errno));
            failed = 1;
            break;
        }
        for (int i = 0; i < running; i++) {
            if (pids[i] != done) continue;
            const SweepCommand *c = &plan->commands[which[i]];
            int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!ok && !failed) {
                spiral_error("step failed (%s, exit %d): %s", c->label,
                             WIFEXITED(status) ? WEXITSTATUS(status) : -1, c->argv[1]);
                failed = 1;
            }
            p->done++;
            snprintf(detail, sizeof detail, "%s %s", c->label, ok ? "done" : "failed");
            report(p, detail, 0);
            pids[i] = pids[running - 1];
            which[i] = which[running - 1];
            running--;
            break;
        }
    }
    free(own_env);
    return failed ? -1 : 0;
}

int sweep_run(const SweepPlan *plan, const SweepOptions *options) {
    SweepProgress p = {options->progress, seconds_now(), 0, plan->n_commands};
    for (int s = 0; s < SWEEP_STAGE_COUNT; s++) {
        int parallel = s == SWEEP_RUNS || s == SWEEP_RECORD;
        if (run_stage(plan, plan->stage_start[s], plan->stage_start[s + 1],
                      parallel ? options->jobs : 1, &p))
            return -1;
    }
    report(&p, NULL, 1);
    return 0;
}
