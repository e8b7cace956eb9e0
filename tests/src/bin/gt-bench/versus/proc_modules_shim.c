/* LD_PRELOAD shim for the benchmarks: this kernel has no /proc/modules, and
 * Scaphandre's powercap sensor panics without one (procfs::modules().unwrap()).
 * Opening "/proc/modules" opens the file named by GT_PROC_MODULES instead (one
 * line: an intel_rapl_common module). Every other path goes to libc untouched.
 * Built by gt-bench with `cc -shared -fPIC`. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *redirect(const char *path) {
    const char *replacement = getenv("GT_PROC_MODULES");
    if (path && replacement && strcmp(path, "/proc/modules") == 0)
        return replacement;
    return path;
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_SHIM(name)                                                        \
    int name(const char *path, int flags, ...) {                              \
        static int (*real)(const char *, int, ...);                           \
        if (!real)                                                             \
            real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);   \
        va_list ap;                                                            \
        va_start(ap, flags);                                                   \
        mode_t mode = mode_arg(flags, ap);                                     \
        va_end(ap);                                                            \
        return real(redirect(path), flags, mode);                              \
    }

#define OPENAT_SHIM(name)                                                      \
    int name(int dirfd, const char *path, int flags, ...) {                   \
        static int (*real)(int, const char *, int, ...);                      \
        if (!real)                                                             \
            real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        va_list ap;                                                            \
        va_start(ap, flags);                                                   \
        mode_t mode = mode_arg(flags, ap);                                     \
        va_end(ap);                                                            \
        return real(dirfd, redirect(path), flags, mode);                       \
    }

OPEN_SHIM(open)
OPEN_SHIM(open64)
OPENAT_SHIM(openat)
OPENAT_SHIM(openat64)

FILE *fopen(const char *path, const char *mode) {
    static FILE *(*real)(const char *, const char *);
    if (!real)
        real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    return real(redirect(path), mode);
}

FILE *fopen64(const char *path, const char *mode) {
    static FILE *(*real)(const char *, const char *);
    if (!real)
        real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen64");
    return real(redirect(path), mode);
}
