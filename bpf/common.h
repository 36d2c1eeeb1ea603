/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by every logira BPF object: the record header, the shared maps
 * (ring buffer, tracked run cgroups, drop counters), the in-kernel run filter
 * and the emit helper with batched wake-ups.
 *
 * Each object declares the shared maps with identical definitions; the loader
 * creates them once (first object) and makes the others reuse the same fds
 * (bpf_map__reuse_fd), so every object writes into ONE ring buffer and reads
 * ONE tracked-cgroup table. Records from all domains are therefore ordered.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Record kinds. Python mirrors these in logira/probes/layout.py. */
enum rec_kind {
	/* process domain (exec.bpf.c) */
	K_FORK = 1,
	K_EXEC = 2,
	K_EXEC_FAILED = 3,
	K_EXIT = 4,
	K_BLIND_IO_URING = 5,
	K_BLIND_COMPAT = 6,
	K_NS = 7,    /* unshare/clone/clone3 with CLONE_NEW*, setns */
	K_MOUNT = 8, /* mount, umount2, pivot_root, open_tree, move_mount, fsopen, fsmount, mount_setattr */
	/* file domain (file.bpf.c): 16..31 */
	K_FILE_FIRST = 16,
	K_FILE_LAST = 31,
	/* net domain (net.bpf.c): 32..47 */
	K_NET_FIRST = 32,
	K_NET_LAST = 47,
	K_MAX = 64,
};

/* 64 bytes, little-endian, every record starts with it. */
struct rec_hdr {
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id; /* v2 cgroup id of the task */
	__u32 pid;       /* tgid */
	__u32 tid;
	__u32 ppid;      /* real_parent->tgid */
	__u32 uid;
	__u32 gid;
	__u16 kind;      /* enum rec_kind */
	__u16 size;      /* total record size in bytes, header included */
	char comm[16];
	__u64 run_cgroup_id; /* ancestor at run_cgroup_level: the run this task belongs to */
};

/* Read-only config, set by the loader before load. */
const volatile __u32 run_cgroup_level = 2; /* level of run cgroups: <cg2 root>/logira/<run> */
const volatile __u64 wake_bytes = 256 * 1024; /* wake the reader once this much is pending */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* resized by the loader */
} events SEC(".maps");

/* cgroup id of a run cgroup -> 1. Descendants match through their ancestor at run_cgroup_level. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} tracked_cgroups SEC(".maps");

/* Per-CPU count of records lost because the ring was full, by kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, K_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Per-CPU count of records emitted, by kind (for exact loss accounting). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, K_MAX);
	__type(key, __u32);
	__type(value, __u64);
} emitted SEC(".maps");

static __always_inline int is_tracked(void)
{
	__u64 id = bpf_get_current_ancestor_cgroup_id(run_cgroup_level);
	if (!id)
		return 0;
	return bpf_map_lookup_elem(&tracked_cgroups, &id) != NULL;
}

static __always_inline void count_kind(void *map, __u32 kind)
{
	__u32 k = kind & (K_MAX - 1);
	__u64 *v = bpf_map_lookup_elem(map, &k);
	if (v)
		*v += 1;
}

static __always_inline void fill_hdr(struct rec_hdr *h, __u16 kind, __u16 size)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	h->ts_ns = bpf_ktime_get_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = task->real_parent->tgid; /* BTF pointers: plain loads, no helper calls */
	h->uid = (__u32)uid_gid;
	h->gid = uid_gid >> 32;
	h->kind = kind;
	h->size = size;
	h->run_cgroup_id = bpf_get_current_ancestor_cgroup_id(run_cgroup_level);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline __u64 wake_flags(int force)
{
	if (force)
		return BPF_RB_FORCE_WAKEUP;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes ? BPF_RB_FORCE_WAKEUP
									   : BPF_RB_NO_WAKEUP;
}

/* Reserve a fixed-size record; counts a drop on failure. */
static __always_inline void *reserve_rec(__u32 size, __u32 kind)
{
	void *p = bpf_ringbuf_reserve(&events, size, 0);
	if (!p)
		count_kind(&drops, kind);
	return p;
}

static __always_inline void submit_rec(void *p, __u32 kind, int force_wake)
{
	count_kind(&emitted, kind);
	bpf_ringbuf_submit(p, wake_flags(force_wake));
}

/* Copy a variable-size record (built in a per-CPU scratch buffer) into the ring. */
static __always_inline int output_rec(void *buf, __u64 size, __u32 kind, int force_wake)
{
	int err = bpf_ringbuf_output(&events, buf, size, wake_flags(force_wake));
	if (err)
		count_kind(&drops, kind);
	else
		count_kind(&emitted, kind);
	return err;
}
