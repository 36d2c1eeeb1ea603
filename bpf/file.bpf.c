// SPDX-License-Identifier: GPL-2.0
/* File domain: write-intent opens, deduplicated read-only opens, unlink/rmdir,
 * rename, chmod, truncate, link/symlink, mkdir.
 *
 * Pattern: sys_enter copies the user path string(s) into a tid-keyed LRU stash
 * (copying at enter closes the TOCTOU window where another thread rewrites the
 * buffer; if the copy faults, sys_exit copies again after the kernel paged it in);
 * sys_exit decides on the result and emits one variable-size record.
 *
 * Record (kinds K_FILE_WRITE_OPEN / K_FILE_READ / K_FILE_OP, same layout, mirrored in
 * logira/probes/decode_file.py):
 *   struct rec_hdr                       64 bytes
 *   s64 ret; u32 flags; s32 mode;        ret = fd/0/-errno, mode -1 when n/a
 *   u8 op; u8 sc; u8 pflags; u8 pad;     op = index into FILE_OPS, sc = FSC_*
 *   u16 len[4]; u32 pad;                 byte lengths of base1, raw1, base2, raw2
 *   char data[]                          the four strings back to back, no NULs
 * path = base1 joined with raw1 (raw1 absolute or empty -> used as is / base alone);
 * user space joins and normalises lexically. symlink's path1 is the target string as
 * given (base1 empty). pflags: bit0/1 = path truncated/unresolved, bit2/3 = same for path2.
 */
#include "common.h"
#include "path.h"

#define K_FILE_WRITE_OPEN 16
#define K_FILE_READ 17
#define K_FILE_OP 18

/* op: index into logira.model.kernel.FILE_OPS */
enum { FOP_CREATE, FOP_MODIFY, FOP_READ, FOP_DELETE, FOP_RMDIR, FOP_RENAME, FOP_CHMOD, FOP_TRUNCATE,
       FOP_LINK, FOP_SYMLINK, FOP_MKDIR };

/* sc: syscall, mirrored by SYSCALLS in decode_file.py */
enum { FSC_OPEN = 1, FSC_OPENAT, FSC_OPENAT2, FSC_CREAT, FSC_UNLINK, FSC_UNLINKAT, FSC_RMDIR,
       FSC_RENAME, FSC_RENAMEAT, FSC_RENAMEAT2, FSC_CHMOD, FSC_FCHMOD, FSC_FCHMODAT,
       FSC_FCHMODAT2, FSC_TRUNCATE, FSC_FTRUNCATE, FSC_LINK, FSC_LINKAT, FSC_SYMLINK,
       FSC_SYMLINKAT, FSC_MKDIR, FSC_MKDIRAT };

#define PF_TRUNC1 1
#define PF_UNRES1 2
#define PF_TRUNC2 4
#define PF_UNRES2 8

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_DIRECTORY 0200000
#define O_PATH 010000000
#define O_TMPFILE (020000000 | O_DIRECTORY)
#define WRITE_INTENT (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define FMODE_CREATED 0x100000 /* include/linux/fs.h: (__force fmode_t)(1 << 20) */
#define S_IFMT 0170000
#define S_IFDIR 0040000
#define EPERM 1
#define EACCES 13
#define EROFS 30

#define STR_MAX 4096 /* PATH_MAX: one raw string or one resolved path */
#define FIXED_SIZE 96
#define DATA_SIZE (5 * STR_MAX) /* 4 strings; positions masked to 4*STR_MAX-1 */

struct file_rec {
	struct rec_hdr h;
	__s64 ret;
	__u32 flags;
	__s32 mode;
	__u8 op;
	__u8 sc;
	__u8 pflags;
	__u8 pad;
	__u16 len[4];
	__u32 pad2;
	char data[DATA_SIZE];
};

/* What sys_enter saw, waiting for sys_exit. */
struct pending {
	__u64 uptr[2];  /* user pointers of raw1/raw2, for the copy-again at exit */
	__u64 flags;
	__s32 mode;
	__s32 dfd[2];   /* base of raw1/raw2: AT_FDCWD or a dirfd */
	__s32 fd;       /* fchmod/ftruncate: the fd whose path is the subject */
	__u16 len[2];   /* copied length without NUL; 0xffff = copy failed */
	__u8 op;
	__u8 sc;
	__u8 nraw;      /* raw strings used: 0 (fd op), 1 or 2 */
	__u8 raw1_literal; /* raw1 is a symlink target: kept as given, never resolved */
	__u8 trunc[2];
	__u8 active;    /* 1 from sys_enter to sys_exit; the entry itself stays (see stash()) */
	char raw[2][STR_MAX];
};

#define LEN_FAILED 0xffff

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024); /* threads inside a traced file syscall at once */
	__type(key, __u32);
	__type(value, struct pending);
} file_pending SEC(".maps");

/* Read-only opens waiting for their result: tiny, no strings (failures re-read at exit). */
struct pending_read {
	__u64 uptr;
	__u64 flags;
	__s32 dfd;
	__u8 sc;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct pending_read);
} read_pending SEC(".maps");

/* (process image, file) pairs whose read has been reported. start_time tells a reused
 * pid apart; self_exec_id changes at every exec, so a new program's reads show again. */
struct read_key {
	__u64 start_time;
	__u64 exec_id;
	__u64 ino;
	__u32 tgid;
	__u32 dev;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct read_key);
	__type(value, __u8);
} read_seen SEC(".maps");

/* Per-CPU scratch: one record being built, one stash being filled. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_rec);
} file_rec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending);
} file_pending_scratch SEC(".maps");

/* Upper bound of the stashes in flight: read_pending entries + file_pending entries with
 * `active` set. Every open exit of every process on the host checks it first: while it is
 * 0 (no tracked thread inside a traced file syscall) the exit leaves after one load instead
 * of two LRU lookups (~100 ns of the exit's cost per open). Kept >= the true count: +1 only
 * when an insert created a read entry or a file entry became active, -1 only when a delete
 * removed one or an exit cleared `active`; LRU evictions leave it too high, which is safe. */
__u64 pending_hint = 0;

/* Insert a tid-keyed stash entry, counting new entries in pending_hint; 0 or -errno. */
static __always_inline long stash_put(void *map, __u32 *tid, void *val)
{
	long err = bpf_map_update_elem(map, tid, val, BPF_NOEXIST);
	if (!err) {
		__sync_fetch_and_add(&pending_hint, 1);
		return 0;
	}
	/* a stale entry of this tid (e.g. from before the probes were attached): replace it */
	return bpf_map_update_elem(map, tid, val, BPF_EXIST);
}

static __always_inline void stash_drop(void *map, __u32 *tid)
{
	if (!bpf_map_delete_elem(map, tid))
		__sync_fetch_and_add(&pending_hint, -1);
}

static __always_inline int keep_result(long ret)
{
	return ret >= 0 || ret == -EACCES || ret == -EPERM || ret == -EROFS;
}

static __always_inline __u32 tid_key(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

static __always_inline void copy_user(struct pending *p, int i, const char *uptr)
{
	long n = -1;
	i &= 1;
	p->uptr[i] = (__u64)uptr;
	p->trunc[i] = 0;
	if (uptr)
		n = bpf_probe_read_user_str(p->raw[i], STR_MAX, uptr);
	if (n <= 0) {
		p->len[i] = LEN_FAILED;
		return;
	}
	if (n >= STR_MAX)
		p->trunc[i] = 1; /* the kernel refuses it too (ENAMETOOLONG) */
	p->len[i] = n - 1;
}

/* Stash a path operation. raw2 may be NULL (nraw = 1) and raw1 NULL for fd ops. */
static __always_inline int stash(__u8 sc, __u8 op, int dfd1, const char *raw1, int dfd2,
				 const char *raw2, __u8 nraw, __u64 flags, __s32 mode, int fd)
{
	__u32 tid = tid_key();
	struct pending *p = bpf_map_lookup_elem(&file_pending, &tid);
	if (!p) {
		/* The thread's first traced file syscall (or its entry was evicted): create the
		 * entry once. Later syscalls of the thread fill it in place and the exit only
		 * clears `active`: no 8 KiB value copy into the map and no delete per event. */
		__u32 zero = 0;
		struct pending *z = bpf_map_lookup_elem(&file_pending_scratch, &zero);
		if (z) {
			z->active = 0;
			bpf_map_update_elem(&file_pending, &tid, z, BPF_NOEXIST);
		}
		p = bpf_map_lookup_elem(&file_pending, &tid);
		if (!p) {
			/* a failed stash loses the event: count it where the loader reads drops */
			count_kind(&drops, sc <= FSC_CREAT ? K_FILE_WRITE_OPEN : K_FILE_OP);
			return 0;
		}
	}
	if (!p->active) {
		p->active = 1;
		__sync_fetch_and_add(&pending_hint, 1);
	}
	p->sc = sc;
	p->op = op;
	p->flags = flags;
	p->mode = mode;
	p->fd = fd;
	p->nraw = nraw;
	p->raw1_literal = sc == FSC_SYMLINK || sc == FSC_SYMLINKAT;
	p->dfd[0] = dfd1;
	p->dfd[1] = dfd2;
	p->len[0] = 0;
	p->len[1] = 0;
	if (nraw >= 1)
		copy_user(p, 0, raw1);
	if (nraw >= 2)
		copy_user(p, 1, raw2);
	return 0;
}

/* Append the path of an fd (or cwd when fd == AT_FDCWD) at pos; returns bytes added. */
static __always_inline __u32 put_base(struct file_rec *r, __u32 pos, int fd, __u8 *pflags,
				      __u8 trunc_bit, __u8 unres_bit)
{
	struct path_str *dst = (struct path_str *)(r->data + (pos & (4 * STR_MAX - 1)));
	__u64 pp = path_ptr_of_fd(fd);
	int n = pp ? path_str_of(pp, dst) : -EBADF;

	if (n < 0) {
		*pflags |= unres_bit;
		return 0;
	}
	if (n & PATH_STR_TRUNCATED)
		*pflags |= trunc_bit;
	n &= PATH_STR_TRUNCATED - 1;
	if (n <= 1) {
		*pflags |= unres_bit;
		return 0;
	}
	return n - 1;
}

/* Append raw string i of the stash (copying it again from user memory if the enter copy
 * failed); returns bytes added. */
static __always_inline __u32 put_raw(struct file_rec *r, __u32 pos, struct pending *p, int i,
				     __u8 *pflags, __u8 trunc_bit, __u8 unres_bit)
{
	char *dst = r->data + (pos & (4 * STR_MAX - 1));
	__u32 n;

	i &= 1;
	if (p->len[i] == LEN_FAILED) {
		long m = -1;
		if (p->uptr[i])
			m = bpf_probe_read_user_str(dst, STR_MAX, (const char *)p->uptr[i]);
		if (m <= 0) {
			*pflags |= unres_bit;
			return 0;
		}
		if (m >= STR_MAX)
			*pflags |= trunc_bit;
		return m - 1;
	}
	n = p->len[i];
	asm volatile("" : "+r"(n));
	n &= STR_MAX - 1;
	if (p->trunc[i])
		*pflags |= trunc_bit;
	if (bpf_probe_read_kernel(dst, n, p->raw[i])) {
		*pflags |= unres_bit;
		return 0;
	}
	return n;
}

static __always_inline int raw_is_absolute(struct pending *p, int i)
{
	i &= 1;
	if (p->len[i] == LEN_FAILED)
		return 0;
	return p->len[i] > 0 && p->raw[i][0] == '/';
}

static __always_inline struct file_rec *rec_begin(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&file_rec_scratch, &zero);
}

static __always_inline void rec_emit(struct file_rec *r, __u16 kind, __u32 pos)
{
	__u32 size = FIXED_SIZE + pos;
	asm volatile("" : "+r"(size));
	size &= 0x7fff;
	if (size > sizeof(*r))
		return;
	fill_hdr(&r->h, kind, size);
	output_rec(r, size, kind, 0);
}

/* Emit one path operation from its stash entry. `lost_kind`: when a tracked task has no
 * entry, its enter stashed one that the LRU evicted (or the probes attached mid-syscall):
 * count it as a drop so it is not lost silently. Only callers whose enter always stashes
 * for tracked tasks pass a kind (not the open exits: read-only/O_PATH opens differ). */
static __always_inline int finish(long ret, __u32 lost_kind)
{
	__u32 tid = tid_key();
	struct pending *p = pending_hint ? bpf_map_lookup_elem(&file_pending, &tid) : NULL;
	if (!p || !p->active) {
		if (lost_kind && is_tracked())
			count_kind(&drops, lost_kind);
		return 0;
	}
	if (!keep_result(ret))
		goto out;
	struct file_rec *r = rec_begin();
	if (!r)
		goto out;

	__u16 kind = K_FILE_OP;
	__u8 op = p->op;
	__u8 pf = 0;
	__u32 pos = 0, n;
	int is_open = p->sc <= FSC_CREAT;

	r->ret = ret;
	r->flags = (__u32)p->flags;
	r->mode = p->mode;
	r->sc = p->sc;
	r->len[0] = r->len[1] = r->len[2] = r->len[3] = 0;

	if (is_open) {
		kind = K_FILE_WRITE_OPEN;
		op = FOP_MODIFY;
	}
	int done = 0;
	if (is_open && ret >= 0) {
		/* the file actually opened, symlinks followed */
		struct file *f = fd_file((int)ret);
		if (f && (BPF_CORE_READ(f, f_mode) & FMODE_CREATED))
			op = FOP_CREATE;
		n = put_base(r, pos, (int)ret, &pf, PF_TRUNC1, PF_UNRES1);
		if (!(pf & PF_UNRES1)) {
			r->len[0] = n;
			pos += n;
			done = 1;
		} else {
			pf = 0; /* cannot happen for a fresh fd; fall back to the raw string */
		}
	} else if (p->nraw == 0) {
		/* fchmod / ftruncate: the subject is the fd */
		n = put_base(r, pos, p->fd, &pf, PF_TRUNC1, PF_UNRES1);
		r->len[0] = n;
		pos += n;
		done = 1;
	}
	if (!done) {
		if (!p->raw1_literal && !raw_is_absolute(p, 0)) {
			n = put_base(r, pos, p->dfd[0], &pf, PF_TRUNC1, PF_UNRES1);
			r->len[0] = n;
			pos += n;
		}
		n = put_raw(r, pos, p, 0, &pf, PF_TRUNC1, PF_UNRES1);
		r->len[1] = n;
		pos += n;
		if (p->nraw >= 2) {
			if (!raw_is_absolute(p, 1)) {
				n = put_base(r, pos, p->dfd[1], &pf, PF_TRUNC2, PF_UNRES2);
				r->len[2] = n;
				pos += n;
			}
			n = put_raw(r, pos, p, 1, &pf, PF_TRUNC2, PF_UNRES2);
			r->len[3] = n;
			pos += n;
		}
	}
	r->op = op;
	r->pflags = pf;
	rec_emit(r, kind, pos);
out:
	p->active = 0;
	__sync_fetch_and_add(&pending_hint, -1);
	return 0;
}

/* ---- opens ---------------------------------------------------------------------- */

static __always_inline int open_enter(__u8 sc, int dfd, const char *uptr, __u64 flags, __u64 mode)
{
	if (flags & O_PATH)
		return 0; /* the kernel ignores every other flag: no read, no write, no create */
	if (flags & WRITE_INTENT) {
		if (!is_tracked())
			return 0;
		__s32 m = (flags & (O_CREAT | O_TMPFILE)) ? (__s32)(mode & 07777) : -1;
		return stash(sc, FOP_MODIFY, dfd, uptr, 0, NULL, 1, flags, m, -1);
	}
	if (!is_tracked())
		return 0;
	struct pending_read pr = { .uptr = (__u64)uptr, .flags = flags, .dfd = dfd, .sc = sc };
	__u32 tid = tid_key();
	if (stash_put(&read_pending, &tid, &pr))
		count_kind(&drops, K_FILE_READ);
	return 0;
}

/* Read-only open result: report once per (process, file); failures EACCES/EPERM always. */
static __always_inline int read_exit(long ret)
{
	__u32 tid = tid_key();
	struct pending_read *pr = bpf_map_lookup_elem(&read_pending, &tid);
	if (!pr)
		return 0;
	struct pending_read q = *pr;
	stash_drop(&read_pending, &tid);
	if (!keep_result(ret) || ret == -EROFS)
		return 0;

	struct file_rec *r = rec_begin();
	if (!r)
		return 0;
	__u8 pf = 0;
	__u32 pos = 0, n;

	if (ret >= 0) {
		struct file *f = fd_file((int)ret);
		if (!f)
			return 0;
		struct inode *ino = BPF_CORE_READ(f, f_inode);
		if ((BPF_CORE_READ(ino, i_mode) & S_IFMT) == S_IFDIR)
			return 0; /* directory listings are not file reads */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct read_key k = {
			.start_time = BPF_CORE_READ(task, group_leader, start_time),
			.exec_id = BPF_CORE_READ(task, self_exec_id),
			.ino = BPF_CORE_READ(ino, i_ino),
			.tgid = bpf_get_current_pid_tgid() >> 32,
			.dev = BPF_CORE_READ(ino, i_sb, s_dev),
		};
		__u8 one = 1;
		if (bpf_map_update_elem(&read_seen, &k, &one, BPF_NOEXIST))
			return 0; /* already reported for this process */
		n = put_base(r, pos, (int)ret, &pf, PF_TRUNC1, PF_UNRES1);
		r->len[0] = n;
		r->len[1] = 0;
		pos += n;
	} else {
		/* denied: the path as asked, resolved against cwd/dirfd; the kernel has paged
		 * the string in by now (getname), so the copy at exit succeeds */
		char c = 0;
		long m = -1;
		r->len[0] = 0;
		if (q.uptr && !bpf_probe_read_user(&c, 1, (const void *)q.uptr) && c != '/') {
			n = put_base(r, pos, q.dfd, &pf, PF_TRUNC1, PF_UNRES1);
			r->len[0] = n;
			pos += n;
		}
		if (q.uptr)
			m = bpf_probe_read_user_str(r->data + (pos & (STR_MAX - 1)), STR_MAX,
						    (const char *)q.uptr);
		if (m <= 0) {
			pf |= PF_UNRES1;
			m = 1;
		}
		if (m >= STR_MAX)
			pf |= PF_TRUNC1;
		n = m - 1;
		r->len[1] = n;
		pos += n;
	}
	r->len[2] = r->len[3] = 0;
	r->ret = ret;
	r->flags = (__u32)q.flags;
	r->mode = -1;
	r->op = FOP_READ;
	r->sc = q.sc;
	r->pflags = pf;
	rec_emit(r, K_FILE_READ, pos);
	return 0;
}

static __always_inline int open_exit(long ret)
{
	if (!pending_hint)
		return 0; /* no stash anywhere: the common case for untracked processes */
	/* a tid has at most one of the two stashes: try the write one first */
	__u32 tid = tid_key();
	struct pending *p = bpf_map_lookup_elem(&file_pending, &tid);
	if (p && p->active)
		return finish(ret, 0);
	return read_exit(ret);
}

SEC("tracepoint/syscalls/sys_enter_open")
int file_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(FSC_OPEN, AT_FDCWD, (const char *)ctx->args[0], (__u32)ctx->args[1],
			  ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int file_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(FSC_OPENAT, (int)ctx->args[0], (const char *)ctx->args[1],
			  (__u32)ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int file_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};
	/* the kernel copies open_how too; if our read faults treat it as a write open so
	 * it is not lost (the result tells what happened) */
	if (bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]))
		how.flags = O_WRONLY;
	return open_enter(FSC_OPENAT2, (int)ctx->args[0], (const char *)ctx->args[1], how.flags,
			  how.mode);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int file_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(FSC_CREAT, AT_FDCWD, (const char *)ctx->args[0],
			  O_CREAT | O_WRONLY | O_TRUNC, ctx->args[1]);
}

/* One program for the three open exits (every sys_exit_* tracepoint has the same layout):
 * the loader attaches it to sys_exit_openat and sys_exit_openat2 as well
 * (logira/probes/attach.py). The kernel verifies each loaded program separately, so one
 * program instead of three saves two verifications of open_exit() at start-up. */
SEC("tracepoint/syscalls/sys_exit_open")
int file_exit_open(struct trace_event_raw_sys_exit *ctx) { return open_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_exit_creat")
int file_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return finish(ctx->ret, K_FILE_WRITE_OPEN);
}

/* ---- path operations ------------------------------------------------------------- */

/* The exit of every path operation below: finish() decides from the stash, which knows the
 * syscall. ONE program attached to each sys_exit_<op> (the loader's list in
 * logira/probes/attach.py names them), because each loaded program is verified on its own
 * (~10 ms each for finish(): 19 copies were ~190 ms of start-up). */
SEC("tracepoint/syscalls/sys_exit_unlink")
int file_exit_op(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret, K_FILE_OP); }

#define ENTER(name) \
	SEC("tracepoint/syscalls/sys_enter_" #name) \
	int file_enter_##name(struct trace_event_raw_sys_enter *ctx)

#define A(i) (ctx->args[i])
#define S(i) ((const char *)ctx->args[i])
#define FD(i) ((int)ctx->args[i])

ENTER(unlink)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_UNLINK, FOP_DELETE, AT_FDCWD, S(0), 0, NULL, 1, 0, -1, -1);
}

ENTER(unlinkat)
{
	if (!is_tracked())
		return 0;
	__u32 fl = (__u32)A(2);
	return stash(FSC_UNLINKAT, (fl & AT_REMOVEDIR) ? FOP_RMDIR : FOP_DELETE, FD(0), S(1), 0,
		     NULL, 1, fl, -1, -1);
}

ENTER(rmdir)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RMDIR, FOP_RMDIR, AT_FDCWD, S(0), 0, NULL, 1, 0, -1, -1);
}

ENTER(rename)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RENAME, FOP_RENAME, AT_FDCWD, S(0), AT_FDCWD, S(1), 2, 0, -1, -1);
}

ENTER(renameat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RENAMEAT, FOP_RENAME, FD(0), S(1), FD(2), S(3), 2, 0, -1, -1);
}

ENTER(renameat2)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RENAMEAT2, FOP_RENAME, FD(0), S(1), FD(2), S(3), 2, (__u32)A(4), -1, -1);
}

ENTER(chmod)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_CHMOD, FOP_CHMOD, AT_FDCWD, S(0), 0, NULL, 1, 0, (__u16)A(1) & 07777, -1);
}

ENTER(fchmod)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FCHMOD, FOP_CHMOD, 0, NULL, 0, NULL, 0, 0, (__u16)A(1) & 07777, FD(0));
}

ENTER(fchmodat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FCHMODAT, FOP_CHMOD, FD(0), S(1), 0, NULL, 1, 0, (__u16)A(2) & 07777, -1);
}

ENTER(fchmodat2)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FCHMODAT2, FOP_CHMOD, FD(0), S(1), 0, NULL, 1, (__u32)A(3),
		     (__u16)A(2) & 07777, -1);
}

ENTER(truncate)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_TRUNCATE, FOP_TRUNCATE, AT_FDCWD, S(0), 0, NULL, 1, 0, -1, -1);
}

ENTER(ftruncate)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FTRUNCATE, FOP_TRUNCATE, 0, NULL, 0, NULL, 0, 0, -1, FD(0));
}

ENTER(link)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_LINK, FOP_LINK, AT_FDCWD, S(0), AT_FDCWD, S(1), 2, 0, -1, -1);
}

ENTER(linkat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_LINKAT, FOP_LINK, FD(0), S(1), FD(2), S(3), 2, (__u32)A(4), -1, -1);
}

ENTER(symlink)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_SYMLINK, FOP_SYMLINK, AT_FDCWD, S(0), AT_FDCWD, S(1), 2, 0, -1, -1);
}

ENTER(symlinkat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_SYMLINKAT, FOP_SYMLINK, AT_FDCWD, S(0), FD(1), S(2), 2, 0, -1, -1);
}

ENTER(mkdir)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_MKDIR, FOP_MKDIR, AT_FDCWD, S(0), 0, NULL, 1, 0, (__u16)A(1) & 07777, -1);
}

ENTER(mkdirat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_MKDIRAT, FOP_MKDIR, FD(0), S(1), 0, NULL, 1, 0, (__u16)A(2) & 07777, -1);
}
