/* SPDX-License-Identifier: GPL-2.0 */
/* Namespace and mount changes of tracked processes (part of exec.bpf.c).
 *
 * After `unshare -Urm` and a bind mount, every later path (even the path of an opened fd)
 * names the alias location: the namespace/mount change itself must be on record.
 * K_NS: unshare / clone / clone3 with CLONE_NEW* flags, setns.
 * K_MOUNT: mount, umount2, pivot_root, open_tree, open_tree_attr, move_mount, fsopen,
 * fsmount, mount_setattr.
 *
 * Enter programs (one per argument count, attached by the loader to the sys_enter_*
 * tracepoints with that many arguments, logira/probes/attach.py) dispatch by syscall
 * number and stash the arguments and strings in task storage; ONE exit program emits the
 * record with the result. clone/clone3 without CLONE_NEW* return before the cgroup lookup.
 * Strings are copied at enter (a racing thread cannot rewrite them afterwards) and again
 * at exit when the enter copy faulted. Every result is recorded, failures included.
 */
#pragma once

#define NR_CLONE 56
#define NR_PIVOT_ROOT 155
#define NR_MOUNT 165
#define NR_UMOUNT2 166
#define NR_UNSHARE 272
#define NR_SETNS 308
#define NR_OPEN_TREE 428
#define NR_MOVE_MOUNT 429
#define NR_FSOPEN 430
#define NR_FSMOUNT 432
#define NR_CLONE3 435
#define NR_MOUNT_SETATTR 442
#define NR_OPEN_TREE_ATTR 467

#define CLONE_NEW_MASK                                                                         \
	(0x00000080ULL /* NEWTIME */ | 0x00020000 /* NEWNS */ | 0x02000000 /* NEWCGROUP */ |  \
	 0x04000000 /* NEWUTS */ | 0x08000000 /* NEWIPC */ | 0x10000000 /* NEWUSER */ |       \
	 0x20000000 /* NEWPID */ | 0x40000000 /* NEWNET */)

#define NS_STR 256

/* s1..s3 per syscall (decode_exec.py names them):
 *   mount: source, target, fstype     umount2: -, target, -     pivot_root: new_root, put_old, -
 *   open_tree(_attr)/mount_setattr: path, -, -   move_mount: from_path, to_path, -
 *   fsopen: -, -, fsname   setns: the fd's path (resolved at exit), -, -
 * base: the directory a relative s1/s2 is resolved in (dirfd, or cwd), when relative/empty */
struct ns_rec {
	struct rec_hdr h;
	__s64 ret;
	__u64 flags; /* clone/unshare flags, setns nstype, mount flags, open_tree flags, ... */
	__s64 a0;    /* dirfd / fd argument (setns fd, open_tree dfd, move_mount from_dfd, fsmount fs_fd) */
	__s64 a1;    /* move_mount to_dfd, fsmount attr_flags */
	__u32 nr;    /* syscall number */
	__u16 l1, l2, l3, lb; /* string lengths incl. NUL, 0 when absent */
	__u16 pad;
	char s1[NS_STR];
	char s2[NS_STR];
	char s3[NS_STR];
	char base[NS_STR];
};

struct ns_args {
	__u32 active;
	__u32 nr;
	__u64 flags;
	__s64 a0, a1;
	__u64 p1, p2, p3; /* user pointers of s1..s3 (re-read at exit when the copy faulted) */
	__u16 l1, l2, l3;
	__u16 pad;
	char s1[NS_STR];
	char s2[NS_STR];
	char s3[NS_STR];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ns_args);
} ns_inflight SEC(".maps");

static __always_inline __u32 ns_kind(__u32 nr)
{
	return (nr == NR_UNSHARE || nr == NR_CLONE || nr == NR_CLONE3 || nr == NR_SETNS) ? K_NS : K_MOUNT;
}

static __always_inline __u16 ns_str(char *dst, __u64 ptr)
{
	if (!ptr)
		return 0;
	int n = bpf_probe_read_user_str(dst, NS_STR, (void *)ptr);
	return n > 0 ? n : 0;
}

static __always_inline int ns_enter(__u32 nr, __u64 *x)
{
	__u64 flags = 0;
	__s64 a0 = AT_FDCWD, a1 = AT_FDCWD;
	__u64 p1 = 0, p2 = 0, p3 = 0;

	switch (nr) {
	case NR_UNSHARE:
	case NR_CLONE: /* every fork: leave before the cgroup lookup unless it makes a namespace */
		flags = x[0];
		if (!(flags & CLONE_NEW_MASK))
			return 0;
		break;
	case NR_CLONE3:
		break; /* flags are in user memory: read after the (cheaper) tracked check */
	case NR_SETNS:
		a0 = (__s32)x[0];
		flags = x[1];
		break;
	case NR_MOUNT:
		p1 = x[0];
		p2 = x[1];
		p3 = x[2];
		flags = x[3];
		break;
	case NR_UMOUNT2:
		p2 = x[0];
		flags = x[1];
		break;
	case NR_PIVOT_ROOT:
		p1 = x[0];
		p2 = x[1];
		break;
	case NR_OPEN_TREE:
	case NR_OPEN_TREE_ATTR:
	case NR_MOUNT_SETATTR:
		a0 = (__s32)x[0];
		p1 = x[1];
		flags = x[2];
		break;
	case NR_MOVE_MOUNT:
		a0 = (__s32)x[0];
		p1 = x[1];
		a1 = (__s32)x[2];
		p2 = x[3];
		flags = x[4];
		break;
	case NR_FSOPEN:
		p3 = x[0];
		flags = x[1];
		break;
	case NR_FSMOUNT:
		a0 = (__s32)x[0];
		flags = x[1];
		a1 = x[2];
		break;
	default:
		return 0;
	}
	if (!is_tracked())
		return 0;
	if (nr == NR_CLONE3) {
		/* struct clone_args starts with __u64 flags; unreadable: record it anyway (flags 0
		 * plus the result), a clone3 that may have made a namespace is not skipped */
		if (bpf_probe_read_user(&flags, sizeof(flags), (void *)x[0]) == 0 &&
		    !(flags & CLONE_NEW_MASK))
			return 0;
	}
	struct ns_args *a = bpf_task_storage_get(&ns_inflight, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a) {
		count_kind(&drops, ns_kind(nr)); /* the record this call would give is lost */
		return 0;
	}
	a->nr = nr;
	a->flags = flags;
	a->a0 = a0;
	a->a1 = a1;
	a->p1 = p1;
	a->p2 = p2;
	a->p3 = p3;
	a->l1 = ns_str(a->s1, p1);
	a->l2 = ns_str(a->s2, p2);
	a->l3 = ns_str(a->s3, p3);
	a->active = 1;
	return 0;
}

/* The kernel refuses to attach a program that reads past the arguments a tracepoint has,
 * so there is one enter program per argument count, each reading only what all of its
 * tracepoints have (the loader attaches them, logira/probes/attach.py). */
SEC("tracepoint/syscalls/sys_enter_unshare") /* + clone, clone3: flags or clone_args in arg 0 */
int on_enter_ns1(struct sys_enter_ctx *ctx)
{
	__u64 x[5] = { ctx->args[0], 0, 0, 0, 0 };
	return ns_enter(ctx->nr, x);
}

SEC("tracepoint/syscalls/sys_enter_setns") /* + umount, pivot_root, fsopen */
int on_enter_ns2(struct sys_enter_ctx *ctx)
{
	__u64 x[5] = { ctx->args[0], ctx->args[1], 0, 0, 0 };
	return ns_enter(ctx->nr, x);
}

SEC("tracepoint/syscalls/sys_enter_open_tree") /* + fsmount */
int on_enter_ns3(struct sys_enter_ctx *ctx)
{
	__u64 x[5] = { ctx->args[0], ctx->args[1], ctx->args[2], 0, 0 };
	return ns_enter(ctx->nr, x);
}

SEC("tracepoint/syscalls/sys_enter_mount") /* + move_mount, open_tree_attr, mount_setattr */
int on_enter_ns5(struct sys_enter_ctx *ctx)
{
	__u64 x[5] = { ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4] };
	return ns_enter(ctx->nr, x);
}

/* the string stashed at enter, or read again now when that copy faulted (the kernel has
 * paged it in for its own copy) */
static __always_inline __u16 ns_copy(char *dst, const char *stashed, __u16 len, __u64 ptr)
{
	if (len) {
		bpf_probe_read_kernel(dst, NS_STR, stashed);
		return len;
	}
	return ns_str(dst, ptr);
}

/* base directory of a relative or empty path argument: the dirfd, or the cwd */
static __always_inline __u16 ns_base(struct ns_rec *r, __s64 dfd)
{
	struct path_buf *pb = cwd_buf();
	__u64 pp = path_ptr_of_fd((int)dfd);
	if (!pb || !pp)
		return 0;
	int n = path_str_of(pp, (struct path_str *)pb->b);
	if (n <= 0)
		return 0;
	n &= PATH_STR_TRUNCATED - 1;
	__u32 len = n > NS_STR - 1 ? NS_STR - 1 : n;
	asm volatile("" : "+r"(len));
	len &= NS_STR - 1;
	if (bpf_probe_read_kernel(r->base, len, pb->b))
		return 0;
	r->base[(len - 1) & (NS_STR - 1)] = 0;
	return len;
}

/* Attached to every sys_exit_* of the syscalls above (logira/probes/attach.py). */
SEC("tracepoint/syscalls/sys_exit_unshare")
int on_exit_nsmount(struct sys_exit_ctx *ctx)
{
	struct ns_args *a = bpf_task_storage_get(&ns_inflight, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->active)
		return 0; /* nothing stashed: not tracked, or a clone without CLONE_NEW* */
	a->active = 0;
	__u32 nr = a->nr;
	__u32 kind = ns_kind(nr);
	struct ns_rec *r = reserve_rec(sizeof(*r), kind);
	if (!r)
		return 0;
	fill_hdr(&r->h, kind, sizeof(*r));
	r->ret = ctx->ret;
	r->flags = a->flags;
	r->a0 = a->a0;
	r->a1 = a->a1;
	r->nr = nr;
	r->pad = 0;
	r->l1 = r->l2 = r->l3 = r->lb = 0;
	r->s1[0] = r->s2[0] = r->s3[0] = r->base[0] = 0;

	__u32 n;
	if (nr == NR_SETNS) {
		/* what the fd really is (nsfs:[…] or a pidfd), from the kernel, not a name */
		struct path_buf *pb = cwd_buf();
		__u64 pp = path_ptr_of_fd((int)a->a0);
		int m = pp && pb ? path_str_of(pp, (struct path_str *)pb->b) : -1;
		if (m > 0 && pb) {
			m &= PATH_STR_TRUNCATED - 1;
			n = m > NS_STR - 1 ? NS_STR - 1 : m;
			asm volatile("" : "+r"(n));
			n &= NS_STR - 1;
			if (!bpf_probe_read_kernel(r->s1, n, pb->b)) {
				r->s1[(n - 1) & (NS_STR - 1)] = 0;
				r->l1 = n;
			}
		}
	} else {
		r->l1 = ns_copy(r->s1, a->s1, a->l1, a->p1);
	}
	r->l2 = ns_copy(r->s2, a->s2, a->l2, a->p2);
	r->l3 = ns_copy(r->s3, a->s3, a->l3, a->p3);

	/* relative or empty path arguments: where they were resolved */
	int rel1 = (a->p1 && r->s1[0] != '/') || (!a->p1 && nr != NR_SETNS && a->a0 != AT_FDCWD &&
						     nr != NR_FSMOUNT);
	int rel2 = a->p2 && r->s2[0] != '/';
	if (nr == NR_FSMOUNT || nr == NR_SETNS || kind == K_NS)
		rel1 = rel2 = 0;
	if (rel1)
		r->lb = ns_base(r, nr == NR_MOUNT || nr == NR_PIVOT_ROOT ? AT_FDCWD : a->a0);
	else if (rel2)
		r->lb = ns_base(r, nr == NR_MOVE_MOUNT ? a->a1 : AT_FDCWD);
	submit_rec(r, kind, 0);
	return 0;
}
