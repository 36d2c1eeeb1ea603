/* SPDX-License-Identifier: GPL-2.0 */
/* Process domain: fork, exec (path of the binary actually run, the name the kernel was
 * asked to run, the #! interpreter, argv head and tail from the new image, cwd, the
 * exe's inode owner/mode/link count, the pipes on its fds, agent markers from its
 * environment), failed exec, exit of the whole thread group, namespace and mount
 * changes (nsmount.h), and the two blind spots of syscall tracepoints (io_uring_setup,
 * ia32 compat syscalls).
 *
 * Per-thread in-flight state is never evicted by other threads' activity: exec's lives in a
 * preallocated non-evicting hash keyed by tid, the namespace/mount syscalls' in task storage.
 * A miss that loses a record is counted as a drop of the kind it would have produced.
 *
 * Record layouts are mirrored in logira/probes/decode_exec.py.
 */
#include "common.h"
#include "path.h"
#include "dnsfds.h"

#define FNAME_MAX 4096   /* filename/cwd region, incl. NUL; also read_path's bufsz */
#define ARGV_CAP 16384   /* hard cap of the argv head region; argv_max must be < ARGV_CAP */
#define TAIL_CAP 2048    /* argv tail region (tail <= TAIL_MAX + 1); failed exec: argv slack */
#define TAIL_MAX 1024    /* bytes of the END of argv kept when it is longer than argv_max */
#define SCRIPT_CAP 2048  /* bprm->filename: the name the kernel was asked to run */
#define INTERP_CAP 256   /* bprm->interp (a #! line is at most 256 bytes) */
#define FDPATH_CAP 1024  /* path of the fd exec'd through (/dev/fd/N, AT_EMPTY_PATH) */
#define ENV_CAP 2048     /* agent markers NAME=VALUE\0..., each at most ENV_STR bytes */
#define ARGV0_CAP 256    /* the caller's argv[0], kept for #! scripts (the kernel replaces it) */
#define ENV_STR 256      /* bytes of one environment string examined / kept */
#define ENV_ITERS 512    /* environment strings examined at most */
#define ENV_SCAN_MAX (64 * 1024) /* environment bytes examined at most */
#define NFDS 8           /* fd entries per exec record */
#define FD_SCAN 64       /* fds 0..63 are examined for pipes/FIFOs */
#define FAILED_ARGS 32   /* argv entries read (best effort) for a failed exec */
#define FAILED_ARG_MAX 1024
#define AT_FDCWD -100
#define AT_EMPTY_PATH 0x1000
#define TS_COMPAT 0x0002

/* Loader knob: bytes of argv captured (head + tail; the rest sets EXF_ARGV_TRUNC). */
const volatile __u32 argv_max = 4096;

/* flags of exec records */
#define EXF_ARGV_TRUNC 1
#define EXF_FNAME_TRUNC 2
#define EXF_CWD_TRUNC 4
#define EXF_FNAME_FALLBACK 8 /* bprm->filename as requested, not the resolved file */
#define EXF_ARGV_FAULT 16   /* argv could not be read from user memory */
#define EXF_RELATIVE_DFD 32 /* failed execveat relative to a dirfd: filename kept relative */
#define EXF_SCRIPT 64       /* bprm->interp != bprm->filename: a #! script or binfmt_misc */
#define EXF_ENV_TRUNC 128   /* the environment scan stopped before its end (bounds) */
#define EXF_ENV_FAULT 256   /* the environment could not be read */
#define EXF_ENV_CUT 512     /* a marker value was longer than kept */
#define EXF_FDPATH_DIR 1024 /* fdpath is the directory a relative name was resolved in */
#define EXF_FDPATH_TRUNC 2048
#define EXF_SCRIPT_TRUNC 4096
#define EXF_FDS_MORE 8192   /* more pipe/FIFO fds than NFDS entries */
#define EXF_NO_INFLIGHT 16384 /* the exec's in-flight slot was missing (fdpath unknown) */

/* fd entry kinds */
#define FDK_PIPE 1
#define FDK_FIFO 2
#define FDK_REG 3
#define FDK_CHR 4
#define FDK_SOCK 5
#define FDK_DIR 6
#define FDK_BLK 7
#define FDK_OTHER 8
#define PIPEFS_MAGIC 0x50495045

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

struct fd_ent {
	__s32 fd;
	__u16 kind;  /* FDK_* */
	__u16 fmode; /* 1 read, 2 write (f_mode bits) */
	__u32 dev;   /* s_dev of the inode's superblock */
	__u32 pad;
	__u64 ino;
};

/* K_EXEC / K_EXEC_FAILED: fixed part, then filename, argv head, argv tail, cwd, script,
 * interp, fdpath, env markers, caller's argv[0] back to back (lengths below; failed execs
 * use the first four regions only). */
struct exec_rec {
	struct rec_hdr h;
	__u32 old_pid;
	__s32 err;        /* failed exec: positive errno */
	__u16 fname_len;  /* incl. NUL */
	__u16 argv_len;   /* head: NUL-separated args; the last one may be cut */
	__u16 cwd_len;    /* incl. NUL, 0 if none */
	__u16 flags;
	__u16 tail_len;   /* argv tail incl. the byte BEFORE it (0 there: the tail starts an arg) */
	__u16 script_len; /* bprm->filename incl. NUL */
	__u16 interp_len; /* bprm->interp incl. NUL, when EXF_SCRIPT */
	__u16 fdpath_len;
	__u16 env_len;    /* NAME=VALUE\0 entries */
	__u16 nfds;       /* (argv0_len below: the caller's argv[0] when EXF_SCRIPT) */
	__u32 argv_total; /* bytes of the whole argv area of the new image */
	__u32 exe_uid;    /* inode of the binary that ran */
	__u32 exe_gid;
	__u32 exe_mode;
	__u32 exe_nlink;
	__u64 exe_ino;
	__u32 exe_dev;
	__u32 env_total;   /* bytes of the environment area */
	__u32 env_scanned; /* bytes of it examined */
	__u16 argv0_len;   /* the caller's argv[0] incl. NUL (#! scripts; read at sys_enter, best effort) */
	__u16 pad;
	struct fd_ent fds[NFDS];
};

#define EXEC_FIXED sizeof(struct exec_rec)
#define EXEC_BUF (EXEC_FIXED + FNAME_MAX + ARGV_CAP + TAIL_CAP + FNAME_MAX + SCRIPT_CAP + INTERP_CAP + \
		  FDPATH_CAP + ENV_CAP + ARGV0_CAP)
_Static_assert(EXEC_BUF <= 32768, "per-CPU values are limited to 32 KiB");

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

/* In-flight execve of a tracked thread (task storage: one per thread). The filename is
 * copied at sys_enter (what the kernel is about to use; a racing thread cannot rewrite it
 * afterwards). When that copy faults (.rodata literals of a fresh fork are often not
 * mapped yet) the user pointer is read again at sys_exit, when the kernel has faulted the
 * page in. argv of a failed exec is read at sys_exit, best effort. An exec through an fd
 * (/dev/fd/N, /proc/self/fd/N, execveat AT_EMPTY_PATH or dirfd-relative) resolves that fd
 * here, before close-on-exec closes it. */
struct exec_args {
	__u64 filename;
	__u64 argv;
	__s32 dfd;
	__u32 fname_len; /* bytes copied at enter incl. NUL; 0: the copy faulted */
	__u32 active;    /* 1 between sys_enter and the exec / sys_exit */
	__u16 fdpath_len;
	__u16 fdflags;   /* EXF_FDPATH_DIR | EXF_FDPATH_TRUNC */
	__u16 argv0_len; /* bytes of argv0 incl. NUL; 0: unreadable */
	__u16 pad;
	char fname[FNAME_MAX];
	char fdpath[FDPATH_CAP];
	char argv0[ARGV0_CAP];
};

/* keyed by tid; preallocated and NOT evicting (an LRU let 2000 threads in execve evict each
 * other's entries, and their failures vanished). Task storage would fit too, but creating it
 * for every new process cost ~20 us per exec here (a GFP_ATOMIC allocation of 5 KiB per task);
 * a preallocated element costs one copy. When the table is full the exec still gets its record
 * if it succeeds (only fdpath is missing, EXF_NO_INFLIGHT); a failure without an entry is
 * counted in drops[exec_failed] at sys_exit. Entries are deleted at exec / sys_exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, __u32);
	__type(value, struct exec_args);
} exec_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_args);
} args_scratch SEC(".maps");

/* tgid -> start_time of the process that already got its compat blind-spot record
 * (an evicted entry only means a second record for that process, never a lost one). */
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

static __always_inline struct path_buf *cwd_buf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&cwd_scratch, &zero);
}

#include "nsmount.h" /* uses cwd_buf() */

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

/* Output the record built in b; the size check keeps the verifier's bound on the output. */
static __always_inline void emit_exec(char *b, __u32 kind, __u64 size)
{
	struct exec_rec *r = (struct exec_rec *)b;

	fill_hdr(&r->h, kind, size);
	if (size > EXEC_BUF)
		return;
	output_rec(b, size, kind, 0);
}

/* Append cwd (of the current task) at offset `off` of the record; returns its length. */
static __always_inline __u32 put_cwd(char *b, __u32 off, __u16 *flags)
{
	struct path_buf *pb = cwd_buf();

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
	if (off > EXEC_BUF - FNAME_MAX)
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

/* ---- environment markers (issue 10): a bounded scan of the new image's environment ---- */

struct env_out {
	char b[ENV_CAP];     /* NAME=VALUE\0 entries */
	char tmp[ENV_STR];   /* the string being examined */
	__u32 scanned;       /* bytes of the environment examined */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct env_out);
} env_scratch SEC(".maps");

struct env_walk {
	__u64 pos;
	__u64 end;
	struct env_out *o;
	__u32 used;    /* bytes of o->b used */
	__u32 scanned;
	__u32 found;   /* bit per marker already kept (the first one wins, like getenv) */
	__u16 flags;
	__u16 mid;     /* pos is inside a string longer than ENV_STR */
};

/* s[0..n) == name and s[n] == '=' (n and name are constants after inlining) */
static __always_inline int env_is(const char *s, const char *name, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != name[i])
			return 0;
	return s[n] == '=';
}

struct env_str {
	char b[ENV_STR];
};

/* index of the marker s names, or -1. A global function: verified once on its own, so its
 * byte compares do not multiply the states of the scan loop. */
__attribute__((noinline)) int env_marker(struct env_str *e)
{
	if (!e)
		return -1;
	const char *s = e->b;
	switch (s[0]) {
	case 'C':
		if (env_is(s, "CLAUDECODE", 10))
			return 0;
		if (env_is(s, "CLAUDE_CODE_SESSION_ID", 22))
			return 1;
		if (env_is(s, "CLAUDE_CODE_CHILD_SESSION", 25))
			return 2;
		if (env_is(s, "CLAUDE_PID", 10))
			return 3;
		if (env_is(s, "CODEX_THREAD_ID", 15))
			return 5;
		return -1;
	case 'T':
		return env_is(s, "TRACEPARENT", 11) ? 4 : -1;
	case 'G':
		return env_is(s, "GEMINI_CLI", 10) ? 6 : -1;
	}
	return -1;
}

static long env_step(__u32 i, void *arg)
{
	struct env_walk *w = arg;
	struct env_out *o = w->o;

	if (w->pos >= w->end)
		return 1;
	if (w->scanned >= ENV_SCAN_MAX || !o) {
		w->flags |= EXF_ENV_TRUNC;
		return 1;
	}
	char *tmp = o->tmp;
	int n = bpf_probe_read_user_str(tmp, ENV_STR, (void *)w->pos);
	if (n <= 0) {
		w->flags |= EXF_ENV_FAULT;
		return 1;
	}
	int longer = n == ENV_STR; /* 255 bytes and maybe more before the NUL */
	if (!w->mid) {
		int m = env_marker((struct env_str *)tmp);
		if (m >= 0 && m < 8 && !(w->found & (1u << m))) {
			w->found |= 1u << m;
			if (longer)
				w->flags |= EXF_ENV_CUT;
			__u32 u = w->used;
			asm volatile("" : "+r"(u));
			__u32 len = n;
			asm volatile("" : "+r"(len));
			len &= ENV_STR - 1;
			if (len == 0)
				len = ENV_STR - 1; /* a cut string: keep its 255 bytes, NUL added below */
			if (u <= ENV_CAP - ENV_STR) {
				tmp[(len - 1) & (ENV_STR - 1)] = 0;
				bpf_probe_read_kernel(o->b + u, len, tmp);
				w->used += len;
			}
		}
	}
	if (longer) {
		w->pos += ENV_STR - 1;
		w->scanned += ENV_STR - 1;
		w->mid = 1;
	} else {
		w->pos += n;
		w->scanned += n;
		w->mid = 0;
	}
	return 0;
}

/* Global: verified once on its own. Fills o->b; returns used | flags << 16. */
__attribute__((noinline)) int env_scan(__u64 start, __u64 end, struct env_out *o)
{
	struct env_walk w = { .pos = start, .end = end, .o = o };
	if (!o || end <= start)
		return 0;
	bpf_loop(ENV_ITERS, env_step, &w, 0);
	if (w.pos < w.end && !(w.flags & EXF_ENV_FAULT))
		w.flags |= EXF_ENV_TRUNC;
	o->scanned = w.scanned;
	return (w.used & 0xffff) | ((__u32)w.flags << 16);
}

/* ---- fds of the new image: pipe / FIFO identity (who feeds whom) ---- */

struct fd_tab {
	struct fd_ent e[NFDS];
};

struct fd_walk {
	struct fd_tab *t;
	struct file **fds;
	__u64 open;    /* open_fds bitmap of fds 0..63: closed fds cost one shift */
	__u32 max;
	__u32 n;
	__u16 more;
};

static long fd_step(__u32 i, void *arg)
{
	struct fd_walk *w = arg;
	struct file *f = NULL;

	if (i >= w->max || !(w->open >> i))
		return 1; /* no open fd at or above i */
	if (!((w->open >> i) & 1))
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &w->fds[i]) || !f)
		return 0;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	if (!ino)
		return 0;
	__u16 mode = BPF_CORE_READ(ino, i_mode);
	__u16 kind;
	switch (mode & 0170000) {
	case 0010000: /* S_IFIFO */
		kind = BPF_CORE_READ(ino, i_sb, s_magic) == PIPEFS_MAGIC ? FDK_PIPE : FDK_FIFO;
		break;
	case 0100000:
		kind = FDK_REG;
		break;
	case 0020000:
		kind = FDK_CHR;
		break;
	case 0140000:
		kind = FDK_SOCK;
		break;
	case 0040000:
		kind = FDK_DIR;
		break;
	case 0060000:
		kind = FDK_BLK;
		break;
	default:
		kind = FDK_OTHER;
	}
	/* stdin/stdout always (what feeds the program, where it writes), others only when a
	 * pipe or FIFO (process substitution: `bash <(curl …)` reads /dev/fd/63) */
	if (i > 1 && kind != FDK_PIPE && kind != FDK_FIFO)
		return 0;
	if (w->n >= NFDS) {
		w->more = 1;
		return 1;
	}
	struct fd_tab *t = w->t;
	if (!t)
		return 1;
	__u32 k = w->n & (NFDS - 1);
	t->e[k].fd = i;
	t->e[k].kind = kind;
	t->e[k].fmode = BPF_CORE_READ(f, f_mode) & 3;
	t->e[k].dev = BPF_CORE_READ(ino, i_sb, s_dev);
	t->e[k].pad = 0;
	t->e[k].ino = BPF_CORE_READ(ino, i_ino);
	w->n++;
	return 0;
}

/* Global: the fds of the current task into t; returns n | more << 16. */
__attribute__((noinline)) int fd_scan(struct fd_tab *t)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fd_walk w = { .t = t };
	if (!t)
		return 0;
	struct fdtable *fdt = task->files ? task->files->fdt : 0;
	if (!fdt)
		return 0;
	w.fds = fdt->fd;
	w.max = fdt->max_fds;
	unsigned long *bits = fdt->open_fds;
	if (!bits || bpf_probe_read_kernel(&w.open, sizeof(w.open), bits))
		return 0;
	bpf_loop(FD_SCAN, fd_step, &w, 0);
	return w.n | (w.more << 16);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!is_tracked())
		return 0;
	/* The exec succeeded. The in-flight entry is keyed by the calling tid: old_pid when a
	 * non-leader thread exec'd (de_thread gave it the leader's pid). */
	__u32 key = old_pid;
	struct exec_args *a = bpf_map_lookup_elem(&exec_inflight, &key);

	char *b = scratch();
	if (!b)
		return 0;
	struct exec_rec *r = (struct exec_rec *)b;
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
		struct inode *ino = BPF_CORE_READ(f, f_inode);
		r->exe_uid = BPF_CORE_READ(ino, i_uid.val);
		r->exe_gid = BPF_CORE_READ(ino, i_gid.val);
		r->exe_mode = BPF_CORE_READ(ino, i_mode);
		r->exe_nlink = BPF_CORE_READ(ino, i_nlink);
		r->exe_ino = BPF_CORE_READ(ino, i_ino);
		r->exe_dev = BPF_CORE_READ(ino, i_sb, s_dev);
	} else {
		r->exe_uid = r->exe_gid = r->exe_mode = r->exe_nlink = r->exe_dev = 0;
		r->exe_ino = 0;
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
	__u32 off = EXEC_FIXED + fname_len;

	/* argv: the new image's arg area, written by the kernel a moment ago. When longer than
	 * argv_max, its head AND its tail are kept (padding cannot push a command out of sight). */
	struct mm_struct *mm = p->mm;
	__u64 start = 0, end = 0, env_start = 0, env_end = 0;
	if (mm) {
		start = mm->arg_start;
		end = mm->arg_end;
		env_start = mm->env_start;
		env_end = mm->env_end;
	}
	__u64 want = end > start ? end - start : 0;
	__u32 an = want, tl = 0;
	if (want > argv_max) {
		flags |= EXF_ARGV_TRUNC;
		tl = argv_max / 4 > TAIL_MAX ? TAIL_MAX : argv_max / 4;
		an = argv_max - tl;
		tl += 1; /* plus the byte before the tail: 0 when the tail starts an argument */
	}
	r->argv_total = want > 0xffffffff ? 0xffffffff : want;
	asm volatile("" : "+r"(an));
	an &= ARGV_CAP - 1;
	if (an && bpf_probe_read_user(b + off, an, (void *)start)) {
		flags |= EXF_ARGV_FAULT;
		an = 0;
	}
	off += an;
	asm volatile("" : "+r"(tl));
	tl &= TAIL_CAP - 1;
	asm volatile("" : "+r"(off));
	if (tl && off <= EXEC_BUF - TAIL_CAP) {
		if (bpf_probe_read_user(b + off, tl, (void *)(end - tl)))
			tl = 0;
	} else {
		tl = 0;
	}
	off += tl;

	__u32 cl = put_cwd(b, off, &flags);
	off += cl;

	/* the name the kernel was asked to run; for #! scripts also the interpreter line's path */
	__u32 sl = 0, il = 0;
	const char *fn = BPF_CORE_READ(bprm, filename);
	const char *interp = BPF_CORE_READ(bprm, interp);
	asm volatile("" : "+r"(off));
	if (off <= EXEC_BUF - SCRIPT_CAP) {
		int n = bpf_probe_read_kernel_str(b + off, SCRIPT_CAP, fn);
		if (n > 0) {
			sl = n;
			if (sl == SCRIPT_CAP)
				flags |= EXF_SCRIPT_TRUNC;
		}
	}
	asm volatile("" : "+r"(sl));
	sl &= SCRIPT_CAP - 1; /* a cut name loses its last byte; it stays NUL-free, decoded as is */
	off += sl;
	if (interp != fn) {
		flags |= EXF_SCRIPT;
		asm volatile("" : "+r"(off));
		if (off <= EXEC_BUF - INTERP_CAP) {
			int n = bpf_probe_read_kernel_str(b + off, INTERP_CAP, interp);
			if (n > 0)
				il = n;
		}
	}
	asm volatile("" : "+r"(il));
	il &= INTERP_CAP - 1;
	off += il;

	/* the fd exec'd through, resolved at sys_enter (close-on-exec has closed it since) */
	__u32 fpl = 0;
	if (a && a->active) {
		fpl = a->fdpath_len;
		flags |= a->fdflags;
		asm volatile("" : "+r"(fpl));
		fpl &= FDPATH_CAP - 1;
		asm volatile("" : "+r"(off));
		if (fpl && (off > EXEC_BUF - FDPATH_CAP || bpf_probe_read_kernel(b + off, fpl, a->fdpath)))
			fpl = 0;
	} else {
		flags |= EXF_NO_INFLIGHT;
	}
	off += fpl;

	/* the caller's argv[0] (a #! script's exec dropped it from the new image's argv) */
	__u32 a0l = 0;
	if (a && (flags & EXF_SCRIPT)) {
		a0l = a->argv0_len;
		asm volatile("" : "+r"(a0l));
		a0l &= ARGV0_CAP - 1; /* a full 256-byte read keeps 255 (cut, NUL-free: decoded as is) */
		asm volatile("" : "+r"(off));
		if (a0l && (off > EXEC_BUF - ARGV0_CAP || bpf_probe_read_kernel(b + off, a0l, a->argv0)))
			a0l = 0;
	}
	off += a0l;
	if (a)
		bpf_map_delete_elem(&exec_inflight, &key);

	/* agent markers from the new image's environment (bounded scan) */
	__u32 zero = 0;
	struct env_out *eo = bpf_map_lookup_elem(&env_scratch, &zero);
	__u32 el = 0;
	if (eo) {
		int e = env_scan(env_start, env_end, eo);
		flags |= (__u32)e >> 16;
		el = e & 0xffff;
		asm volatile("" : "+r"(el));
		el &= ENV_CAP - 1;
		asm volatile("" : "+r"(off));
		if (el && (off > EXEC_BUF - ENV_CAP || bpf_probe_read_kernel(b + off, el, eo->b)))
			el = 0;
	}
	off += el;
	r->env_total = env_end > env_start ? env_end - env_start : 0;
	r->env_scanned = eo ? eo->scanned : 0;

	/* pipes and FIFOs on the fds the new image starts with */
	int fr = fd_scan((struct fd_tab *)r->fds);
	__u32 nfds = fr & 0xffff;
	if (fr >> 16)
		flags |= EXF_FDS_MORE;

	r->old_pid = old_pid;
	r->err = 0;
	r->fname_len = fname_len;
	r->argv_len = an;
	r->cwd_len = cl;
	r->flags = flags;
	r->tail_len = tl;
	r->script_len = sl;
	r->interp_len = il;
	r->fdpath_len = fpl;
	r->env_len = el;
	r->nfds = nfds;
	r->argv0_len = a0l;
	r->pad = 0;
	emit_exec(b, K_EXEC, off);
	return 0;
}

/* n = the fd number at s (1..4 decimal digits), *rest = what follows; -1 if none */
static __always_inline int parse_fd(const char *s, int *rest)
{
	int n = 0, i = 0;
#pragma unroll
	for (; i < 5; i++) {
		char c = s[i];
		if (c < '0' || c > '9')
			break;
		n = n * 10 + (c - '0');
	}
	if (i == 0 || i == 5)
		return -1;
	*rest = i;
	return n;
}

static __always_inline int has_prefix(const char *s, const char *p, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != p[i])
			return 0;
	return 1;
}

/* The fd an exec goes through, resolved now (it may be close-on-exec). */
static __always_inline void stash_fdpath(struct exec_args *a, __s32 dfd, __u64 at_flags)
{
	int fd = -1, dir = 0, rest = 0;
	a->fdpath_len = 0;
	a->fdflags = 0;
	if (a->fname_len <= 1) {
		if (dfd != AT_FDCWD && (at_flags & AT_EMPTY_PATH))
			fd = dfd;
	} else if (a->fname[0] != '/') {
		if (dfd != AT_FDCWD) {
			fd = dfd;
			dir = 1;
		}
	} else if (has_prefix(a->fname, "/dev/fd/", 8)) {
		fd = parse_fd(a->fname + 8, &rest);
		dir = a->fname[(8 + rest) & 15] != 0;
	} else if (has_prefix(a->fname, "/proc/self/fd/", 14)) {
		fd = parse_fd(a->fname + 14, &rest);
		dir = a->fname[(14 + rest) & 31] != 0;
	} else if (has_prefix(a->fname, "/proc/thread-self/fd/", 21)) {
		fd = parse_fd(a->fname + 21, &rest);
		dir = a->fname[(21 + rest) & 31] != 0;
	}
	if (fd < 0)
		return;
	__u64 pp = path_ptr_of_fd(fd);
	struct path_buf *pb = cwd_buf();
	if (!pp || !pb)
		return;
	int n = path_str_of(pp, (struct path_str *)pb->b);
	if (n <= 0)
		return;
	if (n & PATH_STR_TRUNCATED)
		a->fdflags |= EXF_FDPATH_TRUNC;
	n &= PATH_STR_TRUNCATED - 1;
	__u32 len = n;
	if (len > FDPATH_CAP - 1) {
		len = FDPATH_CAP - 1;
		pb->b[FDPATH_CAP - 2] = 0;
		a->fdflags |= EXF_FDPATH_TRUNC;
	}
	asm volatile("" : "+r"(len));
	len &= FDPATH_CAP - 1;
	if (bpf_probe_read_kernel(a->fdpath, len, pb->b))
		return;
	a->fdpath_len = len;
	if (dir)
		a->fdflags |= EXF_FDPATH_DIR;
}

static __always_inline int stash_exec(__u64 filename, __u64 argv, __s32 dfd, __u64 at_flags)
{
	if (!is_tracked())
		return 0;
	__u32 zero = 0;
	struct exec_args *a = bpf_map_lookup_elem(&args_scratch, &zero);
	if (!a)
		return 0;
	a->filename = filename;
	a->argv = argv;
	a->dfd = dfd;
	int n = bpf_probe_read_user_str(a->fname, FNAME_MAX, (void *)filename);
	a->fname_len = n > 0 ? n : 0;
	if (n <= 0)
		a->fname[0] = 0;
	stash_fdpath(a, dfd, at_flags);
	/* the caller's argv[0]: a #! script's exec replaces it in the new image (best effort: a
	 * literal of a fresh fork may not be mapped yet) */
	__u64 p0 = 0;
	a->argv0_len = 0;
	if (argv && !bpf_probe_read_user(&p0, sizeof(p0), (void *)argv) && p0) {
		int m = bpf_probe_read_user_str(a->argv0, ARGV0_CAP, (void *)p0);
		a->argv0_len = m > 0 ? m : 0;
	}
	a->active = 1;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	/* full table: a success still gets its record; a failure is counted at sys_exit */
	bpf_map_update_elem(&exec_inflight, &tid, a, BPF_ANY);
	return 0;
}

/* Two programs: the kernel refuses to attach a program that reads past the arguments a
 * tracepoint has (execve has 3, execveat 5). */
SEC("tracepoint/syscalls/sys_enter_execve")
int on_enter_execve(struct sys_enter_ctx *ctx)
{
	return stash_exec(ctx->args[0], ctx->args[1], AT_FDCWD, 0);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int on_enter_execveat(struct sys_enter_ctx *ctx)
{
	return stash_exec(ctx->args[1], ctx->args[2], (__s32)ctx->args[0], ctx->args[4]);
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
	if (!a) {
		/* a tracked failed exec without its enter state (the table was full, or programs
		 * were attached mid-call): it cannot be recorded, so it is counted */
		if (ctx->ret < 0 && is_tracked())
			count_kind(&drops, K_EXEC_FAILED);
		return 0;
	}
	if (ctx->ret >= 0) {
		bpf_map_delete_elem(&exec_inflight, &tid);
		return 0;
	}

	char *b = scratch();
	if (!b) {
		bpf_map_delete_elem(&exec_inflight, &tid);
		return 0;
	}
	struct exec_rec *r = (struct exec_rec *)b;
	__u16 flags = 0;

	int fl = 0;
	__u32 copied = a->fname_len;
	if (copied) {
		asm volatile("" : "+r"(copied));
		copied &= FNAME_MAX - 1; /* 4096 means "maybe cut": it is clamped below anyway */
		if (copied && !bpf_probe_read_kernel(b + EXEC_FIXED, copied, a->fname))
			fl = a->fname_len;
	}
	if (fl <= 0)
		fl = bpf_probe_read_user_str(b + EXEC_FIXED, FNAME_MAX, (void *)a->filename);
	if (fl <= 0) {
		b[EXEC_FIXED] = 0;
		fl = 1;
	}
	__u32 fname_len = clamp_fname(b, fl, &flags);
	char first = b[EXEC_FIXED];

	/* argv, best effort: up to FAILED_ARGS strings within argv_max bytes; bpf_loop so
	 * the verifier checks the body once instead of 32 unrolled times */
	__u32 base = EXEC_FIXED + fname_len;
	struct argv_walk w = { .argv = a->argv, .b = b, .base = base };
	if (w.argv)
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
		if (a->dfd == AT_FDCWD)
			cl = put_cwd(b, base + an, &flags);
		else
			flags |= EXF_RELATIVE_DFD;
	}

	bpf_map_delete_elem(&exec_inflight, &tid);
	__builtin_memset(&r->tail_len, 0, EXEC_FIXED - __builtin_offsetof(struct exec_rec, tail_len));
	r->old_pid = 0;
	r->err = (__s32)-ctx->ret;
	r->fname_len = fname_len;
	r->argv_len = an;
	r->cwd_len = cl;
	r->flags = flags;
	emit_exec(b, K_EXEC_FAILED, EXEC_FIXED + fname_len + an + cl);
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
