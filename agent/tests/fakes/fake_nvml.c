/*
 * fake_nvml.c: a scripted stand-in for libnvidia-ml.so.1, so that tests drive
 * NvmlSource through the real nvml-wrapper code path (libloading, the real ABI).
 *
 * Build: cc -shared -fPIC -o DIR/libnvidia-ml.so.1 fake_nvml.c
 *
 * Script: plain `key=value` lines, re-read on every call (the last line for a key
 * wins; `#` starts a comment). The file is $FAKE_NVML_SCRIPT when set, otherwise
 * `fake_nvml.script` next to the loaded library, which keeps tests that run in
 * parallel (one library copy per temporary directory) apart. Every call is appended
 * to `<script>.calls`, one function name per line.
 *
 *   init=ok|driver_not_loaded|<error>     nvmlInit_v2 result
 *   driver_version=550.54.15
 *   device_count=2
 *   devN.name=NVIDIA H100   devN.uuid=GPU-...   devN.lost=1 (every call: GPU_IS_LOST)
 *   devN.energy_mj=1000     (alias devN.energy; missing: NOT_SUPPORTED)
 *   devN.energy_rate_mw=300000  (adds rate × CLOCK_MONOTONIC seconds to the energy at
 *                           each call: a counter that follows the clock, with no writer;
 *                           every value returned is appended to `<script>.energy`)
 *   devN.power_mw=250000    (missing: NOT_SUPPORTED)
 *   devN.util=70:40         (gpu:memory %; missing: NOT_SUPPORTED)
 *   devN.procs=1234:1073741824:gi=1:ci=0,5678:na   (pid:used bytes|na[:gi=][:ci=])
 *   devN.samples=1234:ts=100:sm=80:mem=30:enc=0:dec=0,...  (missing: NOT_FOUND)
 *   devN.accounting=1       (accounting mode; missing: 0)
 *   devN.acct=999:gpu=50:mem=20:maxmem=4096:time=5000:start=1:running=0,...
 *
 * Any value may instead be an error: notsupported, lost, unknown, notfound, noperm,
 * uninit, driver_not_loaded. Symbols exported: exactly the calls NvmlSource makes,
 * plus nvmlShutdown (nvml-wrapper's Drop calls it through a panicking accessor) and
 * nvmlSystemGetDriverVersion / nvmlErrorString (called around init). nvml-wrapper
 * resolves every symbol at init but tolerates missing ones until they are called.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef unsigned int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef unsigned int nvmlEnableState_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999,
};

#define NO_ID 0xFFFFFFFFu
#define NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFull

/* Layouts as in nvml-wrapper-sys 0.10 bindings.rs. */
typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct { /* nvmlProcessInfo_v2_st == nvmlProcessInfo_t */
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil;
    unsigned int memUtil;
    unsigned int encUtil;
    unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

typedef struct {
    unsigned int gpuUtilization;
    unsigned int memoryUtilization;
    unsigned long long maxMemoryUsage;
    unsigned long long time;
    unsigned long long startTime;
    unsigned int isRunning;
    unsigned int reserved[5];
} nvmlAccountingStats_t;

_Static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t");
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "sample");
_Static_assert(sizeof(nvmlAccountingStats_t) == 56, "nvmlAccountingStats_t");

#define MAX_ENTRIES 64
#define MAX_KV 8
#define VALUE_LEN 4096

struct entry {
    unsigned int pid;
    int has_pos;
    unsigned long long pos; /* the positional field after the pid */
    int nkv;
    char key[MAX_KV][16];
    unsigned long long val[MAX_KV];
};

static int initialised;

/* ---- script ----------------------------------------------------------- */

static void script_path(char *out, size_t n) {
    const char *env = getenv("FAKE_NVML_SCRIPT");
    Dl_info info;
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return;
    }
    if (dladdr((void *)&script_path, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        int dir_len = slash ? (int)(slash - info.dli_fname) : 1;
        snprintf(out, n, "%.*s/fake_nvml.script", dir_len, slash ? info.dli_fname : ".");
        return;
    }
    snprintf(out, n, "fake_nvml.script");
}

static void log_call(const char *name) {
    char path[4096 + 8];
    char script[4096];
    FILE *f;
    script_path(script, sizeof script);
    snprintf(path, sizeof path, "%s.calls", script);
    f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%s\n", name);
    fclose(f);
}

/* Copies the value of the last `key=` line into out; returns 1 if found. */
static int lookup(const char *key, char *out, size_t n) {
    char path[4096];
    char line[VALUE_LEN + 128];
    size_t key_len = strlen(key);
    int found = 0;
    FILE *f;
    script_path(path, sizeof path);
    f = fopen(path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        char *start = line;
        line[strcspn(line, "\r\n")] = '\0';
        while (*start == ' ' || *start == '\t') start++;
        if (*start == '#' || strncmp(start, key, key_len) != 0 || start[key_len] != '=')
            continue;
        snprintf(out, n, "%s", start + key_len + 1);
        found = 1;
    }
    fclose(f);
    return found;
}

static int error_code(const char *v) {
    static const struct { const char *name; int code; } table[] = {
        {"notsupported", NVML_ERROR_NOT_SUPPORTED},
        {"lost", NVML_ERROR_GPU_IS_LOST},
        {"unknown", NVML_ERROR_UNKNOWN},
        {"notfound", NVML_ERROR_NOT_FOUND},
        {"noperm", NVML_ERROR_NO_PERMISSION},
        {"uninit", NVML_ERROR_UNINITIALIZED},
        {"driver_not_loaded", NVML_ERROR_DRIVER_NOT_LOADED},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(v, table[i].name) == 0) return table[i].code;
    return -1;
}

static unsigned int device_count(void) {
    char v[64];
    return lookup("device_count", v, sizeof v) ? (unsigned int)strtoul(v, NULL, 10) : 1;
}

/* Looks up devN.field: NVML_SUCCESS with the value, the scripted error, or `missing`. */
static nvmlReturn_t dev_field(unsigned int idx, const char *field, char *out, size_t n,
                              nvmlReturn_t missing) {
    char key[64];
    int code;
    snprintf(key, sizeof key, "dev%u.%s", idx, field);
    if (!lookup(key, out, n)) return missing;
    code = error_code(out);
    return code >= 0 ? (nvmlReturn_t)code : NVML_SUCCESS;
}

/* Decodes a handle (index + 1) and applies devN.lost. */
static nvmlReturn_t dev_check(nvmlDevice_t device, unsigned int *idx) {
    uintptr_t raw = (uintptr_t)device;
    char v[64];
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (raw == 0 || raw > device_count()) return NVML_ERROR_INVALID_ARGUMENT;
    *idx = (unsigned int)(raw - 1);
    if (dev_field(*idx, "lost", v, sizeof v, NVML_ERROR_NOT_FOUND) == NVML_SUCCESS &&
        strcmp(v, "1") == 0)
        return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

static unsigned long long kv(const struct entry *e, const char *key, unsigned long long dflt) {
    for (int i = 0; i < e->nkv; i++)
        if (strcmp(e->key[i], key) == 0) return e->val[i];
    return dflt;
}

/* Parses `pid[:pos][:k=v]...` entries separated by commas. */
static int parse_entries(char *list, struct entry *out, int max) {
    int n = 0;
    char *save_entry = NULL;
    for (char *item = strtok_r(list, ",", &save_entry); item && n < max;
         item = strtok_r(NULL, ",", &save_entry)) {
        struct entry *e = &out[n];
        char *save_field = NULL;
        char *field = strtok_r(item, ":", &save_field);
        if (!field) continue;
        memset(e, 0, sizeof *e);
        e->pid = (unsigned int)strtoul(field, NULL, 10);
        while ((field = strtok_r(NULL, ":", &save_field))) {
            char *eq = strchr(field, '=');
            if (!eq) {
                e->has_pos = 1;
                e->pos = strcmp(field, "na") == 0 ? NOT_AVAILABLE : strtoull(field, NULL, 10);
            } else if (e->nkv < MAX_KV) {
                *eq = '\0';
                snprintf(e->key[e->nkv], sizeof e->key[0], "%s", field);
                e->val[e->nkv++] = strtoull(eq + 1, NULL, 10);
            }
        }
        n++;
    }
    return n;
}

static nvmlReturn_t copy_string(const char *value, char *out, unsigned int len) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(value) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, value, strlen(value) + 1);
    return NVML_SUCCESS;
}

/* ---- library ---------------------------------------------------------- */

nvmlReturn_t nvmlInit_v2(void) {
    char v[64];
    int code;
    log_call("nvmlInit_v2");
    if (lookup("init", v, sizeof v) && strcmp(v, "ok") != 0) {
        code = error_code(v);
        return code >= 0 ? (nvmlReturn_t)code : NVML_ERROR_UNKNOWN;
    }
    initialised++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
    log_call("nvmlShutdown");
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    initialised--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    char v[128] = "550.54.15";
    log_call("nvmlSystemGetDriverVersion");
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    lookup("driver_version", v, sizeof v);
    return copy_string(v, version, length);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    log_call("nvmlDeviceGetCount_v2");
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = device_count();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    log_call("nvmlDeviceGetHandleByIndex_v2");
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= device_count()) return NVML_ERROR_INVALID_ARGUMENT;
    *device = (nvmlDevice_t)(uintptr_t)(index + 1);
    return NVML_SUCCESS;
}

/* ---- device identity and energy --------------------------------------- */

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    char v[256], dflt[64];
    unsigned int idx;
    nvmlReturn_t r;
    log_call("nvmlDeviceGetName");
    if ((r = dev_check(device, &idx))) return r;
    snprintf(dflt, sizeof dflt, "Fake GPU %u", idx);
    r = dev_field(idx, "name", v, sizeof v, NVML_ERROR_NOT_FOUND);
    if (r == NVML_ERROR_NOT_FOUND) return copy_string(dflt, name, length);
    return r ? r : copy_string(v, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    char v[256], dflt[64];
    unsigned int idx;
    nvmlReturn_t r;
    log_call("nvmlDeviceGetUUID");
    if ((r = dev_check(device, &idx))) return r;
    snprintf(dflt, sizeof dflt, "GPU-00000000-0000-0000-0000-%012u", idx);
    r = dev_field(idx, "uuid", v, sizeof v, NVML_ERROR_NOT_FOUND);
    if (r == NVML_ERROR_NOT_FOUND) return copy_string(dflt, uuid, length);
    return r ? r : copy_string(v, uuid, length);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                 unsigned long long *energy) {
    char v[64];
    unsigned int idx;
    nvmlReturn_t r;
    log_call("nvmlDeviceGetTotalEnergyConsumption");
    if ((r = dev_check(device, &idx))) return r;
    r = dev_field(idx, "energy_mj", v, sizeof v, NVML_ERROR_NOT_FOUND);
    if (r == NVML_ERROR_NOT_FOUND)
        r = dev_field(idx, "energy", v, sizeof v, NVML_ERROR_NOT_SUPPORTED);
    if (r) return r;
    if (!energy) return NVML_ERROR_INVALID_ARGUMENT;
    *energy = strtoull(v, NULL, 10);
    if (dev_field(idx, "energy_rate_mw", v, sizeof v, NVML_ERROR_NOT_FOUND) == NVML_SUCCESS) {
        struct timespec now;
        char path[4096 + 8], script[4096];
        FILE *f;
        clock_gettime(CLOCK_MONOTONIC, &now);
        *energy += (unsigned long long)(strtod(v, NULL) * (now.tv_sec + now.tv_nsec / 1e9));
        script_path(script, sizeof script);
        snprintf(path, sizeof path, "%s.energy", script);
        if ((f = fopen(path, "a"))) {
            fprintf(f, "%llu\n", *energy);
            fclose(f);
        }
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    char v[64];
    unsigned int idx;
    nvmlReturn_t r;
    log_call("nvmlDeviceGetPowerUsage");
    if ((r = dev_check(device, &idx))) return r;
    if ((r = dev_field(idx, "power_mw", v, sizeof v, NVML_ERROR_NOT_SUPPORTED))) return r;
    if (!power) return NVML_ERROR_INVALID_ARGUMENT;
    *power = (unsigned int)strtoul(v, NULL, 10);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *util) {
    char v[64];
    char *colon;
    unsigned int idx;
    nvmlReturn_t r;
    log_call("nvmlDeviceGetUtilizationRates");
    if ((r = dev_check(device, &idx))) return r;
    if ((r = dev_field(idx, "util", v, sizeof v, NVML_ERROR_NOT_SUPPORTED))) return r;
    if (!util) return NVML_ERROR_INVALID_ARGUMENT;
    colon = strchr(v, ':');
    util->gpu = (unsigned int)strtoul(v, NULL, 10);
    util->memory = colon ? (unsigned int)strtoul(colon + 1, NULL, 10) : 0;
    return NVML_SUCCESS;
}

/* ---- processes -------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                     unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    static struct entry entries[MAX_ENTRIES];
    char v[VALUE_LEN] = "";
    unsigned int idx;
    nvmlReturn_t r;
    int n;
    log_call("nvmlDeviceGetComputeRunningProcesses_v3");
    if ((r = dev_check(device, &idx))) return r;
    if ((r = dev_field(idx, "procs", v, sizeof v, NVML_SUCCESS))) return r;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    n = parse_entries(v, entries, MAX_ENTRIES);
    if (!infos || *count < (unsigned int)n) {
        *count = (unsigned int)n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (int i = 0; i < n; i++) {
        infos[i].pid = entries[i].pid;
        infos[i].usedGpuMemory = entries[i].has_pos ? entries[i].pos : NOT_AVAILABLE;
        infos[i].gpuInstanceId = (unsigned int)kv(&entries[i], "gi", NO_ID);
        infos[i].computeInstanceId = (unsigned int)kv(&entries[i], "ci", NO_ID);
    }
    *count = (unsigned int)n;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *samples,
                                             unsigned int *count,
                                             unsigned long long last_seen) {
    static struct entry entries[MAX_ENTRIES];
    char v[VALUE_LEN] = "";
    unsigned int idx, fresh = 0;
    nvmlReturn_t r;
    int n;
    log_call("nvmlDeviceGetProcessUtilization");
    if ((r = dev_check(device, &idx))) return r;
    if ((r = dev_field(idx, "samples", v, sizeof v, NVML_ERROR_NOT_FOUND))) return r;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    n = parse_entries(v, entries, MAX_ENTRIES);
    for (int i = 0; i < n; i++)
        if (kv(&entries[i], "ts", 0) > last_seen) entries[fresh++] = entries[i];
    if (fresh == 0) return NVML_ERROR_NOT_FOUND; /* what the driver does */
    if (!samples || *count < fresh) {
        *count = fresh;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < fresh; i++) {
        samples[i].pid = entries[i].pid;
        samples[i].timeStamp = kv(&entries[i], "ts", 0);
        samples[i].smUtil = (unsigned int)kv(&entries[i], "sm", 0);
        samples[i].memUtil = (unsigned int)kv(&entries[i], "mem", 0);
        samples[i].encUtil = (unsigned int)kv(&entries[i], "enc", 0);
        samples[i].decUtil = (unsigned int)kv(&entries[i], "dec", 0);
    }
    *count = fresh;
    return NVML_SUCCESS;
}

/* ---- accounting ------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetAccountingMode(nvmlDevice_t device, nvmlEnableState_t *mode) {
    char v[64] = "0";
    unsigned int idx;
    nvmlReturn_t r;
    log_call("nvmlDeviceGetAccountingMode");
    if ((r = dev_check(device, &idx))) return r;
    if ((r = dev_field(idx, "accounting", v, sizeof v, NVML_SUCCESS))) return r;
    if (!mode) return NVML_ERROR_INVALID_ARGUMENT;
    *mode = strcmp(v, "1") == 0 ? 1 : 0;
    return NVML_SUCCESS;
}

/* Loads devN.acct when accounting mode is on. */
static nvmlReturn_t accounting_entries(nvmlDevice_t device, struct entry *entries, int *n) {
    char v[VALUE_LEN] = "";
    unsigned int idx;
    nvmlReturn_t r;
    if ((r = dev_check(device, &idx))) return r;
    if (dev_field(idx, "accounting", v, sizeof v, NVML_SUCCESS) || strcmp(v, "1") != 0)
        return NVML_ERROR_NOT_SUPPORTED;
    v[0] = '\0';
    if ((r = dev_field(idx, "acct", v, sizeof v, NVML_SUCCESS))) return r;
    *n = parse_entries(v, entries, MAX_ENTRIES);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetAccountingPids(nvmlDevice_t device, unsigned int *count,
                                         unsigned int *pids) {
    static struct entry entries[MAX_ENTRIES];
    nvmlReturn_t r;
    int n = 0;
    log_call("nvmlDeviceGetAccountingPids");
    if ((r = accounting_entries(device, entries, &n))) return r;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    if (!pids || *count < (unsigned int)n) {
        *count = (unsigned int)n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (int i = 0; i < n; i++) pids[i] = entries[i].pid;
    *count = (unsigned int)n;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetAccountingStats(nvmlDevice_t device, unsigned int pid,
                                          nvmlAccountingStats_t *stats) {
    static struct entry entries[MAX_ENTRIES];
    nvmlReturn_t r;
    int n = 0;
    log_call("nvmlDeviceGetAccountingStats");
    if ((r = accounting_entries(device, entries, &n))) return r;
    if (!stats) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < n; i++) {
        const struct entry *e = &entries[i];
        if (e->pid != pid) continue;
        memset(stats, 0, sizeof *stats);
        stats->gpuUtilization = (unsigned int)kv(e, "gpu", 0);
        stats->memoryUtilization = (unsigned int)kv(e, "mem", 0);
        stats->maxMemoryUsage = kv(e, "maxmem", 0);
        stats->time = kv(e, "time", 0);
        stats->startTime = kv(e, "start", 0);
        stats->isRunning = (unsigned int)kv(e, "running", 0);
        return NVML_SUCCESS;
    }
    return NVML_ERROR_NOT_FOUND;
}
