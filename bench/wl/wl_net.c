/* Network workload for bench_capture: N x (TCP connect to a loopback listener, accept,
 * send 1 KiB, receive it, close both ends; one DNS query over a UDP socket connected to
 * 127.0.0.1:53; one writev to /dev/null). Exercises connect, accept, the TCP state-change
 * program, the DNS send paths and the write/writev gates. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    static const unsigned char q[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                                     "\x05" "bench" "\x04" "test" "\x00\x00\x01\x00\x01";
    char buf[1024];
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    int lsn = socket(AF_INET, SOCK_STREAM, 0), devnull = open("/dev/null", O_WRONLY);
    a.sin_addr.s_addr = htonl(0x7f000001);
    bind(lsn, (void *)&a, sizeof a);
    listen(lsn, 64);
    getsockname(lsn, (void *)&a, &alen);
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(53)};
    d.sin_addr.s_addr = htonl(0x7f000001);
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (void *)&a, sizeof a)) { perror("connect"); return 1; }
        int s = accept(lsn, NULL, NULL);
        send(c, buf, sizeof buf, 0);
        for (int got = 0; got < (int)sizeof buf;) {
            ssize_t r = recv(s, buf, sizeof buf - got, 0);
            if (r <= 0) break;
            got += r;
        }
        close(c);
        close(s);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        connect(u, (void *)&d, sizeof d);
        send(u, q, sizeof q - 1, 0);
        close(u);
        struct iovec iov[2] = {{buf, 10}, {buf, 10}};
        writev(devnull, iov, 2);
    }
    return 0;
}
