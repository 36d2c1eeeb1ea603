// SPDX-License-Identifier: GPL-2.0
/* Network domain of the capture engine (record kinds 32..47).
 *
 * What is recorded for tracked processes:
 *   connect   every result (0, -EINPROGRESS, -ECONNREFUSED, ...), inet/inet6/unix/other
 *   send      datagrams with a destination (sendto addr / sendmsg msg_name / sendmmsg),
 *             once per (process, destination) except DNS (port 53), which is always
 *             reported with the first bytes of the query so user space can parse the qname;
 *             also sends/writes on a UDP socket connect()ed to port 53 (glibc's resolver)
 *   bind / listen / accept   local address, and the peer for accept
 *
 * Pattern: sys_enter parses the user arguments into a pending record (per-CPU scratch
 * -> LRU hash keyed by tid and record index, the index > 0 only for sendmmsg); sys_exit
 * fills the header and result and copies the record into the shared ring. Exit handlers
 * need no is_tracked(): a pending entry exists only for tracked tasks. accept has no
 * enter half: the new fd's socket holds both addresses.
 *
 * User memory the probe cannot read at sys_enter (a page not faulted in yet, which an agent
 * can arrange on purpose) is read again at sys_exit, after the kernel's own copy faulted
 * it in: connect/bind sockaddrs, and every send argument (F_RETRY).
 *
 * Hot paths: sendto without an address, write and close (on x86: in exec.bpf.c) of every
 * process on the host leave after one load of dns_fd_hint (zero unless some tracked process holds a UDP
 * socket connected to port 53); everything else checks is_tracked() first.
 */
#include "common.h"
#include "dnsfds.h"
#include <bpf/bpf_endian.h>

enum net_kind {
	K_NET_CONNECT = 32,
	K_NET_SEND = 33,
	K_NET_BIND = 34,
	K_NET_LISTEN = 35,
	K_NET_ACCEPT = 36,
	K_NET_ESTABLISHED = 37, /* a tracked TCP connect completed the handshake */
	K_NET_CLOSE = 38,	/* a tracked TCP connection ended: outcome, bytes, duration */
};

/* Which syscall produced the record (decode_net.SYSCALLS mirrors this). */
enum net_syscall {
	SC_CONNECT = 1,
	SC_SENDTO = 2,
	SC_SENDMSG = 3,
	SC_SENDMMSG = 4,
	SC_WRITE = 5,
	SC_BIND = 6,
	SC_LISTEN = 7,
	SC_ACCEPT = 8,
	SC_ACCEPT4 = 9,
	SC_WRITEV = 10,
	SC_PWRITEV2 = 11,
	SC_STATE = 12, /* inet_sock_set_state: not a syscall of the process (softirq, timers) */
};

/* net_rec.flags */
#define F_ADDR_FAULT 1	  /* the sockaddr could not be read from user memory */
#define F_DST_REMEMBERED 2 /* destination taken from the earlier connect() of this fd */
#define F_PAYLOAD_FAULT 4 /* the DNS payload could not be read */
#define F_FASTOPEN 8	  /* TCP fast open: sendto/sendmsg(MSG_FASTOPEN) that connects */
#define F_PEER_SOCKET 0x10 /* dst read from the kernel socket (skc_daddr/skc_dport): exact */
#define F_PEER_MISMATCH 0x20 /* the user buffer named another peer than the socket has (claim_*) */
#define F_ADDR_CHANGED 0x40 /* the sockaddr read at exit differs from the one read at enter (claim_*) */
#define F_DNS_SOCKET 0x80 /* the fd's socket is connected to port 53 (not remembered from connect) */
#define F_FIN_RECEIVED 0x200 /* close: the peer's FIN arrived (it counts 1 in bytes_received) */
#define F_RETRY 0x100	  /* internal: user memory unreadable at enter, parse again at exit */

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define MSG_FASTOPEN 0x20000000
#define EINPROGRESS 115
#define DNS_PORT 53
#define PAYLOAD_MAX 256 /* power of two: offsets into the payload are masked with it */
#define UIO_MAXIOV 1024	/* the kernel's cap on sendmmsg's vlen */
#define PEND_IDX_MAX 1024 /* pending records per syscall (sendmmsg messages) */

/* 512 bytes; little-endian. Records without payload are sent as NET_REC_SMALL bytes.
 * decode_net.py mirrors the offsets. */
struct net_rec {
	struct rec_hdr h;    /* 0 */
	__s64 ret;	     /* 64: result of the syscall */
	__u64 bytes;	     /* 72: bytes sent (send) */
	__s32 fd;	     /* 80 */
	__u16 family;	     /* 84: AF_* */
	__u16 sock_type;     /* 86: SOCK_*; 0 when unknown */
	__u16 sock_proto;    /* 88: sk_protocol (IPPROTO_*) */
	__u16 syscall;	     /* 90: enum net_syscall */
	__u16 dst_port;	     /* 92: host order */
	__u16 src_port;	     /* 94: host order */
	__u8 dst_addr[16];   /* 96: v4 in the first 4 bytes */
	__u8 src_addr[16];   /* 112 */
	__u16 path_len;	     /* 128: bytes of sun_path used */
	__u16 payload_len;   /* 130: bytes of payload captured */
	__u16 flags;	     /* 132 */
	__u16 _pad0;	     /* 134 */
	__u32 payload_total; /* 136: length of the buffer the payload came from */
	__u32 _pad1;	     /* 140 */
	union {
		char path[112]; /* 144: AF_UNIX: sun_path bytes (abstract names start with NUL) */
		struct {	/* 144: inet connect/send: what user memory said, when it differs */
			__u8 claim_addr[16];
			__u16 claim_port;
			__u16 claim_family;
		};
		struct {	/* 144: K_NET_ESTABLISHED / K_NET_CLOSE */
			__u64 bytes_received; /* tcp_sock.bytes_received */
			__u64 bytes_acked;    /* tcp_sock.bytes_acked */
			__u64 start_ns;	      /* SYN_SENT (connect) or accept */
			__u64 established_ns; /* 0: never established */
			__s32 sk_err;	      /* sk->sk_err at the change (ECONNREFUSED, ECONNRESET, ...) */
			__u16 old_state;      /* TCP state before the change */
			__u16 new_state;
			__u32 segs_out;
			__u32 retrans;	      /* tcp_sock.total_retrans */
		};
	};
	__u8 payload[PAYLOAD_MAX]; /* 256 */
};
#define NET_REC_SMALL 256
#define NET_REC_FULL 512

struct pend {
	__u64 file;   /* struct file * of the fd at enter (connect: remembered for DNS) */
	__u64 uptr;   /* connect/bind/sendto: user sockaddr; sendmsg: msghdr; sendmmsg: its mmsghdr */
	__u32 ulen;   /* connect/bind/sendto: sockaddr length; sendmmsg: index of the message */
	__s32 uflags; /* send flags (F_RETRY re-parse) */
	__u64 ubuf;   /* sendto/write: the buffer (F_RETRY re-parse) */
	__u64 ubuf_len;
	struct net_rec rec;
	__u8 slack[PAYLOAD_MAX]; /* room for net_iov_payload's bounded writes; never sent */
};

/* The in-flight syscall of a task lives in its own task storage: one slot per thread (a
 * thread is inside one syscall at a time; sys_exit runs even when a fatal signal ends the
 * syscall), created on the first tracked network syscall, freed with the task. Nothing
 * shared by every run can evict it: thousands of threads of one agent entering syscalls
 * cannot push out another thread's pending connect. A slot that cannot be created (memory)
 * is counted as a drop of the record's kind. */
struct task_net {
	struct pend p; /* p.rec.syscall == 0: no syscall in flight */
	__u32 mmsg_n;  /* sendmmsg: records stashed in net_mmsg for this call */
	__u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_net);
} net_task SEC(".maps");

/* sendmmsg records (up to 1024 per call), keyed tid << 16 | index. A plain hash, never an
 * LRU: an entry leaves only when its exit consumes it; a full table fails the insert at
 * enter, which is counted as a drop. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pend);
} net_mmsg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pend);
} net_scratch SEC(".maps");

/* dns_fds / dns_hint: bpf/dnsfds.h (shared with exec.bpf.c, which forgets fds at close) */

/* (process, destination) pairs already reported for non-DNS datagrams. */
struct dedup_key {
	__u32 tgid;
	__u16 family;
	__u16 port;
	__u8 addr[16];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dedup_key);
	__type(value, __u8);
} send_seen SEC(".maps");

static __always_inline __u64 pend_key(__u32 idx)
{
	return ((__u64)(__u32)bpf_get_current_pid_tgid() << 16) | (idx & 0xffff);
}

static __always_inline struct pend *scratch(void)
{
	__u32 z = 0;
	struct pend *p = bpf_map_lookup_elem(&net_scratch, &z);
	/* zeroed so no byte of an earlier record (another run's query) can leak; slack is
	 * never sent */
	if (p)
		__builtin_memset(p, 0, offsetof(struct pend, slack));
	return p;
}

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **arr;
	struct file *f = NULL;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* The struct sock behind a socket file, or NULL when `f` is not a socket. */
static __always_inline struct sock *file_sock(struct file *f, __u16 *type)
{
	struct socket *so;

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	if (!so)
		return NULL;
	*type = BPF_CORE_READ(so, type);
	return BPF_CORE_READ(so, sk);
}

/* Fill family/type/protocol of the record from the fd's socket; returns the sock. */
static __always_inline struct sock *sock_info(struct pend *p, int fd)
{
	__u16 type = 0;
	struct file *f = fd_file(fd);
	struct sock *sk = file_sock(f, &type);

	p->file = (__u64)f;
	if (!sk)
		return NULL;
	p->rec.sock_type = type;
	p->rec.sock_proto = BPF_CORE_READ(sk, sk_protocol);
	if (!p->rec.family)
		p->rec.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return sk;
}

/* Parse a user sockaddr into dst (or src) fields of the record. Returns 0 when read. */
static __always_inline int read_sockaddr(struct net_rec *r, const void *uaddr, __u32 len, int local)
{
	__u16 fam = 0;
	__u8 *addr = local ? r->src_addr : r->dst_addr;
	__u16 *port = local ? &r->src_port : &r->dst_port;
	__be16 be_port = 0;

	if (!uaddr || len < sizeof(fam) || bpf_probe_read_user(&fam, sizeof(fam), uaddr))
		return -1;
	r->family = fam;
	/* read only the bytes used (8 of sockaddr_in, 24 of sockaddr_in6: the kernel accepts
	 * one without sin6_scope_id): an address placed at the very end of a mapped page
	 * must not make the read fail */
	if (fam == AF_INET) {
		struct sockaddr_in sin = {};
		if (bpf_probe_read_user(&sin, offsetof(struct sockaddr_in, __pad), uaddr))
			return -1;
		be_port = sin.sin_port;
		__builtin_memcpy(addr, &sin.sin_addr.s_addr, 4);
	} else if (fam == AF_INET6) {
		struct sockaddr_in6 sin6 = {};
		if (bpf_probe_read_user(&sin6, offsetof(struct sockaddr_in6, sin6_scope_id), uaddr))
			return -1;
		be_port = sin6.sin6_port;
		__builtin_memcpy(addr, &sin6.sin6_addr, 16);
	} else if (fam == AF_UNIX) {
		/* 64-bit on purpose: a 32-bit length is zero-extended into a copy and the
		 * verifier would check the copy, not the register passed to the helper */
		__u64 n = (__u64)len - sizeof(fam);
		if (len <= sizeof(fam))
			return 0; /* unnamed */
		if (n > sizeof(((struct sockaddr_un *)0)->sun_path))
			n = sizeof(((struct sockaddr_un *)0)->sun_path);
		barrier_var(n);
		if (n > sizeof(r->path))
			return -1;
		if (bpf_probe_read_user(r->path, n, uaddr + sizeof(fam)))
			return -1;
		r->path_len = n;
		return 0;
	} else {
		return 0;
	}
	*port = bpf_ntohs(be_port);
	return 0;
}

/* Local (src) and peer (dst) address of a connected or bound socket. */
static __always_inline void sock_addrs(struct net_rec *r, struct sock *sk, int peer)
{
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);

	r->family = fam;
	r->src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (fam == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(r->src_addr, &a, 4);
		if (peer) {
			a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
			__builtin_memcpy(r->dst_addr, &a, 4);
		}
	} else if (fam == AF_INET6) {
		BPF_CORE_READ_INTO(&r->src_addr, sk, __sk_common.skc_v6_rcv_saddr);
		if (peer)
			BPF_CORE_READ_INTO(&r->dst_addr, sk, __sk_common.skc_v6_daddr);
	} else if (fam == AF_UNIX) {
		/* the bound name of this end (listeners: their path) */
		struct unix_sock *u = (struct unix_sock *)sk;
		struct unix_address *ua = BPF_CORE_READ(u, addr);
		if (ua) {
			int len = BPF_CORE_READ(ua, len);
			__u64 n = len > 2 ? (__u64)len - 2 : 0;
			if (n > 108)
				n = 108;
			barrier_var(n);
			if (n && n <= sizeof(r->path) &&
			    !bpf_probe_read_kernel(r->path, n,
						    (void *)ua + bpf_core_field_offset(struct unix_address, name) + 2))
				r->path_len = n;
		}
		return;
	}
	if (peer)
		r->dst_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
}

static __always_inline struct task_net *task_slot(int create)
{
	return bpf_task_storage_get(&net_task, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* Keep the record built in scratch until the exit: sendmmsg records in net_mmsg, every other
 * syscall's in the task's own slot. A failure is a counted drop. */
static __always_inline int stash(struct pend *p, __u32 idx, __u32 kind)
{
	struct task_net *t;
	__u64 key;

	if (p->rec.syscall == SC_SENDMMSG) {
		key = pend_key(idx);
		if (bpf_map_update_elem(&net_mmsg, &key, p, BPF_ANY)) {
			count_kind(&drops, kind);
			return -1;
		}
		return 0;
	}
	t = task_slot(1);
	if (!t) {
		count_kind(&drops, kind);
		return -1;
	}
	__builtin_memcpy(&t->p, p, offsetof(struct pend, slack));
	return 0;
}

/* Copy the first bytes of a send buffer (a DNS query) into the record. */
static __always_inline void read_payload(struct net_rec *r, const void *ubuf, __u64 len)
{
	__u64 n = len > PAYLOAD_MAX ? PAYLOAD_MAX : len;

	r->payload_total = len > 0xffffffff ? 0xffffffff : len;
	barrier_var(n);
	if (n > PAYLOAD_MAX)
		return;
	if (!n)
		return;
	if (bpf_probe_read_user(r->payload, n, ubuf))
		r->flags |= F_PAYLOAD_FAULT;
	else
		r->payload_len = n;
}

/* The first bytes of a message split over iovecs: every iovec the kernel accepts (up to
 * UIO_MAXIOV) is walked with bpf_loop, so a query placed after any number of empty or short
 * iovecs is still copied. Each piece lands at payload + off with off < 256 and length <= 256,
 * so the write may run into pend.slack but never past the map value. */
struct iov_ctx {
	struct pend *p;
	const struct iovec *uiov;
	__u64 off;
	__u64 total;
};

static long iov_cb(__u32 i, struct iov_ctx *c)
{
	struct net_rec *r = &c->p->rec;
	struct iovec iov = {};
	__u64 n, o = c->off;

	if (bpf_probe_read_user(&iov, sizeof(iov), &c->uiov[i])) {
		r->flags |= F_PAYLOAD_FAULT;
		return 1;
	}
	c->total += iov.iov_len;
	if (o >= PAYLOAD_MAX || !iov.iov_len)
		return 0; /* full (only the total still counts), or an empty piece */
	n = iov.iov_len < PAYLOAD_MAX - o ? iov.iov_len : PAYLOAD_MAX - o;
	barrier_var(o);
	o &= PAYLOAD_MAX - 1;
	barrier_var(n);
	if (n > PAYLOAD_MAX)
		return 1;
	if (bpf_probe_read_user(r->payload + o, n, iov.iov_base)) {
		r->flags |= F_PAYLOAD_FAULT;
		return 1;
	}
	c->off += n;
	return 0;
}

/* Global (verified once), so sendmsg, sendmmsg's per-message function and writev share it. */
__noinline int net_iov_payload(struct pend *p, __u64 uiov, __u64 iovlen)
{
	struct iov_ctx c = { .p = p, .uiov = (const struct iovec *)uiov };

	if (!p)
		return 0;
	bpf_loop(iovlen > UIO_MAXIOV ? UIO_MAXIOV : iovlen, iov_cb, &c, 0);
	p->rec.payload_len = c.off > PAYLOAD_MAX ? PAYLOAD_MAX : c.off;
	p->rec.payload_total = c.total > 0xffffffff ? 0xffffffff : c.total;
	return 0;
}

static __always_inline int is_inet(__u16 fam)
{
	return fam == AF_INET || fam == AF_INET6;
}

static __always_inline struct dns_dst *remembered(int fd)
{
	struct dns_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	return bpf_map_lookup_elem(&dns_fds, &k);
}

/* The pending record of this thread if it was stashed by syscall `sc`. */
static __always_inline struct pend *pending(__u32 sc)
{
	struct task_net *t = task_slot(0);

	if (!t || t->p.rec.syscall != sc)
		return NULL;
	return &t->p;
}

/* The exit consumed the slot. */
static __always_inline void done(struct pend *p)
{
	p->rec.syscall = 0;
}

/* sendmmsg record `idx` of this thread. */
static __always_inline struct pend *pending_mmsg(__u64 key)
{
	struct pend *p = bpf_map_lookup_elem(&net_mmsg, &key);

	if (p && p->rec.syscall != SC_SENDMMSG) {
		bpf_map_delete_elem(&net_mmsg, &key);
		return NULL;
	}
	return p;
}

/* ---------------------------------------------------------------- connect */

/* Enter of connect/bind (fd, sockaddr, addrlen): the scratch entry with the fd and the address
 * read; an unreadable address is flagged and read again at exit. NULL: untracked or no scratch.
 * local: the address is the socket's own (bind), not the peer. */
static __always_inline struct pend *enter_sockaddr(struct syscall_trace_enter *ctx, __u32 sc, int local)
{
	struct pend *p;

	if (!is_tracked())
		return NULL;
	p = scratch();
	if (!p)
		return NULL;
	p->rec.fd = (int)ctx->args[0];
	p->rec.syscall = sc;
	p->uptr = ctx->args[1];
	p->ulen = (__u32)ctx->args[2];
	if (read_sockaddr(&p->rec, (void *)p->uptr, p->ulen, local))
		p->rec.flags |= F_ADDR_FAULT;
	return p;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int net_enter_connect(struct syscall_trace_enter *ctx)
{
	struct pend *p = enter_sockaddr(ctx, SC_CONNECT, 0);

	if (!p)
		return 0;
	sock_info(p, p->rec.fd);
	stash(p, 0, K_NET_CONNECT);
	return 0;
}

static __always_inline void remember_dns(struct pend *p, long ret)
{
	struct net_rec *r = &p->rec;
	struct dns_key k = { .tgid = r->h.pid, .fd = r->fd };
	struct dns_dst d = {};

	/* UDP (glibc's resolver) and TCP (DNS over TCP, length-prefixed) */
	if ((ret != 0 && ret != -EINPROGRESS) || (r->sock_type != SOCK_DGRAM && r->sock_type != SOCK_STREAM) ||
	    !is_inet(r->family))
		return;
	if (r->dst_port != DNS_PORT) {
		/* re-connected elsewhere: forget it */
		if (!bpf_map_delete_elem(&dns_fds, &k))
			dns_hint_add(-1);
		return;
	}
	d.file = p->file;
	d.family = r->family;
	d.port = r->dst_port;
	__builtin_memcpy(d.addr, r->dst_addr, 16);
	if (!bpf_map_update_elem(&dns_fds, &k, &d, BPF_NOEXIST))
		dns_hint_add(1);
	else
		bpf_map_update_elem(&dns_fds, &k, &d, BPF_EXIST);
}

static __always_inline void emit(struct pend *p, __u32 kind, long ret, int full)
{
	fill_hdr(&p->rec.h, kind, full ? NET_REC_FULL : NET_REC_SMALL);
	p->rec.ret = ret;
	output_rec(&p->rec, full ? NET_REC_FULL : NET_REC_SMALL, kind, 0);
}

/* Keep what user memory said as the claim, then take the peer from the socket itself: the
 * address the kernel connected to, whatever another thread wrote into the buffer before or
 * after the kernel's copy. User space compares the two (decode_net: peer_mismatch). Returns
 * 1 when the socket had a peer. */
static __always_inline int peer_from_sock(struct net_rec *r, struct sock *sk, int claim)
{
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));

	if (!is_inet(fam) || !port)
		return 0;
	if (claim && !(r->flags & F_ADDR_FAULT) && is_inet(r->family)) {
		__builtin_memcpy(r->claim_addr, r->dst_addr, 16);
		r->claim_port = r->dst_port;
		r->claim_family = r->family;
	}
	__builtin_memset(r->dst_addr, 0, sizeof(r->dst_addr));
	r->family = fam;
	r->dst_port = port;
	if (fam == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(r->dst_addr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&r->dst_addr, sk, __sk_common.skc_v6_daddr);
	}
	r->flags = (r->flags & ~F_ADDR_FAULT) | F_PEER_SOCKET;
	return 1;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int net_exit_connect(struct syscall_trace_exit *ctx)
{
	struct pend *p = pending(SC_CONNECT);
	long ret = ctx->ret;
	__u16 type = 0;
	struct sock *sk;

	if (!p)
		return 0; /* not stashed: untracked, or the failed stash was counted at enter */
	/* the kernel copied the sockaddr, so its page is resident now */
	if (p->rec.flags & F_ADDR_FAULT) {
		__u16 fam = p->rec.family;
		if (!read_sockaddr(&p->rec, (void *)p->uptr, p->ulen, 0))
			p->rec.flags &= ~F_ADDR_FAULT;
		else
			p->rec.family = fam;
	}
	/* this connect set the socket's peer (0, or a non-blocking connect under way); any other
	 * result leaves an older peer (EISCONN, EALREADY) or none (refused, timed out) */
	sk = file_sock((struct file *)p->file, &type);
	if (sk && (ret == 0 || ret == -EINPROGRESS))
		peer_from_sock(&p->rec, sk, 1);
	emit(p, K_NET_CONNECT, ret, 0);
	remember_dns(p, ret);
	done(p);
	return 0;
}

/* ------------------------------------------------------------------ sends */

/* Report non-DNS datagrams once per (process, destination). */
static __always_inline int seen_before(struct net_rec *r)
{
	struct dedup_key k = {};

	if (r->dst_port == DNS_PORT || (r->flags & F_FASTOPEN))
		return 0;
	k.tgid = bpf_get_current_pid_tgid() >> 32;
	k.family = r->family;
	k.port = r->dst_port;
	__builtin_memcpy(k.addr, r->dst_addr, 16);
	return bpf_map_lookup_elem(&send_seen, &k) != NULL;
}

/* Marked at enter, so the messages of one sendmmsg to the same new destination yield one
 * record too. */
static __always_inline void mark_seen(struct net_rec *r)
{
	struct dedup_key k = {};
	__u8 one = 1;

	if (r->dst_port == DNS_PORT || (r->flags & F_FASTOPEN))
		return;
	k.tgid = bpf_get_current_pid_tgid() >> 32;
	k.family = r->family;
	k.port = r->dst_port;
	__builtin_memcpy(k.addr, r->dst_addr, 16);
	bpf_map_update_elem(&send_seen, &k, &one, BPF_ANY);
}

/* Destination of a datagram: 1 report it; 0 not (not inet, TCP, already reported, no
 * remembered DNS server); -1 the sockaddr is unreadable now (F_ADDR_FAULT, retried at exit). */
static __always_inline int send_dst(struct pend *p, int fd, const void *uaddr, __u32 alen, int flags)
{
	struct net_rec *r = &p->rec;
	struct dns_dst *d;
	struct sock *sk;

	if (uaddr) {
		if (read_sockaddr(r, uaddr, alen, 0)) {
			r->flags |= F_ADDR_FAULT;
			return -1;
		}
		if (!is_inet(r->family))
			return 0;
		/* dedup before the socket lookup: repeated datagrams are the common case */
		if (!(flags & MSG_FASTOPEN) && seen_before(r))
			return 0;
		if (!sock_info(p, fd))
			return 0;
		if (p->rec.sock_type == SOCK_STREAM) {
			/* the address only matters for TCP fast open, which is a connect */
			if (!(flags & MSG_FASTOPEN))
				return 0;
			r->flags |= F_FASTOPEN;
		}
		return 1;
	}
	/* no address: the destination is the socket's peer, read from the socket (a remembered
	 * connect is only a shortcut: an inherited, dup'ed or passed socket has no entry) */
	d = remembered(fd);
	sk = sock_info(p, fd);
	if (!sk || !is_inet(r->family))
		return 0;
	if (!peer_from_sock(r, sk, 0) || r->dst_port != DNS_PORT)
		return 0;
	r->flags |= F_DST_REMEMBERED;
	if (!d || p->file != d->file)
		r->flags |= F_DNS_SOCKET;
	return 1;
}

/* sendto/send/write: destination, then the query bytes for port 53. Same results as
 * send_dst; -1 also when the payload is unreadable (F_PAYLOAD_FAULT). */
static __always_inline int parse_sendto(struct pend *p, int fd, const void *uaddr, __u32 alen, int flags,
					const void *buf, __u64 len, __u32 sc)
{
	int rc;

	p->rec.fd = fd;
	p->rec.syscall = sc;
	rc = send_dst(p, fd, uaddr, alen, flags);
	if (rc <= 0)
		return rc;
	if (p->rec.dst_port == DNS_PORT) {
		read_payload(&p->rec, buf, len);
		if (p->rec.flags & F_PAYLOAD_FAULT)
			return -1;
	}
	return 1;
}

/* One message header of sendmsg/sendmmsg; same results as parse_sendto. */
static __always_inline int parse_msg(struct pend *p, int fd, const struct user_msghdr *umsg, int flags, __u32 sc)
{
	struct user_msghdr m = {};
	int rc;

	p->rec.fd = fd;
	p->rec.syscall = sc;
	if (bpf_probe_read_user(&m, sizeof(m), umsg)) {
		p->rec.flags |= F_ADDR_FAULT;
		return -1;
	}
	if (!m.msg_name && !dns_fd_hint())
		return 0;
	rc = send_dst(p, fd, m.msg_name, m.msg_namelen, flags);
	if (rc <= 0)
		return rc;
	if (p->rec.dst_port == DNS_PORT) {
		net_iov_payload(p, (__u64)m.msg_iov, m.msg_iovlen);
		if (p->rec.flags & F_PAYLOAD_FAULT)
			return -1;
	}
	return 1;
}

/* writev/pwritev2 on a socket connected to port 53: the payload is the iovec array. */
static __always_inline int parse_writev(struct pend *p, int fd, __u64 uiov, __u64 cnt, __u32 sc)
{
	int rc;

	p->rec.fd = fd;
	p->rec.syscall = sc;
	rc = send_dst(p, fd, NULL, 0, 0);
	if (rc <= 0)
		return rc;
	net_iov_payload(p, uiov, cnt);
	return (p->rec.flags & F_PAYLOAD_FAULT) ? -1 : 1;
}

/* Stash the result of a parse. A parse that hit unreadable user memory (a page not faulted
 * in yet: an agent can arrange that on purpose) is stashed with F_RETRY and parsed again at
 * exit, when the kernel has copied that memory. Returns 1 when stashed. */
static __always_inline int stash_send(struct pend *p, int rc, __u32 idx)
{
	if (rc == 0)
		return 0;
	if (rc < 0)
		p->rec.flags |= F_RETRY;
	if (stash(p, idx, K_NET_SEND))
		return 0;
	if (rc > 0)
		mark_seen(&p->rec);
	return 1;
}

/* The exit half of F_RETRY: parse the stashed arguments again into the scratch slot.
 * Returns 1 when the scratch slot holds a record to emit. Global (verified once). */
__noinline int net_send_retry(struct pend *p)
{
	struct pend *s;
	int rc;

	if (!p)
		return 0;
	s = scratch();
	if (!s)
		return 0;
	s->uptr = p->uptr;
	s->ulen = p->ulen;
	if (p->rec.syscall == SC_SENDMSG || p->rec.syscall == SC_SENDMMSG)
		rc = parse_msg(s, p->rec.fd, (const struct user_msghdr *)p->uptr, p->uflags, p->rec.syscall);
	else if (p->rec.syscall == SC_WRITEV || p->rec.syscall == SC_PWRITEV2)
		rc = parse_writev(s, p->rec.fd, p->ubuf, p->ubuf_len, p->rec.syscall);
	else
		rc = parse_sendto(s, p->rec.fd, (const void *)p->uptr, p->ulen, p->uflags, (const void *)p->ubuf,
				  p->ubuf_len, p->rec.syscall);
	if (rc == 0)
		return 0;
	/* still unreadable: a datagram to an unknown destination is still worth a record */
	if (rc < 0 && (s->rec.flags & F_ADDR_FAULT) &&
	    (!sock_info(s, p->rec.fd) || s->rec.sock_type == SOCK_STREAM || !is_inet(s->rec.family)))
		return 0;
	if (rc > 0)
		mark_seen(&s->rec);
	return 1;
}

static __always_inline struct pend *scratch_raw(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&net_scratch, &z);
}

static __always_inline void emit_send(struct pend *p, long ret, __u64 bytes)
{
	__u32 kind = (p->rec.flags & F_FASTOPEN) ? K_NET_CONNECT : K_NET_SEND;

	p->rec.bytes = bytes;
	emit(p, kind, ret, p->rec.payload_len != 0);
}

/* The record to emit for a stashed send: itself, or its re-parse (F_RETRY), or NULL. */
static __always_inline struct pend *send_final(struct pend *p)
{
	if (!(p->rec.flags & F_RETRY))
		return p;
	return net_send_retry(p) ? scratch_raw() : NULL;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int net_enter_sendto(struct syscall_trace_enter *ctx)
{
	const void *uaddr = (const void *)ctx->args[4];
	struct pend *p;

	if (!uaddr && !dns_fd_hint())
		return 0;
	if (!is_tracked())
		return 0;
	p = scratch();
	if (!p)
		return 0;
	p->uptr = (__u64)uaddr;
	p->ulen = (__u32)ctx->args[5];
	p->ubuf = ctx->args[1];
	p->ubuf_len = ctx->args[2];
	p->uflags = (int)ctx->args[3];
	stash_send(p,
		   parse_sendto(p, (int)ctx->args[0], uaddr, p->ulen, p->uflags, (const void *)p->ubuf,
				p->ubuf_len, SC_SENDTO),
		   0);
	return 0;
}

/* A datagram's sockaddr read again at exit: the kernel copied it somewhere in between, so a
 * value that differs from the one read at enter means another thread rewrote it while the
 * syscall ran (which one the kernel sent to cannot be known): F_ADDR_CHANGED, the exit value
 * kept as the claim. Global (verified once). */
__noinline int net_addr_recheck(struct pend *p)
{
	struct user_msghdr m = {};
	const void *ua;
	struct pend *s;
	__u32 alen;
	__u64 *x, *y;

	if (!p || !p->uptr || (p->rec.flags & (F_PEER_SOCKET | F_ADDR_FAULT)) || !is_inet(p->rec.family))
		return 0;
	if (p->rec.syscall == SC_SENDMSG || p->rec.syscall == SC_SENDMMSG) {
		if (bpf_probe_read_user(&m, sizeof(m), (void *)p->uptr))
			return 0;
		ua = m.msg_name;
		alen = m.msg_namelen;
	} else {
		ua = (const void *)p->uptr;
		alen = p->ulen;
	}
	s = scratch();
	if (!s || !ua || read_sockaddr(&s->rec, ua, alen, 0))
		return 0;
	x = (__u64 *)s->rec.dst_addr;
	y = (__u64 *)p->rec.dst_addr;
	if (s->rec.family == p->rec.family && s->rec.dst_port == p->rec.dst_port && x[0] == y[0] && x[1] == y[1])
		return 0;
	__builtin_memcpy(p->rec.claim_addr, s->rec.dst_addr, 16);
	p->rec.claim_port = s->rec.dst_port;
	p->rec.claim_family = s->rec.family;
	p->rec.flags |= F_ADDR_CHANGED;
	return 1;
}

static __always_inline int exit_simple_send(long ret, __u32 sc)
{
	struct pend *p = pending(sc);
	struct pend *e;

	if (!p)
		return 0;
	e = send_final(p);
	if (e == p)
		net_addr_recheck(p);
	if (e)
		emit_send(e, ret, ret > 0 ? ret : 0);
	done(p);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int net_exit_sendto(struct syscall_trace_exit *ctx)
{
	return exit_simple_send(ctx->ret, SC_SENDTO);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int net_enter_sendmsg(struct syscall_trace_enter *ctx)
{
	struct pend *p;

	if (!is_tracked())
		return 0;
	p = scratch();
	if (!p)
		return 0;
	p->uptr = ctx->args[1];
	p->uflags = (int)ctx->args[2];
	stash_send(p, parse_msg(p, (int)ctx->args[0], (const struct user_msghdr *)p->uptr, p->uflags, SC_SENDMSG),
		   0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int net_exit_sendmsg(struct syscall_trace_exit *ctx)
{
	return exit_simple_send(ctx->ret, SC_SENDMSG);
}

/* sendmmsg: every message (the kernel caps vlen at UIO_MAXIOV) is inspected with
 * bpf_loop, so a destination hidden at message 500 is not missed. Messages that yield a
 * record are stashed in net_mmsg under consecutive indices 0..n-1; n is kept in the task's
 * slot (task_net.mmsg_n), so the exit reads exactly those and counts any missing one. */
struct mmsg_ctx {
	struct mmsghdr *um;
	long ret;
	int fd;
	int flags;
	__u32 n;    /* exit: records stashed at enter */
	__u32 *cnt; /* enter: records stashed so far, in the task's slot */
};

/* A global (not inlined) function is verified once on its own: inlined into the bpf_loop
 * callback, the message parsing made the verifier give up ("sequence of jumps too complex"). */
__noinline int net_mmsg_one(__u64 um, __u64 fd_flags, __u32 idx, __u32 msg_i)
{
	struct mmsghdr *m = (struct mmsghdr *)um + msg_i;
	struct pend *p = scratch();

	if (!p)
		return 0;
	p->uptr = (__u64)m;
	p->ulen = msg_i;
	p->uflags = (int)(fd_flags >> 32);
	return stash_send(p, parse_msg(p, (int)fd_flags, &m->msg_hdr, p->uflags, SC_SENDMMSG), idx);
}

static long mmsg_enter_cb(__u32 i, struct mmsg_ctx *c)
{
	/* the counter lives in a map value, not on the stack: a stack counter is tracked
	 * exactly by the verifier, so every iteration was a new state and it never converged */
	__u32 idx = *c->cnt;

	if (net_mmsg_one((__u64)c->um, (__u32)c->fd | ((__u64)(__u32)c->flags << 32), idx, i))
		*c->cnt = idx + 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int net_enter_sendmmsg(struct syscall_trace_enter *ctx)
{
	struct mmsg_ctx c = {};
	__u32 vlen = (__u32)ctx->args[2];
	struct task_net *t;

	if (!is_tracked())
		return 0;
	t = task_slot(1);
	if (!t) {
		count_kind(&drops, K_NET_SEND);
		return 0;
	}
	t->mmsg_n = 0;
	c.cnt = &t->mmsg_n;
	c.um = (struct mmsghdr *)ctx->args[1];
	c.fd = (int)ctx->args[0];
	c.flags = (int)ctx->args[3];
	bpf_loop(vlen > UIO_MAXIOV ? UIO_MAXIOV : vlen, mmsg_enter_cb, &c, 0);
	return 0;
}

static long mmsg_exit_cb(__u32 j, struct mmsg_ctx *c)
{
	__u64 key = pend_key(j);
	struct pend *p = pending_mmsg(key);
	struct pend *e;
	__u32 sent = 0;

	if (!p) {
		count_kind(&drops, K_NET_SEND);
		return 0;
	}
	e = send_final(p);
	if (e == p)
		net_addr_recheck(p);
	if (e) {
		/* msg_len of each transmitted message is written back by the kernel */
		if ((long)e->ulen < c->ret)
			bpf_probe_read_user(&sent, sizeof(sent), &((struct mmsghdr *)e->uptr)->msg_len);
		emit_send(e, c->ret, sent);
	}
	bpf_map_delete_elem(&net_mmsg, &key);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int net_exit_sendmmsg(struct syscall_trace_exit *ctx)
{
	struct mmsg_ctx c = {};
	struct task_net *t = task_slot(0);

	if (!t || !t->mmsg_n)
		return 0;
	c.n = t->mmsg_n;
	t->mmsg_n = 0;
	c.ret = ctx->ret;
	bpf_loop(c.n < PEND_IDX_MAX ? c.n : PEND_IDX_MAX, mmsg_exit_cb, &c, 0);
	return 0;
}

/* write()/writev()/pwritev2() on a socket connected to port 53 (rare; gated by dns_fd_hint:
 * every other process on the host leaves after one load). */

/* The enter side: the scratch slot with the user buffer (args[1], args[2]) noted, or NULL when the
 * call cannot be a tracked process's DNS write. */
static __always_inline struct pend *enter_dns_write(struct syscall_trace_enter *ctx)
{
	struct pend *p;

	if (!dns_fd_hint() || !is_tracked())
		return NULL;
	p = scratch();
	if (!p)
		return NULL;
	p->ubuf = ctx->args[1];
	p->ubuf_len = ctx->args[2];
	return p;
}

/* The exit side, behind the same one-load gate as the enter side. */
static __always_inline int exit_dns_write(struct syscall_trace_exit *ctx, __u32 sc)
{
	if (!dns_fd_hint())
		return 0;
	return exit_simple_send(ctx->ret, sc);
}

SEC("tracepoint/syscalls/sys_enter_write")
int net_enter_write(struct syscall_trace_enter *ctx)
{
	struct pend *p = enter_dns_write(ctx);

	if (!p)
		return 0;
	stash_send(p, parse_sendto(p, (int)ctx->args[0], NULL, 0, 0, (const void *)p->ubuf, p->ubuf_len, SC_WRITE), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int net_exit_write(struct syscall_trace_exit *ctx)
{
	return exit_dns_write(ctx, SC_WRITE);
}

static __always_inline int enter_writev(struct syscall_trace_enter *ctx, __u32 sc)
{
	struct pend *p = enter_dns_write(ctx);

	if (!p)
		return 0;
	stash_send(p, parse_writev(p, (int)ctx->args[0], p->ubuf, p->ubuf_len, sc), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int net_enter_writev(struct syscall_trace_enter *ctx)
{
	return enter_writev(ctx, SC_WRITEV);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int net_exit_writev(struct syscall_trace_exit *ctx)
{
	return exit_dns_write(ctx, SC_WRITEV);
}

/* pwritev2(fd, iov, n, -1, ...) on a socket is a writev */
SEC("tracepoint/syscalls/sys_enter_pwritev2")
int net_enter_pwritev2(struct syscall_trace_enter *ctx)
{
	return enter_writev(ctx, SC_PWRITEV2);
}

SEC("tracepoint/syscalls/sys_exit_pwritev2")
int net_exit_pwritev2(struct syscall_trace_exit *ctx)
{
	return exit_dns_write(ctx, SC_PWRITEV2);
}

/* Not attached on x86 when the exec object is loaded: its raw sys_enter program does the
 * same for ~1 ns instead of ~180 ns per close() (bpf/dnsfds.h; logira/probes/attach.py). */
SEC("tracepoint/syscalls/sys_enter_close")
int net_enter_close(struct syscall_trace_enter *ctx)
{
	dns_forget((__s32)ctx->args[0]);
	return 0;
}

/* ------------------------------------------------------ bind/listen/accept */

SEC("tracepoint/syscalls/sys_enter_bind")
int net_enter_bind(struct syscall_trace_enter *ctx)
{
	struct pend *p = enter_sockaddr(ctx, SC_BIND, 1);

	if (!p)
		return 0;
	/* netlink and friends are not network activity */
	if (!is_inet(p->rec.family) && p->rec.family != AF_UNIX && !(p->rec.flags & F_ADDR_FAULT))
		return 0;
	sock_info(p, p->rec.fd);
	stash(p, 0, K_NET_BIND);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bind")
int net_exit_bind(struct syscall_trace_exit *ctx)
{
	struct pend *p = pending(SC_BIND);
	struct sock *sk;
	__u16 type = 0;

	if (!p)
		return 0;
	sk = file_sock((struct file *)p->file, &type);
	/* unreadable at enter (page not faulted in): the kernel has copied it by now */
	if (p->rec.flags & F_ADDR_FAULT) {
		__u16 fam = p->rec.family;
		if (!read_sockaddr(&p->rec, (void *)p->uptr, p->ulen, 1)) {
			p->rec.flags &= ~F_ADDR_FAULT;
		} else {
			p->rec.family = fam;
			if (sk && ctx->ret == 0) {
				sock_addrs(&p->rec, sk, 0);
				p->rec.flags &= ~F_ADDR_FAULT;
			}
		}
	}
	/* bind to port 0: report the port the kernel picked */
	if (ctx->ret == 0 && !p->rec.src_port && is_inet(p->rec.family) && sk)
		p->rec.src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (is_inet(p->rec.family) || p->rec.family == AF_UNIX || (p->rec.flags & F_ADDR_FAULT))
		emit(p, K_NET_BIND, ctx->ret, 0);
	done(p);
	return 0;
}

static __always_inline int enter_fd_only(int fd, __u32 sc, __u32 kind)
{
	struct pend *p;

	if (!is_tracked())
		return 0;
	p = scratch();
	if (!p)
		return 0;
	p->rec.fd = fd;
	p->rec.syscall = sc;
	stash(p, 0, kind);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_listen")
int net_enter_listen(struct syscall_trace_enter *ctx)
{
	return enter_fd_only((int)ctx->args[0], SC_LISTEN, K_NET_LISTEN);
}

SEC("tracepoint/syscalls/sys_exit_listen")
int net_exit_listen(struct syscall_trace_exit *ctx)
{
	struct pend *p = pending(SC_LISTEN);
	struct sock *sk;

	if (!p)
		return 0;
	sk = sock_info(p, p->rec.fd);
	if (sk)
		sock_addrs(&p->rec, sk, 0);
	emit(p, K_NET_LISTEN, ctx->ret, 0);
	done(p);
	return 0;
}

/* ------------------------------------------- connection outcome and volume */

/* TCP connections of tracked tasks, keyed by struct sock *: who opened it (the header of
 * the connecting or accepting task: state changes run in softirq or timer context, where the
 * current task is anyone) and when. Inserted at SYN_SENT (inside connect, the task's own
 * context) or at accept; removed at TCP_CLOSE, which every such socket reaches. A plain hash:
 * nothing evicts an entry; an insert that fails (table full) is a counted drop of net_close. */
struct conn {
	struct rec_hdr h;
	__u64 start_ns;
	__u64 established_ns;
	__s32 fd;
	__u16 syscall;
	__u16 family; /* 0 until the ends below are known (established or accepted) */
	__u16 dst_port;
	__u16 src_port;
	__u32 _pad;
	__u8 dst_addr[16];
	__u8 src_addr[16];
};
/* Preallocated (16384 x 136 B ~ 2.2 MiB): a BPF_F_NO_PREALLOC hash allocates on insert and
 * frees on delete through bpf_mem_alloc, whose refills run as irq_work and showed up as ~4 us
 * more in every other net program of tracked processes (bench/bench_net_progs.py). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn);
} conns SEC(".maps");

/* Both ends, kept once known: on the way to CLOSE the kernel releases the local port
 * (inet_put_port zeroes it) before the state change that reports the volume. */
static __always_inline void conn_ends(struct conn *c, struct sock *sk)
{
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);

	c->family = fam;
	c->src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->dst_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (fam == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(c->src_addr, &a, 4);
		a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(c->dst_addr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&c->src_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&c->dst_addr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline void conn_track(struct sock *sk, __u32 sc, int fd, __u64 established)
{
	struct conn c = {};
	__u64 key = (__u64)sk;

	fill_hdr(&c.h, K_NET_CLOSE, NET_REC_SMALL);
	c.start_ns = c.h.ts_ns;
	c.established_ns = established ? c.h.ts_ns : 0;
	c.syscall = sc;
	c.fd = fd;
	if (established)
		conn_ends(&c, sk);
	if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY))
		count_kind(&drops, K_NET_CLOSE);
}

/* Its own per-CPU scratch: a state change runs in softirq, which can interrupt a syscall
 * program of this CPU in the middle of building its record in net_scratch (tp_btf programs are
 * not kept from nesting inside tracepoint programs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct net_rec);
} conn_scratch SEC(".maps");

/* Both ends and the counters of a tracked connection into a record in conn_scratch. */
static __always_inline void conn_emit(struct conn *c, struct sock *sk, __u32 kind, int old, int new)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct net_rec *r;
	__u64 sent_again;
	__u32 z = 0;

	r = bpf_map_lookup_elem(&conn_scratch, &z);
	if (!r) {
		count_kind(&drops, kind);
		return;
	}
	__builtin_memset(r, 0, NET_REC_SMALL);
	__builtin_memcpy(&r->h, &c->h, sizeof(r->h));
	r->h.ts_ns = bpf_ktime_get_ns();
	r->h.kind = kind;
	r->h.size = NET_REC_SMALL;
	r->fd = c->fd;
	r->syscall = c->syscall;
	r->sock_type = SOCK_STREAM;
	r->sock_proto = BPF_CORE_READ(sk, sk_protocol);
	if (c->family) {
		r->family = c->family;
		r->dst_port = c->dst_port;
		r->src_port = c->src_port;
		__builtin_memcpy(r->dst_addr, c->dst_addr, 16);
		__builtin_memcpy(r->src_addr, c->src_addr, 16);
	} else {
		sock_addrs(r, sk, 1);
	}
	/* data bytes transmitted once: retransmissions are not more data leaving */
	r->bytes = BPF_CORE_READ(tp, bytes_sent);
	sent_again = BPF_CORE_READ(tp, bytes_retrans);
	r->bytes = r->bytes > sent_again ? r->bytes - sent_again : 0;
	r->bytes_received = BPF_CORE_READ(tp, bytes_received);
	r->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	r->segs_out = BPF_CORE_READ(tp, segs_out);
	r->retrans = BPF_CORE_READ(tp, total_retrans);
	r->sk_err = BPF_CORE_READ(sk, sk_err);
	if (BPF_CORE_READ(sk, __sk_common.skc_flags) & (1UL << SOCK_DONE))
		r->flags |= F_FIN_RECEIVED; /* set by tcp_fin() only */
	r->start_ns = c->start_ns;
	r->established_ns = c->established_ns;
	r->old_state = old;
	r->new_state = new;
	r->ret = -(long)r->sk_err;
	output_rec(r, NET_REC_SMALL, kind, 0);
}

/* Every TCP state change on the host: a tracked connect reaching SYN_SENT starts a record;
 * the handshake's end and TCP_CLOSE of a tracked socket are reported. Untracked sockets cost
 * one hash lookup per state change (a handful per connection). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(net_sock_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk;
	struct conn *c;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_SYN_SENT) {
		/* inside connect() (or a fast-open send) of the task itself */
		if (is_tracked())
			conn_track((struct sock *)sk, SC_CONNECT, -1, 0);
		return 0;
	}
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT) {
		c->established_ns = bpf_ktime_get_ns();
		conn_ends(c, (struct sock *)sk);
		conn_emit(c, (struct sock *)sk, K_NET_ESTABLISHED, oldstate, newstate);
	} else if (newstate == TCP_CLOSE) {
		conn_emit(c, (struct sock *)sk, K_NET_CLOSE, oldstate, newstate);
		bpf_map_delete_elem(&conns, &key);
	}
	return 0;
}

/* accept needs no enter probe: the new fd's socket holds both ends. A thread blocked in
 * accept() for hours would otherwise hold a pending entry that LRU pressure could evict.
 * Only successes are recorded (EAGAIN polling, EINTR, EMFILE are not network activity). */
static __always_inline int exit_accept(long ret, __u32 sc)
{
	struct pend *p;
	struct sock *sk;

	if (ret < 0 || !is_tracked())
		return 0;
	p = scratch();
	if (!p)
		return 0;
	p->rec.fd = (int)ret;
	p->rec.syscall = sc;
	sk = sock_info(p, (int)ret);
	if (sk)
		sock_addrs(&p->rec, sk, 1);
	emit(p, K_NET_ACCEPT, ret, 0);
	/* an accepted TCP connection: its close reports the volume too */
	if (sk && p->rec.sock_type == SOCK_STREAM && is_inet(p->rec.family) &&
	    BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP)
		conn_track(sk, sc, (int)ret, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int net_exit_accept(struct syscall_trace_exit *ctx)
{
	return exit_accept(ctx->ret, SC_ACCEPT);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int net_exit_accept4(struct syscall_trace_exit *ctx)
{
	return exit_accept(ctx->ret, SC_ACCEPT4);
}
