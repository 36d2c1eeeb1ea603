/* Adversarial workload for tests/capture/test_net_adversarial.py: one thread blocked in a
 * connect (or, with a DNS server address, in a send of a DNS query on a TCP socket connected to
 * its port 53 whose send buffer is full) while thousands of others of the same process enter
 * and leave connects: per-thread in-flight state must not evict the blocked one.
 * argv: <storm threads> <full-listener port> [<DNS server IPv4>] */
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
static const char *dns_host;

/* a DNS query for victim.example.test, as a TCP message (2-byte length first) */
static const unsigned char query[] = "\x00\x25\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                                     "\x06" "victim" "\x07" "example" "\x04" "test" "\x00\x00\x01\x00\x01";

/* blocked in send(): fill the socket's send buffer (the server never reads), then send the
 * query with a 3 s SO_SNDTIMEO */
static int blocked_dns_send(void) {
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(53)};
    static char junk[65536];
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 4096;
    inet_pton(AF_INET, dns_host, &d.sin_addr);
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
    if (connect(s, (void *)&d, sizeof d))
        return -2;
    /* until the peer's receive window and our send buffer are both full: a full send buffer
     * drains into the peer's window meanwhile, so fill again after a pause, a few times */
    for (int round = 0; round < 20; round++) {
        while (send(s, junk, sizeof junk, MSG_DONTWAIT) > 0)
            ;
        usleep(20 * 1000);
    }
    struct timeval tv = {.tv_sec = 3};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return send(s, query, sizeof query - 1, 0);
}

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
    int r = dns_host ? blocked_dns_send() : blocked_connect(3);
    printf("victim %d %d\n", r, r ? errno : 0);
    return NULL;
}

int main(int argc, char **argv) {
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
    n_storm = atoi(argv[1]);
    dns_host = argc > 3 ? argv[3] : NULL;
    full.sin_family = AF_INET;
    full.sin_port = htons(atoi(argv[2]));
    full.sin_addr.s_addr = htonl(0x7f000001);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    pthread_t *t = calloc(n_storm, sizeof *t), v;
    int started = 0;
    pthread_create(&v, &at, victim, NULL);
    usleep(dns_host ? 500 * 1000 : 200 * 1000); /* the victim is blocked by now */
    for (int i = 0; i < n_storm; i++)
        if (!pthread_create(&t[i], &at, storm, NULL)) started++;
        else t[i] = 0;
    for (int i = 0; i < n_storm; i++) if (t[i]) pthread_join(t[i], NULL);
    pthread_join(v, NULL);
    printf("started %d\n", started);
    return 0;
}
