/* Adversarial workload for tests/capture/test_net_adversarial.py: one thread blocked in a
 * connect while thousands of others of the same process enter and leave connects: per-thread
 * in-flight state must not evict the blocked one. argv: <storm threads> <full-listener port> */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <errno.h>

static struct sockaddr_in full;
static int n_storm;

static int blocked_connect(int secs) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = secs};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int r = connect(s, (void *)&full, sizeof full);
    return r;
}

static void *storm(void *arg) {
    blocked_connect(1);
    return NULL;
}

/* the victim: blocked in connect (SYNs to a listener with a full accept queue are dropped)
 * for 3 s while thousands of other threads of the same process enter and leave connects */
static void *victim(void *arg) {
    int r = blocked_connect(3);
    printf("victim %d %d\n", r, r ? errno : 0);
    return NULL;
}

int main(int argc, char **argv) {
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
    n_storm = atoi(argv[1]);
    full.sin_family = AF_INET;
    full.sin_port = htons(atoi(argv[2]));
    full.sin_addr.s_addr = htonl(0x7f000001);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    pthread_t *t = calloc(n_storm, sizeof *t), v;
    int started = 0;
    pthread_create(&v, &at, victim, NULL);
    usleep(200 * 1000);
    for (int i = 0; i < n_storm; i++)
        if (!pthread_create(&t[i], &at, storm, NULL)) started++;
        else t[i] = 0;
    for (int i = 0; i < n_storm; i++) if (t[i]) pthread_join(t[i], NULL);
    pthread_join(v, NULL);
    printf("started %d\n", started);
    return 0;
}
