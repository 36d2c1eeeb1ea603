/* SPDX-License-Identifier: GPL-2.0 */
/* The DNS fd table, shared by net.bpf.c (fills and reads it) and exec.bpf.c (forgets an
 * fd at close). Both maps are shared maps (the loader creates them once and every object
 * reuses the fds, like the ring), so the close cleanup can run in exec's raw sys_enter
 * program, which runs on every syscall anyway, instead of a sys_enter_close tracepoint
 * program: a syscall tracepoint program costs every close() of every process on the host
 * ~180 ns even when it returns at once, the extra compare in the raw program ~1 ns.
 *
 * UDP sockets connect()ed to port 53, so glibc's sendmmsg/send/write without an address
 * still yields the destination and the query. The file pointer guards against fd reuse
 * (dup2 over it, exit without close, pid reuse). */
#pragma once

#include "common.h"

struct dns_key {
	__u32 tgid;
	__s32 fd;
};
struct dns_dst {
	__u64 file;
	__u16 family;
	__u16 port;
	__u32 _pad;
	__u8 addr[16];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct dns_key);
	__type(value, struct dns_dst);
} dns_fds SEC(".maps");

/* [0]: non-zero while dns_fds may hold entries: lets write/close/addressless sends of
 * every process on the host leave after one load. Only ever too high (LRU evictions). An
 * array lookup is inlined by the verifier: no helper call. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dns_hint SEC(".maps");

static __always_inline __u64 *dns_hint_ptr(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&dns_hint, &zero);
}

static __always_inline __u64 dns_fd_hint(void)
{
	__u64 *h = dns_hint_ptr();
	return h ? *h : 0;
}

static __always_inline void dns_hint_add(__s64 n)
{
	__u64 *h = dns_hint_ptr();
	if (h)
		__sync_fetch_and_add(h, n);
}

/* close(fd) of the current process: forget fd if it was remembered. The hint only drops when
 * this was the file's last reference: a socket inherited by a child (fork), dup'ed or passed
 * over a unix socket lives on under another (tgid, fd), and the send probes must keep
 * looking at sockets (they read the peer from the socket itself). file_ref_t: 0 = one ref. */
static __always_inline void dns_forget(__s32 fd)
{
	struct dns_key k;
	struct dns_dst *d;
	__s64 refs = 0;

	if (!dns_fd_hint())
		return;
	k.tgid = bpf_get_current_pid_tgid() >> 32;
	k.fd = fd;
	d = bpf_map_lookup_elem(&dns_fds, &k);
	if (!d)
		return;
	bpf_probe_read_kernel(&refs, sizeof(refs), &((struct file *)d->file)->f_ref.refcnt);
	if (!bpf_map_delete_elem(&dns_fds, &k) && refs <= 0)
		dns_hint_add(-1);
}
