/*
 * fake_cuda.c: a stand-in for libcuda.so.1 with the driver API's real entry-point
 * names, so that tests attach greentop's uprobes to a real shared library and call
 * it for real (dlopen + dlsym, as the CUDA runtime does with cuGetProcAddress).
 *
 * Build: cc -shared -fPIC -O0 -fno-ipa-icf -Wl,-soname,libcuda.so.1 \
 *           -o DIR/libcuda.so.1 fake_cuda.c
 *   -DOMIT_LAUNCH_EX   leaves out cuLaunchKernelEx and cuLaunchKernelEx_ptsz
 *   -DOMIT_GRAPHS      leaves out cuGraphLaunch and cuGraphLaunch_ptsz
 * (a library without some entry points: greentop must attach the rest).
 * -O0 and -fno-ipa-icf keep every function a body of its own: identical functions
 * folded into jumps to one another would fire two uprobes per call.
 *
 * Behaviour, read from the environment at each call:
 *   FAKE_CUDA_SYNC_US   cuCtxSynchronize, cuStreamSynchronize(_ptsz) and
 *                       cuEventSynchronize sleep this many microseconds (default 0)
 *                       with clock_nanosleep, which never sleeps less.
 *   FAKE_CUDA_DEVICE    cuInit does what the real driver does first: opens this
 *                       NVIDIA device node and queries it with an ioctl. The node is
 *                       opened O_PATH, so no driver needs to be loaded; the ioctl then
 *                       fails with EBADF, but the syscall (what greentop counts) happens.
 * Every entry point returns CUDA_SUCCESS (0).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

typedef int CUresult;
typedef void *CUcontext;
typedef void *CUstream;
typedef void *CUevent;
typedef void *CUfunction;
typedef void *CUgraphExec;
typedef void *CUlaunchConfig;

/* NV_ESC_CARD_INFO: _IOWR('F', 200, 4-byte argument), the driver's first query. */
#define NV_ESC_CARD_INFO 0xc00446c8UL

/* Distinct per function, so no two bodies are identical. */
static volatile unsigned long calls[32];

static void sleep_sync(void) {
    const char *text = getenv("FAKE_CUDA_SYNC_US");
    long us = text ? atol(text) : 0;
    if (us <= 0)
        return;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) != 0) {
    }
}

CUresult cuInit(unsigned int flags) {
    (void)flags;
    calls[0]++;
    const char *device = getenv("FAKE_CUDA_DEVICE");
    if (device) {
        int fd = open(device, O_PATH | O_CLOEXEC);
        if (fd >= 0) {
            int card = 0;
            (void)ioctl(fd, NV_ESC_CARD_INFO, &card);
            close(fd);
        }
    }
    return 0;
}

CUresult cuDriverGetVersion(int *version) {
    calls[1]++;
    if (version)
        *version = 12040;
    return 0;
}

/* Context switches. */
CUresult cuCtxSetCurrent(CUcontext ctx) { (void)ctx; calls[2]++; return 0; }
CUresult cuCtxPushCurrent_v2(CUcontext ctx) { (void)ctx; calls[3]++; return 0; }
CUresult cuCtxPopCurrent_v2(CUcontext *ctx) { if (ctx) *ctx = 0; calls[4]++; return 0; }
CUresult cuCtxPushCurrent(CUcontext ctx) { (void)ctx; calls[5]++; return 0; }
CUresult cuCtxPopCurrent(CUcontext *ctx) { if (ctx) *ctx = 0; calls[6]++; return 0; }

/* Launches. */
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared, CUstream s, void **params,
                        void **extra) {
    (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shared;
    (void)s; (void)params; (void)extra;
    calls[7]++;
    return 0;
}
CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                             unsigned by, unsigned bz, unsigned shared, CUstream s,
                             void **params, void **extra) {
    (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shared;
    (void)s; (void)params; (void)extra;
    calls[8]++;
    return 0;
}
#ifndef OMIT_LAUNCH_EX
CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **params,
                          void **extra) {
    (void)config; (void)f; (void)params; (void)extra;
    calls[9]++;
    return 0;
}
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **params,
                               void **extra) {
    (void)config; (void)f; (void)params; (void)extra;
    calls[10]++;
    return 0;
}
#endif
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                   unsigned bx, unsigned by, unsigned bz, unsigned shared,
                                   CUstream s, void **params) {
    (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shared;
    (void)s; (void)params;
    calls[11]++;
    return 0;
}
CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                        unsigned bx, unsigned by, unsigned bz,
                                        unsigned shared, CUstream s, void **params) {
    (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shared;
    (void)s; (void)params;
    calls[12]++;
    return 0;
}
#ifndef OMIT_GRAPHS
CUresult cuGraphLaunch(CUgraphExec graph, CUstream s) { (void)graph; (void)s; calls[13]++; return 0; }
CUresult cuGraphLaunch_ptsz(CUgraphExec graph, CUstream s) { (void)graph; (void)s; calls[14]++; return 0; }
#endif

/* Sync waits. */
CUresult cuCtxSynchronize(void) { calls[15]++; sleep_sync(); return 0; }
CUresult cuStreamSynchronize(CUstream s) { (void)s; calls[16]++; sleep_sync(); return 0; }
CUresult cuStreamSynchronize_ptsz(CUstream s) { (void)s; calls[17]++; sleep_sync(); return 0; }
CUresult cuEventSynchronize(CUevent e) { (void)e; calls[18]++; sleep_sync(); return 0; }
