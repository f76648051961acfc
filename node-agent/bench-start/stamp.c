/* The benchmark's app: /bin/true that first prints CLOCK_MONOTONIC in nanoseconds, so the benchmark learns
 * when the container's first instruction ran. Built static by scripts/bench-start (the rootfs has no libc). */
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("%lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    return 0;
}
