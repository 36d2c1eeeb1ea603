/* Per-process network workload for bench_net_progs: N children, each doing one UDP connect to
 * 127.0.0.1:53, one DNS query send and one TCP connect to a loopback listener of the parent
 * (so a per-thread slot is created per child), then the parent does the same N times itself.
 * argv: N [children, default N] */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const unsigned char q[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                                 "\x05" "bench" "\x04" "test" "\x00\x00\x01\x00\x01";
static struct sockaddr_in lsn_addr, dns = {.sin_family = AF_INET};

static void once(void) {
    int u = socket(AF_INET, SOCK_DGRAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    connect(u, (void *)&dns, sizeof dns);
    send(u, q, sizeof q - 1, 0);
    connect(c, (void *)&lsn_addr, sizeof lsn_addr);
    close(u);
    close(c);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int kids = argc > 2 ? atoi(argv[2]) : n; /* processes; then n rounds in this one */
    socklen_t len = sizeof lsn_addr;
    int lsn = socket(AF_INET, SOCK_STREAM, 0);
    lsn_addr.sin_family = AF_INET;
    lsn_addr.sin_addr.s_addr = htonl(0x7f000001);
    dns.sin_port = htons(53);
    dns.sin_addr.s_addr = htonl(0x7f000001);
    bind(lsn, (void *)&lsn_addr, sizeof lsn_addr);
    listen(lsn, 4096);
    getsockname(lsn, (void *)&lsn_addr, &len);
    for (int i = 0; i < kids; i++) {
        pid_t p = fork();
        if (p == 0) {
            once();
            _exit(0);
        }
        waitpid(p, NULL, 0);
        int a = accept(lsn, NULL, NULL);
        close(a);
    }
    for (int i = 0; i < n; i++) {
        once();
        close(accept(lsn, NULL, NULL));
    }
    return 0;
}
