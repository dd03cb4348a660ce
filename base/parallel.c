/*
 * parallel.c: the thread pool of parallel.h.
 *
 * One job at a time. parallel_for publishes (fn, ctx, n_tasks) and works on
 * the tasks itself; workers take part if they come in time. The job's
 * progress is one atomic word: the tasks not yet claimed (low 32 bits) and
 * the workers inside the job (high 32 bits). A thread claims a task with
 * one compare-and-swap that takes the next task number and, for a worker
 * entering the job, counts it in; a worker that finds no task left never
 * enters. So once every task is claimed the caller waits only for workers
 * that are running one of them: never for a worker that is asleep, still
 * waking up, or was descheduled before it took a task. (Before, the caller
 * waited for every worker on every job, which made a busy machine's
 * scheduling delays, and every wake-up, part of every job.)
 *
 * Waiting without burning the machine's cores:
 *  - a worker that finished a job spins for the next one for at most
 *    spin_ns, its own budget: doubled (up to WORKER_SPIN_MAX_NS) when a job
 *    came during the spin or soon after it gave up, halved when the spin
 *    ran out, so a pool whose jobs come rarely (small models, whose jobs run
 *    on the caller) barely spins at all. Then it sleeps on a condition
 *    variable; the caller wakes sleepers only for a job of at least
 *    PARALLEL_WAKE_WORK (smaller ones go to the workers that are awake).
 *    A training step issues jobs microseconds apart, so its workers spin
 *    through it and sleep within WORKER_SPIN_MAX_NS of its end.
 *  - the caller waiting for workers still inside the job spins at most
 *    CALLER_SPIN_NS, then sleeps until the last one leaves.
 * Neither spin calls sched_yield: beside CPU-bound processes, a yield hands
 * the core away for a whole time slice, and bench_busy's step beside two
 * of them took 15-20% longer with a yield every 5 us than without.
 */
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

/* OpenBLAS's own thread count setter (declared here: cblas.h does not). */
void openblas_set_num_threads(int num_threads);

#define MAX_THREADS 256
/* The longest a worker spins for the next job before sleeping: a few times
 * what a wake-up costs the job it is woken for (30-100 us in bench_busy's
 * dispatch section); 200 us gave about 5% faster steps than 50 us in
 * bench_busy, quiet and busy. */
#define WORKER_SPIN_MAX_NS 200000
/* The shortest budget the adaptation goes down to. */
#define WORKER_SPIN_MIN_NS 1000
/* The longest the caller spins for the workers inside its job. */
#define CALLER_SPIN_NS 20000
/* Pause instructions between two reads of the clock while spinning. */
#define PAUSES_PER_CHECK 16

/* One worker counted into the progress word. */
#define ONE_WORKER ((uint64_t)1 << 32)

typedef struct {
    int n_threads;              /* including the calling thread */
    pthread_t workers[MAX_THREADS];
    int n_workers;              /* started */
    /* the current job: written by the caller while no worker is inside one */
    ParallelTask fn;
    void *ctx;
    int n_tasks;
    _Atomic uint64_t progress;  /* workers inside << 32 | tasks not yet claimed */
    atomic_uint generation;     /* bumped once per job: what waiting workers watch */
    unsigned start_generation;  /* generation when the workers were started */
    atomic_int sleepers;        /* workers asleep (or about to be) on `wake` */
    atomic_int caller_asleep;   /* the caller sleeps on `done` */
    atomic_int stop;
    pthread_mutex_t mutex;      /* guards the two sleeps */
    pthread_cond_t wake;        /* a new generation, or stop */
    pthread_cond_t done;        /* the last worker left the job */
    atomic_flag busy;           /* a job is in flight */
} Pool;

static Pool pool = {.mutex = PTHREAD_MUTEX_INITIALIZER,
                    .wake = PTHREAD_COND_INITIALIZER,
                    .done = PTHREAD_COND_INITIALIZER,
                    .busy = ATOMIC_FLAG_INIT};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Monotonic nanoseconds. */
static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The next task of the current job, or -1 when every task is claimed. A
 * worker not yet inside the job (enter = 1) is counted in by the same
 * swap, so it is inside exactly when it holds a task. */
static int claim_task(int enter) {
    uint64_t seen = atomic_load(&pool.progress);
    for (;;) {
        uint32_t unclaimed = (uint32_t)seen;
        if (unclaimed == 0) return -1;
        uint64_t claimed = seen - 1 + (enter ? ONE_WORKER : 0);
        if (atomic_compare_exchange_weak(&pool.progress, &seen, claimed))
            return pool.n_tasks - (int)unclaimed;
    }
}

/* Spins until keep_waiting(arg) is false or budget_ns has passed. Returns
 * 1 if the wait ended in time. */
static int spin_until(int (*keep_waiting)(void *), void *arg, int64_t budget_ns) {
    int64_t start = now_ns();
    for (;;) {
        for (int i = 0; i < PAUSES_PER_CHECK; i++) {
            if (!keep_waiting(arg)) return 1;
            cpu_relax();
        }
        if (now_ns() - start >= budget_ns) return 0;
    }
}

/* Whether a worker that has seen generation *arg is still without news. */
static int no_new_job(void *arg) {
    return atomic_load(&pool.generation) == *(unsigned *)arg && !atomic_load(&pool.stop);
}

/* Whether some worker is still inside the caller's job. */
static int workers_inside(void *arg) { return (atomic_load(&pool.progress) >> 32) != 0; }

/* Waits until the generation differs from *seen (or the pool stops),
 * spinning for up to *spin_ns first, then sleeping; adapts *spin_ns to how
 * long jobs took to come. Updates *seen. */
static void wait_for_job(unsigned *seen, int64_t *spin_ns) {
    if (spin_until(no_new_job, seen, *spin_ns)) {
        *spin_ns = *spin_ns * 2 < WORKER_SPIN_MAX_NS ? *spin_ns * 2 : WORKER_SPIN_MAX_NS;
    } else {
        int64_t slept_at = now_ns();
        pthread_mutex_lock(&pool.mutex);
        atomic_fetch_add(&pool.sleepers, 1);
        while (no_new_job(seen)) pthread_cond_wait(&pool.wake, &pool.mutex);
        atomic_fetch_sub(&pool.sleepers, 1);
        pthread_mutex_unlock(&pool.mutex);
        /* a job that came soon after the spin gave up: a longer spin (up
         * to the longest) would have caught it; else spin less next time */
        if (now_ns() - slept_at < WORKER_SPIN_MAX_NS)
            *spin_ns = *spin_ns * 2 < WORKER_SPIN_MAX_NS ? *spin_ns * 2 : WORKER_SPIN_MAX_NS;
        else
            *spin_ns = *spin_ns / 2 > WORKER_SPIN_MIN_NS ? *spin_ns / 2 : WORKER_SPIN_MIN_NS;
    }
    *seen = atomic_load(&pool.generation);
}

/* Leaves the current job; the last worker out wakes a sleeping caller. */
static void leave_job(void) {
    uint64_t after = atomic_fetch_sub(&pool.progress, ONE_WORKER) - ONE_WORKER;
    if ((after >> 32) == 0 && atomic_load(&pool.caller_asleep)) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_signal(&pool.done);
        pthread_mutex_unlock(&pool.mutex);
    }
}

/* Worker `thread` (1 .. n - 1): waits for each new job and runs the tasks
 * it can claim. */
static void *worker_main(void *arg) {
    int thread = (int)(size_t)arg;
    /* not the current generation: a job may have been published before
     * this thread first ran */
    unsigned seen = pool.start_generation;
    int64_t spin_ns = WORKER_SPIN_MAX_NS;
    for (;;) {
        wait_for_job(&seen, &spin_ns);
        if (atomic_load(&pool.stop)) return NULL;
        int task = claim_task(1);
        if (task < 0) continue; /* the others took every task */
        ParallelTask fn = pool.fn;
        void *ctx = pool.ctx;
        do {
            fn(ctx, task, thread);
            task = claim_task(0);
        } while (task >= 0);
        leave_job();
    }
}

/* Waits until no worker is inside the current job: a short spin, then
 * sleeping on `done`. */
static void wait_for_workers(void) {
    if (spin_until(workers_inside, NULL, CALLER_SPIN_NS)) return;
    pthread_mutex_lock(&pool.mutex);
    atomic_store(&pool.caller_asleep, 1);
    while (workers_inside(NULL)) pthread_cond_wait(&pool.done, &pool.mutex);
    atomic_store(&pool.caller_asleep, 0);
    pthread_mutex_unlock(&pool.mutex);
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

void parallel_for_work(int n_tasks, ParallelTask fn, void *ctx, double work) {
    if (n_tasks <= 0) return;
    int threads = parallel_threads();
    if (n_tasks == 1 || threads == 1 || work < PARALLEL_SERIAL_WORK ||
        atomic_flag_test_and_set(&pool.busy)) {
        for (int task = 0; task < n_tasks; task++) fn(ctx, task, 0);
        return;
    }
    /* no worker is inside a job: the previous caller waited them out */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n_tasks;
    atomic_store(&pool.progress, (uint64_t)n_tasks);
    atomic_fetch_add(&pool.generation, 1);
    /* sleeping workers are woken only for a job worth their wake-up; a
     * worker going to sleep counts itself in `sleepers` before it checks
     * the generation (both sequentially consistent), so either it sees the
     * new generation or this sees it; taking the mutex once makes sure it is
     * inside pthread_cond_wait before the broadcast, which comes after the
     * unlock so that the woken worker does not wait for the mutex */
    if (work >= PARALLEL_WAKE_WORK && atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_mutex_unlock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
    }
    for (int task = claim_task(0); task >= 0; task = claim_task(0)) fn(ctx, task, 0);
    wait_for_workers();
    atomic_flag_clear(&pool.busy);
}

void parallel_for(int n_tasks, ParallelTask fn, void *ctx) {
    parallel_for_work(n_tasks, fn, ctx, PARALLEL_WAKE_WORK);
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
