/*
 * parallel.c: the thread pool of parallel.h.
 *
 * One job at a time: parallel_for publishes (fn, ctx, n_tasks), bumps
 * `generation`, and works on the tasks itself; every thread takes the next
 * task number from an atomic counter until none are left. Workers wait for
 * a new generation by spinning briefly (a training step issues thousands of
 * jobs, microseconds apart) and then sleeping on a condition variable, so an
 * idle pool costs no CPU. The caller returns once every worker has
 * reported the job done, so no worker can still be inside an old job when
 * the next one is published.
 */
#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

/* OpenBLAS's own thread count setter (declared here: cblas.h does not). */
void openblas_set_num_threads(int num_threads);

/* Spin iterations before a waiting worker sleeps (about 0.1 to 1 ms). */
#define SPIN_BEFORE_SLEEP 20000
/* Spin iterations of the caller between sched_yield calls while it waits. */
#define SPIN_BEFORE_YIELD 2000
#define MAX_THREADS 256

typedef struct {
    int n_threads;            /* including the calling thread */
    pthread_t workers[MAX_THREADS];
    int n_workers;            /* started */
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_uint generation;   /* bumped once per job */
    unsigned start_generation; /* generation when the workers were started */
    atomic_int stop;
    ParallelTask fn;          /* the current job */
    void *ctx;
    int n_tasks;
    atomic_int next_task;
    atomic_int running;       /* workers not yet done with the current job */
    atomic_flag busy;         /* a job is in flight */
} Pool;

static Pool pool = {.mutex = PTHREAD_MUTEX_INITIALIZER,
                    .wake = PTHREAD_COND_INITIALIZER,
                    .busy = ATOMIC_FLAG_INIT};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Runs tasks of the current job until the counter passes n_tasks. */
static void run_tasks(int thread) {
    for (;;) {
        int task = atomic_fetch_add(&pool.next_task, 1);
        if (task >= pool.n_tasks) return;
        pool.fn(pool.ctx, task, thread);
    }
}

/* Worker `thread` (1 .. n - 1): waits for each new generation, works on it,
 * reports done. */
static void *worker_main(void *arg) {
    int thread = (int)(size_t)arg;
    /* not the current generation: a job may have been published before
     * this thread first ran */
    unsigned seen = pool.start_generation;
    for (;;) {
        int spins = 0;
        while (atomic_load(&pool.generation) == seen && !atomic_load(&pool.stop)) {
            if (++spins < SPIN_BEFORE_SLEEP) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool.mutex);
            while (atomic_load(&pool.generation) == seen && !atomic_load(&pool.stop))
                pthread_cond_wait(&pool.wake, &pool.mutex);
            pthread_mutex_unlock(&pool.mutex);
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = atomic_load(&pool.generation);
        run_tasks(thread);
        atomic_fetch_sub(&pool.running, 1);
    }
}

/* Stops and joins every worker. */
static void pool_stop(void) {
    pthread_mutex_lock(&pool.mutex);
    atomic_store(&pool.stop, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);
    for (int w = 0; w < pool.n_workers; w++) pthread_join(pool.workers[w], NULL);
    pool.n_workers = 0;
    pool.n_threads = 1;
    atomic_store(&pool.stop, 0);
}

/* $SPIRAL_THREADS if it is a number >= 1, else the online cores. */
static int default_threads(void) {
    const char *env = getenv("SPIRAL_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n >= 1) return n > MAX_THREADS ? MAX_THREADS : (int)n;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    return cores > MAX_THREADS ? MAX_THREADS : (int)cores;
}

/* Starts workers until the pool has n threads; returns -1 if one failed. */
static int pool_start(int n) {
    openblas_set_num_threads(1);
    pool.n_threads = 1;
    pool.start_generation = atomic_load(&pool.generation);
    for (int w = 1; w < n; w++) {
        if (pthread_create(&pool.workers[pool.n_workers], NULL, worker_main, (void *)(size_t)w))
            return spiral_error("cannot start thread %d of %d for the parallel pool", w + 1, n);
        pool.n_workers++;
        pool.n_threads++;
    }
    return 0;
}

static void pool_start_default(void) {
    pool_start(default_threads());
    atexit(pool_stop);
}

int parallel_threads(void) {
    pthread_once(&pool_once, pool_start_default);
    return pool.n_threads;
}

int parallel_set_threads(int n) {
    pthread_once(&pool_once, pool_start_default);
    if (n <= 0) n = default_threads();
    if (n > MAX_THREADS) n = MAX_THREADS;
    if (n == pool.n_threads) {
        openblas_set_num_threads(1); /* in case a caller raised it meanwhile */
        return 0;
    }
    pool_stop();
    return pool_start(n);
}

void parallel_for(int n_tasks, ParallelTask fn, void *ctx) {
    if (n_tasks <= 0) return;
    int threads = parallel_threads();
    if (n_tasks == 1 || threads == 1 || atomic_flag_test_and_set(&pool.busy)) {
        for (int task = 0; task < n_tasks; task++) fn(ctx, task, 0);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n_tasks;
    atomic_store(&pool.next_task, 0);
    atomic_store(&pool.running, pool.n_workers);
    pthread_mutex_lock(&pool.mutex);
    atomic_fetch_add(&pool.generation, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);
    run_tasks(0);
    int spins = 0;
    while (atomic_load(&pool.running) > 0) {
        if (++spins % SPIN_BEFORE_YIELD == 0)
            sched_yield();
        else
            cpu_relax();
    }
    atomic_flag_clear(&pool.busy);
}

int parallel_parts(size_t count, int max_parts, size_t align) {
    if (count == 0) return 0;
    if (max_parts < 1) max_parts = 1;
    if (align < 1) align = 1;
    size_t per = (count + (size_t)max_parts - 1) / (size_t)max_parts;
    per = (per + align - 1) / align * align;
    return (int)((count + per - 1) / per);
}

void parallel_split(size_t count, int max_parts, size_t align, int part, size_t *begin,
                    size_t *end) {
    if (max_parts < 1) max_parts = 1;
    if (align < 1) align = 1;
    size_t per = (count + (size_t)max_parts - 1) / (size_t)max_parts;
    per = (per + align - 1) / align * align;
    if (per == 0) per = 1;
    size_t b = (size_t)part * per, e = b + per;
    *begin = b < count ? b : count;
    *end = e < count ? e : count;
}
