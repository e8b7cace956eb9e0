/*
 * cuda_calls.c: calls a libcuda's entry points a known number of times from two
 * threads, for greentop's GPU probe tests. Driven line by line over stdin/stdout so
 * the test decides when each step happens, whatever the machine's load.
 *
 * Build: cc -O0 -pthread -o cuda_calls cuda_calls.c -ldl
 * Usage: cuda_calls LIB N1 N2 early|late
 *   early  dlopen(LIB) before saying "ready"; late: only after the first go line
 *
 *   -> "ready PID"                    <- a line
 *      (late: dlopen now) cuInit(0)
 *   -> "init"                         <- a line
 *      thread 1 calls every entry point it found N1 times, thread 2 N2 times, in
 *      parallel; each sync call is timed around the call with CLOCK_MONOTONIC
 *   -> "found CTX LAUNCH SYNC"        entry points found, per kind
 *   -> "thread K TID SYNC_CALLS BRACKET_NS"   one line per thread
 *   -> "done"
 * Any failure prints "error: ..." and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*fn_t)();

static const char *CTX[] = {"cuCtxSetCurrent", "cuCtxPushCurrent_v2", "cuCtxPopCurrent_v2",
                            "cuCtxPushCurrent", "cuCtxPopCurrent"};
static const char *LAUNCH[] = {"cuLaunchKernel", "cuLaunchKernel_ptsz", "cuLaunchKernelEx",
                               "cuLaunchKernelEx_ptsz", "cuLaunchCooperativeKernel",
                               "cuLaunchCooperativeKernel_ptsz", "cuGraphLaunch",
                               "cuGraphLaunch_ptsz"};
static const char *SYNC[] = {"cuCtxSynchronize", "cuStreamSynchronize",
                             "cuStreamSynchronize_ptsz", "cuEventSynchronize"};
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static fn_t ctx[LEN(CTX)], launch[LEN(LAUNCH)], sync_fn[LEN(SYNC)];
static size_t n_ctx, n_launch, n_sync;

struct worker {
    int index;
    long calls;
    long tid;
    long sync_calls;
    uint64_t bracket_ns;
};

static void die(const char *what) {
    printf("error: %s\n", what);
    fflush(stdout);
    exit(1);
}

static void wait_line(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        die("stdin closed");
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t resolve(void *lib, const char **names, size_t len, fn_t *out) {
    size_t found = 0;
    for (size_t i = 0; i < len; i++) {
        fn_t f = (fn_t)dlsym(lib, names[i]);
        if (f)
            out[found++] = f;
    }
    return found;
}

static void *run(void *arg) {
    struct worker *w = arg;
    w->tid = syscall(SYS_gettid);
    void *dummy = 0;
    for (long i = 0; i < w->calls; i++) {
        for (size_t k = 0; k < n_ctx; k++)
            ctx[k](&dummy);
        for (size_t k = 0; k < n_launch; k++)
            launch[k](0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0);
        for (size_t k = 0; k < n_sync; k++) {
            uint64_t start = now_ns();
            sync_fn[k](0);
            w->bracket_ns += now_ns() - start;
            w->sync_calls++;
        }
    }
    return 0;
}

static void *open_lib(const char *path) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        die(dlerror());
    n_ctx = resolve(lib, CTX, LEN(CTX), ctx);
    n_launch = resolve(lib, LAUNCH, LEN(LAUNCH), launch);
    n_sync = resolve(lib, SYNC, LEN(SYNC), sync_fn);
    return lib;
}

int main(int argc, char **argv) {
    if (argc != 5)
        die("usage: cuda_calls LIB N1 N2 early|late");
    setvbuf(stdout, 0, _IOLBF, 0);
    int late = strcmp(argv[4], "late") == 0;
    void *lib = late ? 0 : open_lib(argv[1]);
    printf("ready %d\n", (int)getpid());
    wait_line();
    if (late)
        lib = open_lib(argv[1]);
    fn_t init = (fn_t)dlsym(lib, "cuInit");
    if (!init)
        die("no cuInit");
    init(0);
    printf("init\n");
    wait_line();
    struct worker workers[2] = {{1, atol(argv[2]), 0, 0, 0}, {2, atol(argv[3]), 0, 0, 0}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&threads[i], 0, run, &workers[i]))
            die("pthread_create");
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], 0);
    printf("found %zu %zu %zu\n", n_ctx, n_launch, n_sync);
    for (int i = 0; i < 2; i++)
        printf("thread %d %ld %ld %llu\n", workers[i].index, workers[i].tid,
               workers[i].sync_calls, (unsigned long long)workers[i].bracket_ns);
    printf("done\n");
    return 0;
}
