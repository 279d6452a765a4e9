/* pin_random.c: an LD_PRELOAD for profiling only (bench/README.md, "The arena, profiled
 * again"). LuaJIT seeds its string hash from the system's randomness, which moves the
 * order of a state's keys and with it callgrind's counts by 1 to 3 % from run to run; this
 * hands every process the same bytes instead, so two builds can be compared to a few
 * instructions. getrandom (the function and the raw syscall) and getentropy get a fixed
 * pattern; /dev/urandom is read from PIN_RANDOM_FILE (default /tmp/pin-random.bin: make it
 * once with `head -c 4096 /dev/urandom > /tmp/pin-random.bin`).
 *   cc -O2 -shared -fPIC -o pin.so bench/pin_random.c -ldl
 * Never for a server that serves anyone: sessions and epochs become predictable. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>

static void fill(void *buf, size_t n) {
  for (size_t i = 0; i < n; ++i) ((unsigned char *)buf)[i] = (unsigned char)(i * 37 + 11);
}

ssize_t getrandom(void *buf, size_t n, unsigned flags) {
  (void)flags;
  fill(buf, n);
  return (ssize_t)n;
}

int getentropy(void *buf, size_t n) {
  fill(buf, n);
  return 0;
}

long syscall(long no, ...) {
  va_list ap;
  va_start(ap, no);
  long a[6];
  for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long);
  va_end(ap);
  if (no == SYS_getrandom) {
    fill((void *)a[0], (size_t)a[1]);
    return a[1];
  }
  static long (*real)(long, ...);
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  return real(no, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static const char *redirect(const char *path) {
  if (!path || strcmp(path, "/dev/urandom") != 0) return path;
  const char *file = getenv("PIN_RANDOM_FILE");
  return file && *file ? file : "/tmp/pin-random.bin";
}

#define PIN_OPEN(name)                                                   \
  int name(const char *path, int flags, ...) {                           \
    va_list ap;                                                          \
    va_start(ap, flags);                                                 \
    int mode = va_arg(ap, int);                                          \
    va_end(ap);                                                          \
    static int (*real)(const char *, int, ...);                          \
    if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
    return real(redirect(path), flags, mode);                            \
  }
PIN_OPEN(open)
PIN_OPEN(open64)

int openat(int dir, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  int mode = va_arg(ap, int);
  va_end(ap);
  static int (*real)(int, const char *, int, ...);
  if (!real) real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
  return real(dir, redirect(path), flags, mode);
}
