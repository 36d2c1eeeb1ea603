/* SPDX-License-Identifier: GPL-2.0 */
/* Process domain: fork, exec (path of the binary actually run, argv from the new
 * image, cwd), failed exec, exit of the whole thread group, and the two blind spots
 * of syscall tracepoints (io_uring_setup, ia32 compat syscalls).
 *
 * Record layouts are mirrored in logira/probes/decode_exec.py.
 */
#include "common.h"
#include "path.h"
#include "dnsfds.h"

#define FNAME_MAX 4096   /* filename/cwd region, incl. NUL; also read_path's bufsz */
#define ARGV_CAP 16384   /* hard cap of the argv region; argv_max must be < ARGV_CAP */
#define FAILED_ARGS 32   /* argv entries read (best effort) for a failed exec */
#define FAILED_ARG_MAX 1024
#define AT_FDCWD -100
#define TS_COMPAT 0x0002

/* Loader knob: bytes of argv captured (the rest sets EXF_ARGV_TRUNC). */
const volatile __u32 argv_max = 4096;

/* flags of exec records */
#define EXF_ARGV_TRUNC 1
#define EXF_FNAME_TRUNC 2
#define EXF_CWD_TRUNC 4
#define EXF_FNAME_FALLBACK 8 /* bprm->filename as requested, not the resolved file */
#define EXF_ARGV_FAULT 16   /* argv could not be read from user memory */
#define EXF_RELATIVE_DFD 32 /* failed execveat relative to a dirfd: filename kept relative */

struct fork_rec {
	struct rec_hdr h;
	__u32 child_pid;
	__u32 pad;
};

struct exit_rec {
	struct rec_hdr h;
	__u32 exit_code; /* raw wait status: (code << 8) | 0x80 core | signal */
	__u32 pad;
};

struct blind_rec {
	struct rec_hdr h;
	__s64 nr;
};

/* K_EXEC / K_EXEC_FAILED: fixed part, then filename, argv, cwd back to back. */
struct exec_rec {
	struct rec_hdr h;
	__u32 old_pid;
	__s32 err;        /* failed exec: positive errno */
	__u16 fname_len;  /* incl. NUL */
	__u16 argv_len;   /* NUL-separated args; the last one may be cut (truncated) */
	__u16 cwd_len;    /* incl. NUL, 0 if none */
	__u16 flags;
};

#define EXEC_FIXED sizeof(struct exec_rec)
#define EXEC_BUF (EXEC_FIXED + FNAME_MAX + ARGV_CAP + FAILED_ARG_MAX + FNAME_MAX)

struct exec_buf {
	char b[EXEC_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_buf);
} exec_scratch SEC(".maps");

struct path_buf {
	char b[FNAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} cwd_scratch SEC(".maps");

/* In-flight execve of a tracked thread, keyed by tid. The filename is copied at
 * sys_enter (what the kernel is about to use; a racing thread cannot rewrite it
 * afterwards). When that copy faults (.rodata literals of a fresh fork are often not
 * mapped yet) the user pointer is read again at sys_exit, when the kernel has faulted
 * the page in. argv is read at sys_exit, best effort. */
struct exec_args {
	__u64 filename;
	__u64 argv;
	__s32 dfd;
	__u32 fname_len; /* bytes copied at enter incl. NUL; 0: the copy faulted */
	char fname[FNAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_args);
} args_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct exec_args);
} exec_inflight SEC(".maps");

/* tgid -> start_time of the process that already got its compat blind-spot record. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} compat_seen SEC(".maps");

/* syscalls:sys_enter_* / sys_exit_* tracepoint layouts (every argument is 8 bytes). */
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

static __always_inline void *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&exec_scratch, &zero);
}

/* fl (a string read's result, >= 1) as a filename length the verifier can bound: at most
 * FNAME_MAX - 1, the name cut (and kept NUL-terminated) there when longer. */
static __always_inline __u32 clamp_fname(char *b, int fl, __u16 *flags)
{
	__u32 fname_len = fl;

	if (fname_len > FNAME_MAX - 1) {
		fname_len = FNAME_MAX - 1;
		b[EXEC_FIXED + FNAME_MAX - 2] = 0;
		*flags |= EXF_FNAME_TRUNC;
	}
	asm volatile("" : "+r"(fname_len));
	fname_len &= FNAME_MAX - 1;
	return fname_len;
}

/* The tail of exec and exec_failed: fname, argv and cwd are laid out in b after the fixed
 * part; fill that in and output. The size check keeps the verifier's bound on the output. */
static __always_inline void emit_exec(char *b, __u32 kind, __u32 old_pid, __s32 err, __u32 fname_len,
				      __u32 an, __u32 cl, __u16 flags)
{
	struct exec_rec *r = (struct exec_rec *)b;

	r->old_pid = old_pid;
	r->err = err;
	r->fname_len = fname_len;
	r->argv_len = an;
	r->cwd_len = cl;
	r->flags = flags;
	__u64 size = EXEC_FIXED + fname_len + an + cl;
	fill_hdr(&r->h, kind, size);
	if (size > EXEC_BUF)
		return;
	output_rec(b, size, kind, 0);
}

/* Append cwd (of the current task) at offset `off` of the record; returns its length. */
static __always_inline __u32 put_cwd(char *b, __u32 off, __u16 *flags)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&cwd_scratch, &zero);

	if (!pb)
		return 0;
	/* the global path_str_of() is verified once per program, not once per call site */
	__u64 pp = path_ptr_of_fd(AT_FDCWD);
	int n = pp ? path_str_of(pp, (struct path_str *)pb->b) : -EFAULT;
	if (n <= 0)
		return 0;
	if (n & PATH_STR_TRUNCATED)
		*flags |= EXF_CWD_TRUNC;
	n &= PATH_STR_TRUNCATED - 1;
	__u32 len = n;
	if (len > FNAME_MAX - 1) {
		len = FNAME_MAX - 1; /* the region holds 4095 bytes; keep it NUL-terminated */
		pb->b[FNAME_MAX - 2] = 0;
		*flags |= EXF_CWD_TRUNC;
	}
	asm volatile("" : "+r"(len));
	len &= FNAME_MAX - 1;
	asm volatile("" : "+r"(off));
	if (off > EXEC_FIXED + FNAME_MAX + ARGV_CAP + FAILED_ARG_MAX)
		return 0;
	if (bpf_probe_read_kernel(b + off, len, pb->b))
		return 0;
	return len;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (child->pid != child->tgid)
		return 0; /* a thread */
	if (!is_tracked())
		return 0;
	struct fork_rec *r = reserve_rec(sizeof(*r), K_FORK);
	if (!r)
		return 0;
	fill_hdr(&r->h, K_FORK, sizeof(*r));
	r->child_pid = child->tgid;
	r->pad = 0;
	submit_rec(r, K_FORK, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!is_tracked())
		return 0;
	/* the exec succeeded: forget the in-flight entry (keyed by the calling tid,
	 * which is old_pid when a non-leader thread exec'd; de_thread renamed it). */
	__u32 k = old_pid;
	bpf_map_delete_elem(&exec_inflight, &k);

	char *b = scratch();
	if (!b)
		return 0;
	__u16 flags = 0;
	int trunc = 0;

	/* filename: the file actually executed (after symlinks / script interpreter
	 * lookup, bprm->file is the binary the kernel loaded for this bprm) */
	struct file *f = BPF_CORE_READ(bprm, file); /* a plain value: global funcs take scalars */
	int fl = -1;
	if (f) {
		fl = path_str_of((__u64)__builtin_preserve_access_index(&f->f_path),
				 (struct path_str *)(b + EXEC_FIXED));
		if (fl > 0 && (fl & PATH_STR_TRUNCATED))
			trunc = 1;
		if (fl > 0)
			fl &= PATH_STR_TRUNCATED - 1;
	}
	if (fl <= 0) {
		fl = bpf_probe_read_kernel_str(b + EXEC_FIXED, FNAME_MAX, bprm->filename);
		flags |= EXF_FNAME_FALLBACK;
		if (fl <= 0) {
			b[EXEC_FIXED] = 0;
			fl = 1;
		}
	}
	if (trunc)
		flags |= EXF_FNAME_TRUNC;
	__u32 fname_len = clamp_fname(b, fl, &flags);

	/* argv: the new image's arg area, written by the kernel a moment ago */
	struct mm_struct *mm = p->mm;
	__u64 start = 0, end = 0;
	if (mm) {
		start = mm->arg_start;
		end = mm->arg_end;
	}
	__u64 want = end > start ? end - start : 0;
	__u32 an = want > argv_max ? argv_max : want;
	if (want > an)
		flags |= EXF_ARGV_TRUNC;
	asm volatile("" : "+r"(an));
	an &= ARGV_CAP - 1;
	__u32 off = EXEC_FIXED + fname_len;
	if (an && bpf_probe_read_user(b + off, an, (void *)start)) {
		flags |= EXF_ARGV_FAULT;
		an = 0;
	}

	__u32 cl = put_cwd(b, off + an, &flags);

	emit_exec(b, K_EXEC, old_pid, 0, fname_len, an, cl, flags);
	return 0;
}

static __always_inline int stash_exec(__u64 filename, __u64 argv, __s32 dfd)
{
	if (!is_tracked())
		return 0;
	__u32 zero = 0;
	struct exec_args *a = bpf_map_lookup_elem(&args_scratch, &zero);
	if (!a)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	a->filename = filename;
	a->argv = argv;
	a->dfd = dfd;
	int n = bpf_probe_read_user_str(a->fname, FNAME_MAX, (void *)filename);
	a->fname_len = n > 0 ? n : 0;
	bpf_map_update_elem(&exec_inflight, &tid, a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int on_enter_execve(struct sys_enter_ctx *ctx)
{
	return stash_exec(ctx->args[0], ctx->args[1], AT_FDCWD);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int on_enter_execveat(struct sys_enter_ctx *ctx)
{
	return stash_exec(ctx->args[1], ctx->args[2], (__s32)ctx->args[0]);
}

/* State of the failed-exec argv copy, one bpf_loop step per argv entry. */
struct argv_walk {
	__u64 argv;
	char *b;    /* the exec_scratch record */
	__u32 base; /* offset of the argv region in b */
	__u32 an;   /* bytes copied so far */
	__u16 flags;
};

static long argv_step(__u32 i, void *arg)
{
	struct argv_walk *w = arg;
	__u64 ptr = 0;

	if (bpf_probe_read_user(&ptr, sizeof(ptr), (void *)(w->argv + i * 8))) {
		if (i == 0)
			w->flags |= EXF_ARGV_FAULT;
		return 1;
	}
	if (!ptr)
		return 1;
	if (w->an >= argv_max) {
		w->flags |= EXF_ARGV_TRUNC;
		return 1;
	}
	__u32 o = w->base + w->an;
	asm volatile("" : "+r"(o));
	if (o > EXEC_FIXED + FNAME_MAX + ARGV_CAP)
		return 1;
	char *b = w->b;
	if (!b)
		return 1;
	int n = bpf_probe_read_user_str(b + o, FAILED_ARG_MAX, (void *)ptr);
	if (n <= 0) {
		w->flags |= EXF_ARGV_FAULT;
		return 1;
	}
	if (n == FAILED_ARG_MAX)
		w->flags |= EXF_ARGV_TRUNC; /* this argument was cut */
	w->an += n;
	if (i == FAILED_ARGS - 1)
		w->flags |= EXF_ARGV_TRUNC; /* may have had more entries */
	return 0;
}

static __always_inline int exec_exit(struct sys_exit_ctx *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_args *a = bpf_map_lookup_elem(&exec_inflight, &tid);
	if (!a)
		return 0;
	if (ctx->ret >= 0) {
		bpf_map_delete_elem(&exec_inflight, &tid);
		return 0;
	}

	char *b = scratch();
	if (!b) {
		bpf_map_delete_elem(&exec_inflight, &tid);
		return 0;
	}
	__u16 flags = 0;
	struct {
		__u64 filename;
		__u64 argv;
		__s32 dfd;
	} args = { a->filename, a->argv, a->dfd };

	int fl = 0;
	__u32 copied = a->fname_len;
	if (copied) {
		asm volatile("" : "+r"(copied));
		copied &= FNAME_MAX - 1; /* 4096 means "maybe cut": it is clamped below anyway */
		if (copied && !bpf_probe_read_kernel(b + EXEC_FIXED, copied, a->fname))
			fl = a->fname_len;
	}
	bpf_map_delete_elem(&exec_inflight, &tid);
	if (fl <= 0)
		fl = bpf_probe_read_user_str(b + EXEC_FIXED, FNAME_MAX, (void *)args.filename);
	if (fl <= 0) {
		b[EXEC_FIXED] = 0;
		fl = 1;
	}
	__u32 fname_len = clamp_fname(b, fl, &flags);
	char first = b[EXEC_FIXED];

	/* argv, best effort: up to FAILED_ARGS strings within argv_max bytes; bpf_loop so
	 * the verifier checks the body once instead of 32 unrolled times */
	__u32 base = EXEC_FIXED + fname_len;
	struct argv_walk w = { .argv = args.argv, .b = b, .base = base };
	if (args.argv)
		bpf_loop(FAILED_ARGS, argv_step, &w, 0);
	__u32 an = w.an;
	flags |= w.flags;
	if (an > argv_max) {
		an = argv_max;
		flags |= EXF_ARGV_TRUNC;
	}
	asm volatile("" : "+r"(an));
	an &= ARGV_CAP - 1;

	__u32 cl = 0;
	if (first != '/') {
		if (args.dfd == AT_FDCWD)
			cl = put_cwd(b, base + an, &flags);
		else
			flags |= EXF_RELATIVE_DFD;
	}

	emit_exec(b, K_EXEC_FAILED, 0, (__s32)-ctx->ret, fname_len, an, cl, flags);
	return 0;
}

/* Also attached to sys_exit_execveat by the loader (logira/probes/attach.py): one program
 * is verified once instead of twice at start-up. */
SEC("tracepoint/syscalls/sys_exit_execve")
int on_exit_execve(struct sys_exit_ctx *ctx)
{
	return exec_exit(ctx);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p, bool group_dead)
{
	if (!group_dead)
		return 0; /* other threads still run: the process is not gone */
	if (!is_tracked())
		return 0;
	struct exit_rec *r = reserve_rec(sizeof(*r), K_EXIT);
	if (!r)
		return 0;
	fill_hdr(&r->h, K_EXIT, sizeof(*r));
	__u32 code = p->exit_code;
	struct signal_struct *sig = p->signal;
	/* a group exit (exit_group / fatal signal) carries the code for every thread */
	if (sig && (sig->flags & 0x00000004 /* SIGNAL_GROUP_EXIT */))
		code = sig->group_exit_code;
	r->exit_code = code;
	r->pad = 0;
	/* Wake the reader at once only when a run may be ending: the parent lives in another
	 * cgroup (the run's first process, whose parent is `logira run`, or an orphan handed
	 * to a reaper outside). Other exits wait for the batch threshold or the reader's 20 ms
	 * drain timer: one forced wake-up per exit cost fork+exec-heavy runs 5-10 %. */
	int force = p->real_parent->cgroups->dfl_cgrp != p->cgroups->dfl_cgrp;
	submit_rec(r, K_EXIT, force);
	return 0;
}

static __always_inline void emit_blind(__u32 kind, __s64 nr)
{
	struct blind_rec *r = reserve_rec(sizeof(*r), kind);
	if (!r)
		return;
	fill_hdr(&r->h, kind, sizeof(*r));
	r->nr = nr;
	submit_rec(r, kind, 0);
}

SEC("tracepoint/syscalls/sys_enter_io_uring_setup")
int on_io_uring_setup(struct sys_enter_ctx *ctx)
{
	if (!is_tracked())
		return 0;
	emit_blind(K_BLIND_IO_URING, ctx->nr);
	return 0;
}

#if defined(__TARGET_ARCH_x86)
#define NR_CLOSE 3 /* x86-64 */

/* Runs on EVERY syscall of the host while attached: one field read and one compare decide.
 * It also does net's close() cleanup of the DNS fd table (bpf/dnsfds.h): that costs a
 * compare here instead of a syscall tracepoint program (~180 ns) on every close(). */
SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	if (!(t->thread_info.status & TS_COMPAT)) {
		if (id == NR_CLOSE)
			dns_forget((__s32)regs->di);
		return 0;
	}
	if (!is_tracked())
		return 0;
	__u32 tgid = t->tgid;
	__u64 start = t->group_leader->start_time;
	__u64 *seen = bpf_map_lookup_elem(&compat_seen, &tgid);
	if (seen && *seen == start)
		return 0; /* one record per process is enough to flag it */
	bpf_map_update_elem(&compat_seen, &tgid, &start, BPF_ANY);
	emit_blind(K_BLIND_COMPAT, id);
	return 0;
}
#endif
