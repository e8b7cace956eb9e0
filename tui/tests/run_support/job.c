/* Workloads for the `greentop run` tests, compiled by the tests with cc.
 *
 *   job tree N CHILD_MS THREADS THREAD_MS
 *       THREADS threads each burn THREAD_MS of CPU while the main thread forks N
 *       children that each burn CHILD_MS (every other one through an intermediate
 *       process that exits at once, leaving it an orphan). The job is its own
 *       subreaper and reaps everything, then prints `tree_cpu_ns N`: its own and
 *       its reaped descendants' user + system time (getrusage), the oracle.
 *   job burn MS                burn MS of CPU and exit
 *   job orphan MS              leave a grandchild burning MS of CPU as an orphan
 *                              (reparented to greentop); wait for it to finish and
 *                              exit; the orphan prints `orphan PID cpu_ns N`
 *   job exit CODE              exit with CODE
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long cpu_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void burn(clockid_t clock, long ms) {
    long long end = cpu_ns(clock) + ms * 1000000LL;
    volatile unsigned long x = 1;
    while (cpu_ns(clock) < end)
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005UL + 1;
}

static void *thread_main(void *arg) {
    burn(CLOCK_THREAD_CPUTIME_ID, (long)arg);
    return NULL;
}

static long long rusage_ns(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static int tree(int n, long child_ms, int threads, long thread_ms) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pthread_t tids[64];
    for (int i = 0; i < threads && i < 64; i++)
        pthread_create(&tids[i], NULL, thread_main, (void *)thread_ms);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (i % 2 == 1 && fork() != 0)
                _exit(0); /* the intermediate: exits at once */
            burn(CLOCK_PROCESS_CPUTIME_ID, child_ms);
            _exit(0);
        }
    }
    for (int i = 0; i < threads && i < 64; i++)
        pthread_join(tids[i], NULL);
    while (wait(NULL) > 0)
        ;
    printf("tree_cpu_ns %lld\n", rusage_ns(RUSAGE_SELF) + rusage_ns(RUSAGE_CHILDREN));
    return 0;
}

static int orphan(long ms) {
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    pid_t middle = fork();
    if (middle == 0) {
        if (fork() == 0) {
            close(fds[0]);
            burn(CLOCK_PROCESS_CPUTIME_ID, ms);
            printf("orphan %d cpu_ns %lld\n", getpid(), rusage_ns(RUSAGE_SELF));
            fflush(stdout);
            _exit(0); /* closes the pipe: the job then exits */
        }
        _exit(0);
    }
    close(fds[1]);
    waitpid(middle, NULL, 0);
    char byte;
    while (read(fds[0], &byte, 1) > 0)
        ;
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "tree") == 0)
        return tree(atoi(argv[2]), atol(argv[3]), atoi(argv[4]), atol(argv[5]));
    if (argc == 3 && strcmp(argv[1], "burn") == 0) {
        burn(CLOCK_PROCESS_CPUTIME_ID, atol(argv[2]));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "orphan") == 0)
        return orphan(atol(argv[2]));
    if (argc == 3 && strcmp(argv[1], "exit") == 0)
        return atoi(argv[2]);
    fprintf(stderr, "usage: job tree N CHILD_MS THREADS THREAD_MS | burn MS | orphan MS | exit CODE\n");
    return 2;
}
