/* Adversarial workload for tests/capture/test_net_adversarial.py: the connect buffer is
 * rewritten while the kernel uses it.
 *
 * mode "late": the sockaddr is in a file page this process never touched (the probe cannot
 *   read it at sys_enter), the connect blocks (SYNs to a listener with a full accept queue are
 *   dropped) and a second thread rewrites the buffer to a fake peer meanwhile: a re-read at
 *   sys_exit sees the fake.
 * mode "flip": a thread flips the resident buffer between two ports while the main thread
 *   connects N times; each connect prints the peer the kernel really connected to.
 * argv: late <port> <fake-port> <file> | flip <port-a> <port-b> <n>
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct sockaddr_in *buf;
static volatile int stop;
static int fake_port, pa, pb;

static void *rewrite_late(void *arg) {
    usleep(300 * 1000);
    buf->sin_addr.s_addr = htonl(0x0a090909); /* 10.9.9.9 */
    buf->sin_port = htons(fake_port);
    return NULL;
}

static void *flip(void *arg) {
    while (!stop) {
        buf->sin_port = htons(pa);
        buf->sin_port = htons(pb);
    }
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t;
    if (!strcmp(argv[1], "late")) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
        a.sin_addr.s_addr = htonl(0x7f000001);
        fake_port = atoi(argv[3]);
        int fd = open(argv[4], O_RDWR | O_CREAT | O_TRUNC, 0600);
        char page[4096] = {0};
        memcpy(page, &a, sizeof a);
        write(fd, page, sizeof page);
        buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval tv = {.tv_sec = 1};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        pthread_create(&t, NULL, rewrite_late, NULL);
        int r = connect(s, (void *)buf, sizeof a);
        pthread_join(t, NULL);
        printf("%d\n", r);
        return 0;
    }
    pa = atoi(argv[2]);
    pb = atoi(argv[3]);
    int n = atoi(argv[4]);
    static struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000001);
    a.sin_port = htons(pa);
    buf = &a;
    pthread_create(&t, NULL, flip, NULL);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (void *)buf, sizeof a) || getpeername(s, (void *)&peer, &len)) {
            printf("0\n");
        } else {
            printf("%d\n", ntohs(peer.sin_port));
        }
        close(s);
    }
    stop = 1;
    pthread_join(t, NULL);
    return 0;
}
