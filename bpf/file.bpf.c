// SPDX-License-Identifier: GPL-2.0
/* File domain: write-intent opens, deduplicated read-only opens, unlink/rmdir,
 * rename, chmod, truncate, link/symlink, mkdir.
 *
 * Pattern: sys_enter copies the user path string(s) into per-TASK storage
 * (BPF_MAP_TYPE_TASK_STORAGE: one entry per thread, freed with the thread, never evicted
 * by other threads, so an agent cannot push its own pending operation out of a shared
 * table); sys_exit decides on the result and emits one variable-size record. A
 * successful open is recorded from the returned fd alone (path, mode bits, dev, ino of
 * the struct file; flags from the syscall registers when no stash exists), so it needs
 * no entry state at all; failed opens and path operations need the entry copy, and a
 * tracked exit that finds none counts a drop of its kind. Copying at enter closes most of
 * the TOCTOU window; exit copies the user string again and flags the path CHANGED when it
 * differs (another thread rewrote it during the syscall: the kernel may have used
 * either). Absolute aliases of an fd, the cwd or the root (/proc/self/fd/N, /dev/fd/N,
 * /proc/thread-self/fd/N, /proc/<own pid>/fd/N, /proc/self/cwd, /proc/self/root) are
 * resolved here from the task's own tables (exact).
 *
 * Record (kinds K_FILE_WRITE_OPEN / K_FILE_READ / K_FILE_OP, same layout, mirrored in
 * logira/probes/decode_file.py):
 *   struct rec_hdr                       64 bytes
 *   s64 ret; u32 flags; s32 mode;        ret = fd/0/-errno, mode -1 when n/a
 *   u8 op; u8 sc; u8 pflags; u8 ident;   op = index into FILE_OPS, sc = FSC_*, ident bit0: dev/ino
 *                                        set; bit1/2: raw1/raw2 could only be read at exit (the
 *                                        page was not resident at entry: the caller may have
 *                                        rewritten it after the kernel's copy)
 *   u16 len[4];                          byte lengths of base1, raw1, base2, raw2
 *   u16 alias[2];                        bytes at the start of raw1/raw2 that an alias took
 *   u64 ino; u32 dev; u32 mnt_ns;        inode of the file acted on (ident = 1), dev = s_dev;
 *                                        mnt_ns = inode number of the task's mount namespace
 *   char data[]                          the four strings back to back, no NULs
 * path = base1 joined with raw1 (raw1 absolute or empty -> used as is / base alone);
 * user space joins and normalises lexically. symlink's path1 is the target string as
 * given (base1 empty). pflags: bit0/1 = path truncated/unresolved, bit2/3 = same for path2,
 * bit4/5 = raw1/raw2 changed during the syscall, bit6/7 = raw1/raw2 began with an alias
 * (alias[i] bytes) that base1/base2 resolves: real path = base + raw[alias:], literal = raw.
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
       FSC_SYMLINKAT, FSC_MKDIR, FSC_MKDIRAT, FSC_MKNOD, FSC_MKNODAT };

#define PF_TRUNC1 1
#define PF_UNRES1 2
#define PF_TRUNC2 4
#define PF_UNRES2 8
#define PF_CHANGED1 16
#define PF_CHANGED2 32
#define PF_ALIAS1 64
#define PF_ALIAS2 128

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
#define FMODE_WRITE 0x2
#define FMODE_CREATED 0x100000 /* include/linux/fs.h: (__force fmode_t)(1 << 20) */
#define S_IFMT 0170000
#define S_IFDIR 0040000
#define EPERM 1
#define EACCES 13
#define EROFS 30

#define STR_MAX 4096 /* PATH_MAX: one raw string or one resolved path */
#define FIXED_SIZE 112
#define DATA_SIZE (5 * STR_MAX) /* 4 strings; positions masked to 4*STR_MAX-1 */

struct file_rec {
	struct rec_hdr h;
	__s64 ret;
	__u32 flags;
	__s32 mode;
	__u8 op;
	__u8 sc;
	__u8 pflags;
	__u8 ident;
	__u16 len[4];
	__u16 alias[2];
	__u64 ino;
	__u32 dev;
	__u32 mnt_ns;
	char data[DATA_SIZE];
};

/* What sys_enter saw, waiting for sys_exit (one per thread, in task storage). */
struct pending {
	__u64 uptr[2];  /* user pointers of raw1/raw2, for the copy-again at exit */
	__u64 flags;
	__u64 nr;       /* syscall number at enter: an exit only trusts a stash of its own syscall */
	__s32 mode;
	__s32 dfd[2];   /* base of raw1/raw2: AT_FDCWD or a dirfd */
	__s32 fd;       /* fchmod/ftruncate: the fd whose path is the subject */
	__u16 len[2];   /* copied length without NUL; 0xffff = copy failed */
	__u8 op;
	__u8 sc;
	__u8 nraw;      /* raw strings used: 0 (fd op), 1 or 2 */
	__u8 raw1_literal; /* raw1 is a symlink target: kept as given, never resolved */
	__u8 trunc[2];
	__u8 active;    /* 1 from sys_enter to sys_exit */
	char raw[2][STR_MAX];
};

#define LEN_FAILED 0xffff

/* Per-task, not per-tid-in-a-shared-table: nothing another thread does can evict it, and
 * the kernel frees it with the task (no stale entry after tid reuse). A failed create
 * (memory) is counted as a drop at the exit that finds no entry. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending);
} file_pending SEC(".maps");

/* (process image, file) pairs whose read has been reported. start_time tells a reused
 * pid apart; self_exec_id changes at every exec, so a new program's reads show again.
 * An evicted pair is only reported again, never lost. */
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

/* Per-CPU scratch: one record being built, one user string re-read for the TOCTOU check. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_rec);
} file_rec_scratch SEC(".maps");

struct str_buf {
	char b[STR_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct str_buf);
} file_cmp_scratch SEC(".maps");

static __always_inline int keep_result(long ret)
{
	return ret >= 0 || ret == -EACCES || ret == -EPERM || ret == -EROFS;
}

static __always_inline struct pt_regs *cur_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* Syscall number of the current syscall (saved at entry; the same at exit). */
static __always_inline __u64 cur_nr(void)
{
#ifdef __TARGET_ARCH_x86
	struct pt_regs *regs = cur_regs();
	return regs ? regs->orig_ax : 0;
#else
	return 0;
#endif
}

/* The thread's stash if it holds the entry of the syscall now exiting, else NULL. */
static __always_inline struct pending *stash_of_this_syscall(void)
{
	struct pending *p = bpf_task_storage_get(&file_pending, bpf_get_current_task_btf(), 0, 0);
	if (!p || !p->active)
		return NULL;
	p->active = 0;
	if (p->nr != cur_nr())
		return NULL; /* left by a syscall whose exit we did not see (probes detached) */
	return p;
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

/* Stash a file syscall for its exit. raw2 may be NULL (nraw = 1) and raw1 NULL for fd ops.
 * `lost_kind` is counted when no storage could be created (memory). */
static __always_inline int stash(__u8 sc, __u8 op, int dfd1, const char *raw1, int dfd2,
				 const char *raw2, __u8 nraw, __u64 flags, __s32 mode, int fd,
				 __u32 lost_kind)
{
	struct pending *p = bpf_task_storage_get(&file_pending, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p) {
		count_kind(&drops, lost_kind);
		return 0;
	}
	p->active = 1;
	p->nr = cur_nr();
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

/* Append the path of a kernel struct path at pos; returns bytes added. */
static __always_inline __u32 put_path(struct file_rec *r, __u32 pos, __u64 pp, __u8 *pflags,
				      __u8 trunc_bit, __u8 unres_bit)
{
	struct path_str *dst = (struct path_str *)(r->data + (pos & (4 * STR_MAX - 1)));
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

/* Append the path of an fd (or cwd when fd == AT_FDCWD) at pos; returns bytes added. */
static __always_inline __u32 put_base(struct file_rec *r, __u32 pos, int fd, __u8 *pflags,
				      __u8 trunc_bit, __u8 unres_bit)
{
	return put_path(r, pos, path_ptr_of_fd(fd), pflags, trunc_bit, unres_bit);
}

/* ---- aliases: /proc/self/fd/N, /dev/fd/N, /proc/self/cwd, ... -------------------- */

enum { AL_NONE, AL_FD, AL_CWD, AL_ROOT };

struct alias {
	int kind;
	int fd;
	__u32 len; /* bytes of the raw string the alias covers */
};

static __always_inline int at(const char *s, __u32 len, __u32 i, char c)
{
	return i < len && s[i & (STR_MAX - 1)] == c;
}

/* the alias ends here: end of string or a '/' follows */
static __always_inline int ends(const char *s, __u32 len, __u32 i)
{
	return i == len || at(s, len, i, '/');
}

#define AT_STR(s, len, i, lit) at_str(s, len, i, lit, sizeof(lit) - 1)
static __always_inline int at_str(const char *s, __u32 len, __u32 i, const char *lit, __u32 n)
{
#pragma unroll
	for (__u32 k = 0; k < 16; k++) {
		if (k >= n)
			break;
		if (!at(s, len, i + k, lit[k]))
			return 0;
	}
	return 1;
}

/* decimal number at i (1..10 digits); returns digits consumed, 0 if none */
static __always_inline __u32 number_at(const char *s, __u32 len, __u32 i, __u64 *val)
{
	__u64 v = 0;
	__u32 k;
#pragma unroll
	for (k = 0; k < 10; k++) {
		if (i + k >= len)
			break;
		char c = s[(i + k) & (STR_MAX - 1)];
		if (c < '0' || c > '9')
			break;
		v = v * 10 + (c - '0');
	}
	*val = v;
	return k;
}

/* After "/proc/<self>/": fd/N, cwd or root. */
static __always_inline void proc_tail(const char *s, __u32 len, __u32 i, struct alias *a)
{
	__u64 v;
	if (AT_STR(s, len, i, "fd/")) {
		__u32 d = number_at(s, len, i + 3, &v);
		if (d && v < 0x7fffffff && ends(s, len, i + 3 + d)) {
			a->kind = AL_FD;
			a->fd = (int)v;
			a->len = i + 3 + d;
		}
	} else if (AT_STR(s, len, i, "cwd") && ends(s, len, i + 3)) {
		a->kind = AL_CWD;
		a->len = i + 3;
	} else if (AT_STR(s, len, i, "root") && ends(s, len, i + 4)) {
		a->kind = AL_ROOT;
		a->len = i + 4;
	}
}

/* Which alias (if any) an absolute raw string starts with. Only the task's own tables are
 * used: /proc/<other pid>/... is left to user space (resolved at receipt, marked so). */
static __always_inline void alias_of(const char *s, __u32 len, struct alias *a)
{
	__u64 v;
	a->kind = AL_NONE;
	if (AT_STR(s, len, 0, "/dev/fd/")) {
		__u32 d = number_at(s, len, 8, &v);
		if (d && v < 0x7fffffff && ends(s, len, 8 + d)) {
			a->kind = AL_FD;
			a->fd = (int)v;
			a->len = 8 + d;
		}
		return;
	}
	if (!AT_STR(s, len, 0, "/proc/"))
		return;
	if (AT_STR(s, len, 6, "self/")) {
		proc_tail(s, len, 11, a);
		return;
	}
	if (AT_STR(s, len, 6, "thread-self/")) {
		proc_tail(s, len, 18, a);
		return;
	}
	__u32 d = number_at(s, len, 6, &v);
	if (d && at(s, len, 6 + d, '/')) {
		__u64 pt = bpf_get_current_pid_tgid();
		if (v == (pt >> 32) || v == (__u32)pt)
			proc_tail(s, len, 7 + d, a);
	}
}

static __always_inline __u64 alias_path_ptr(struct alias *a)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs;
	if (a->kind == AL_FD)
		return path_ptr_of_fd(a->fd);
	fs = BPF_CORE_READ(task, fs);
	if (!fs)
		return 0;
	if (a->kind == AL_CWD)
		return (__u64)__builtin_preserve_access_index(&fs->pwd);
	return (__u64)__builtin_preserve_access_index(&fs->root);
}

/* ---- TOCTOU check: did the user string change while the kernel used it? ----------- */

struct cmp_ctx {
	const char *a;
	const char *b;
	__u32 words;
	int diff;
};

static long cmp_step(__u32 i, void *arg)
{
	struct cmp_ctx *c = arg;
	__u64 x, y;
	if (i >= c->words)
		return 1;
	__u32 o = (i * 8) & (STR_MAX - 8);
	if (bpf_probe_read_kernel(&x, 8, c->a + o) || bpf_probe_read_kernel(&y, 8, c->b + o)) {
		c->diff = 1;
		return 1;
	}
	if (x != y) {
		c->diff = 1;
		return 1;
	}
	return 0;
}

/* 1 if raw i of the stash differs from what user memory holds now. */
static __always_inline int raw_changed(struct pending *p, int i)
{
	__u32 zero = 0;
	struct str_buf *now = bpf_map_lookup_elem(&file_cmp_scratch, &zero);
	i &= 1;
	if (!now || p->len[i] == LEN_FAILED || p->trunc[i] || !p->uptr[i])
		return 0;
	long m = bpf_probe_read_user_str(now->b, STR_MAX, (const char *)p->uptr[i]);
	if (m <= 0)
		return 0; /* unmapped meanwhile: nothing to compare with */
	if (m - 1 != p->len[i])
		return 1;
	/* compare whole words; the NUL and the zeroed tail of a fresh read make the last
	 * partial word comparable only up to the NUL, so compare len+1 bytes rounded down and
	 * the remainder byte by byte */
	__u32 n = p->len[i];
	struct cmp_ctx c = { .a = p->raw[i], .b = now->b, .words = n / 8, .diff = 0 };
	bpf_loop(STR_MAX / 8, cmp_step, &c, 0);
	if (c.diff)
		return 1;
#pragma unroll
	for (__u32 k = 0; k < 8; k++) {
		__u32 o = (n / 8) * 8 + k;
		if (o >= n)
			break;
		o &= STR_MAX - 1;
		if (p->raw[i][o] != now->b[o])
			return 1;
	}
	return 0;
}

/* Append raw string i of the stash (copying it again from user memory if the enter copy
 * failed); returns bytes added. */
#define ID_REREAD1 2
#define ID_REREAD2 4

static __always_inline __u32 put_raw(struct file_rec *r, __u32 pos, struct pending *p, int i,
				     __u8 *pflags, __u8 trunc_bit, __u8 unres_bit)
{
	char *dst = r->data + (pos & (4 * STR_MAX - 1));
	__u32 n;

	i &= 1;
	if (p->len[i] == LEN_FAILED) {
		long m = -1;
		r->ident |= i ? ID_REREAD2 : ID_REREAD1;
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
	/* which mount namespace the names are in: user space can only check paths of its own */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	r->mnt_ns = task->nsproxy->mnt_ns->ns.inum;
	fill_hdr(&r->h, kind, size);
	output_rec(r, size, kind, 0);
}

static __always_inline void set_ident(struct file_rec *r, struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	r->ino = BPF_CORE_READ(ino, i_ino);
	r->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	r->ident |= 1;
}

static __always_inline void rec_reset(struct file_rec *r)
{
	r->len[0] = r->len[1] = r->len[2] = r->len[3] = 0;
	r->alias[0] = r->alias[1] = 0;
	r->ino = 0;
	r->dev = 0;
	r->ident = 0;
}

/* One side (raw i, base dfd) of a path operation: [base][raw], alias-resolved. */
static __always_inline __u32 put_side(struct file_rec *r, __u32 pos, struct pending *p, int i,
				      __u8 *pf)
{
	__u8 tb = i ? PF_TRUNC2 : PF_TRUNC1, ub = i ? PF_UNRES2 : PF_UNRES1;
	__u32 start = pos, n;
	i &= 1;
	if (raw_is_absolute(p, i)) {
		struct alias a = {};
		alias_of(p->raw[i], p->len[i], &a);
		if (a.kind != AL_NONE) {
			__u8 sub = 0;
			n = put_path(r, pos, alias_path_ptr(&a), &sub, tb, ub);
			if (!(sub & ub)) {
				*pf |= sub | (i ? PF_ALIAS2 : PF_ALIAS1);
				r->len[i * 2] = n;
				r->alias[i] = a.len;
				pos += n;
			}
		}
	} else if (!(i == 0 && p->raw1_literal)) {
		n = put_base(r, pos, p->dfd[i], pf, tb, ub);
		r->len[i * 2] = n;
		pos += n;
	}
	n = put_raw(r, pos, p, i, pf, tb, ub);
	r->len[i * 2 + 1] = n;
	pos += n;
	if (raw_changed(p, i))
		*pf |= i ? PF_CHANGED2 : PF_CHANGED1;
	return pos - start;
}

/* Emit one path operation (or a failed open) from its stash entry. */
static __always_inline int emit_from_stash(struct pending *p, long ret, __u16 kind, __u8 op)
{
	struct file_rec *r = rec_begin();
	if (!r)
		return 0;
	__u8 pf = 0;
	__u32 pos = 0;

	rec_reset(r);
	r->ret = ret;
	r->flags = (__u32)p->flags;
	r->mode = p->mode;
	r->sc = p->sc;
	if (p->nraw == 0) {
		/* fchmod / ftruncate: the subject is the fd */
		struct file *f = fd_file(p->fd);
		pos += put_base(r, pos, p->fd, &pf, PF_TRUNC1, PF_UNRES1);
		r->len[0] = pos;
		if (f)
			set_ident(r, f);
	} else {
		pos += put_side(r, pos, p, 0, &pf);
		if (p->nraw >= 2)
			pos += put_side(r, pos, p, 1, &pf);
	}
	r->op = op;
	r->pflags = pf;
	rec_emit(r, kind, pos);
	return 0;
}

static __always_inline int finish(long ret)
{
	struct pending *p = stash_of_this_syscall();
	if (!p) {
		if (keep_result(ret) && is_tracked())
			count_kind(&drops, K_FILE_OP); /* entered without a stash: lost, counted */
		return 0;
	}
	if (!keep_result(ret))
		return 0;
	return emit_from_stash(p, ret, K_FILE_OP, p->op);
}

/* ---- opens ---------------------------------------------------------------------- */

static __always_inline int open_enter(__u8 sc, int dfd, const char *uptr, __u64 flags, __u64 mode)
{
	if (flags & O_PATH)
		return 0; /* the kernel ignores every other flag: no read, no write, no create */
	if (!is_tracked())
		return 0;
	__s32 m = (flags & (O_CREAT | O_TMPFILE)) ? (__s32)(mode & 07777) : -1;
	/* the path is only needed if the open fails: a success is recorded from its fd */
	return stash(sc, FOP_MODIFY, dfd, uptr, 0, NULL, 1, flags, m, -1,
		     (flags & WRITE_INTENT) ? K_FILE_WRITE_OPEN : K_FILE_READ);
}

/* Flags of the open now exiting, from the saved syscall registers (nothing the agent can
 * rewrite after entry: they are the values the kernel used). openat2's are in user memory:
 * the stash copy is used when there is one. */
static __always_inline int regs_open_args(__u8 *sc, __u64 *flags, __s32 *mode)
{
#ifdef __TARGET_ARCH_x86
	struct pt_regs *regs = cur_regs();
	if (!regs)
		return -1;
	switch (regs->orig_ax) {
	case 2: /* open(path, flags, mode) */
		*sc = FSC_OPEN;
		*flags = (__u32)regs->si;
		*mode = (__s32)(regs->dx & 07777);
		break;
	case 257: /* openat(dfd, path, flags, mode) */
		*sc = FSC_OPENAT;
		*flags = (__u32)regs->dx;
		*mode = (__s32)(regs->r10 & 07777);
		break;
	case 85: /* creat(path, mode) */
		*sc = FSC_CREAT;
		*flags = O_CREAT | O_WRONLY | O_TRUNC;
		*mode = (__s32)(regs->si & 07777);
		break;
	case 437: { /* openat2(dfd, path, how, size) */
		struct open_how how = {};
		*sc = FSC_OPENAT2;
		if (bpf_probe_read_user(&how, sizeof(how), (void *)regs->dx))
			how.flags = 0;
		*flags = how.flags;
		*mode = (__s32)(how.mode & 07777);
		break;
	}
	default:
		return -1;
	}
	if (!(*flags & (O_CREAT | O_TMPFILE)))
		*mode = -1;
	return 0;
#else
	return -1;
#endif
}

/* A successful open, from its fd: write intent -> create/modify (K_FILE_WRITE_OPEN), else a
 * read reported once per (process image, file). */
static __always_inline int open_success(long ret, __u8 sc, __u64 flags, __s32 mode)
{
	struct file *f = fd_file((int)ret);
	if (!f)
		return 0;
	__u32 fmode = BPF_CORE_READ(f, f_mode);
	int write = (flags & WRITE_INTENT) || (fmode & (FMODE_WRITE | FMODE_CREATED));
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	__u64 i_ino = BPF_CORE_READ(ino, i_ino);
	__u32 dev = BPF_CORE_READ(ino, i_sb, s_dev);
	__u16 kind = K_FILE_WRITE_OPEN;
	__u8 op = FOP_MODIFY;

	if (fmode & FMODE_CREATED)
		op = FOP_CREATE;
	if (!write) {
		if ((BPF_CORE_READ(ino, i_mode) & S_IFMT) == S_IFDIR)
			return 0; /* directory listings are not file reads */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct read_key k = {
			.start_time = BPF_CORE_READ(task, group_leader, start_time),
			.exec_id = BPF_CORE_READ(task, self_exec_id),
			.ino = i_ino,
			.tgid = bpf_get_current_pid_tgid() >> 32,
			.dev = dev,
		};
		__u8 one = 1;
		if (bpf_map_update_elem(&read_seen, &k, &one, BPF_NOEXIST))
			return 0; /* already reported for this process */
		kind = K_FILE_READ;
		op = FOP_READ;
		mode = -1;
	}
	struct file_rec *r = rec_begin();
	if (!r)
		return 0;
	__u8 pf = 0;
	rec_reset(r);
	__u32 pos = put_path(r, 0, (__u64)__builtin_preserve_access_index(&f->f_path), &pf,
			     PF_TRUNC1, PF_UNRES1);
	r->len[0] = pos;
	r->ino = i_ino;
	r->dev = dev;
	r->ident = 1;
	r->ret = ret;
	r->flags = (__u32)flags;
	r->mode = mode;
	r->sc = sc;
	r->op = op;
	r->pflags = pf;
	rec_emit(r, kind, pos);
	return 0;
}

static __always_inline int open_exit(long ret)
{
	struct pending *p = stash_of_this_syscall();
	if (ret >= 0) {
		if (p)
			return open_success(ret, p->sc, p->flags, p->mode);
		/* no entry state (untracked, or its storage could not be created): the fd
		 * and the registers say everything a success needs */
		__u8 sc;
		__u64 flags;
		__s32 mode;
		if (!is_tracked() || regs_open_args(&sc, &flags, &mode))
			return 0;
		if (flags & O_PATH)
			return 0;
		return open_success(ret, sc, flags, mode);
	}
	if (!keep_result(ret))
		return 0;
	if (!p) {
		if (is_tracked()) {
			__u8 sc;
			__u64 flags = O_WRONLY;
			__s32 mode;
			regs_open_args(&sc, &flags, &mode);
			if (!(flags & O_PATH))
				count_kind(&drops, (flags & WRITE_INTENT) ? K_FILE_WRITE_OPEN
									 : K_FILE_READ);
		}
		return 0;
	}
	/* denied: the path as asked (the entry copy), resolved against cwd/dirfd */
	if (p->flags & WRITE_INTENT)
		return emit_from_stash(p, ret, K_FILE_WRITE_OPEN, FOP_MODIFY);
	if (ret == -EROFS)
		return 0; /* a read-only open cannot fail with EROFS in a way worth reporting */
	return emit_from_stash(p, ret, K_FILE_READ, FOP_READ);
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
	 * a failure is not lost (the result tells what happened) */
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

/* One program for the four open exits (every sys_exit_* tracepoint has the same layout):
 * the loader attaches it to sys_exit_openat, sys_exit_openat2 and sys_exit_creat as well
 * (logira/probes/attach.py). The kernel verifies each loaded program separately, so one
 * program instead of four saves three verifications of open_exit() at start-up. */
SEC("tracepoint/syscalls/sys_exit_open")
int file_exit_open(struct trace_event_raw_sys_exit *ctx) { return open_exit(ctx->ret); }

/* ---- path operations ------------------------------------------------------------- */

/* The exit of every path operation below: finish() decides from the stash, which knows the
 * syscall. ONE program attached to each sys_exit_<op> (the loader's list in
 * logira/probes/attach.py names them), because each loaded program is verified on its own
 * (~10 ms each for finish(): 19 copies were ~190 ms of start-up). */
SEC("tracepoint/syscalls/sys_exit_unlink")
int file_exit_op(struct trace_event_raw_sys_exit *ctx) { return finish(ctx->ret); }

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
	return stash(FSC_UNLINK, FOP_DELETE, AT_FDCWD, S(0), 0, NULL, 1, 0, -1, -1, K_FILE_OP);
}

ENTER(unlinkat)
{
	if (!is_tracked())
		return 0;
	__u32 fl = (__u32)A(2);
	return stash(FSC_UNLINKAT, (fl & AT_REMOVEDIR) ? FOP_RMDIR : FOP_DELETE, FD(0), S(1), 0,
		     NULL, 1, fl, -1, -1, K_FILE_OP);
}

ENTER(rmdir)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RMDIR, FOP_RMDIR, AT_FDCWD, S(0), 0, NULL, 1, 0, -1, -1, K_FILE_OP);
}

ENTER(rename)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RENAME, FOP_RENAME, AT_FDCWD, S(0), AT_FDCWD, S(1), 2, 0, -1, -1, K_FILE_OP);
}

ENTER(renameat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RENAMEAT, FOP_RENAME, FD(0), S(1), FD(2), S(3), 2, 0, -1, -1, K_FILE_OP);
}

ENTER(renameat2)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_RENAMEAT2, FOP_RENAME, FD(0), S(1), FD(2), S(3), 2, (__u32)A(4), -1, -1, K_FILE_OP);
}

ENTER(chmod)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_CHMOD, FOP_CHMOD, AT_FDCWD, S(0), 0, NULL, 1, 0, (__u16)A(1) & 07777, -1, K_FILE_OP);
}

ENTER(fchmod)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FCHMOD, FOP_CHMOD, 0, NULL, 0, NULL, 0, 0, (__u16)A(1) & 07777, FD(0), K_FILE_OP);
}

ENTER(fchmodat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FCHMODAT, FOP_CHMOD, FD(0), S(1), 0, NULL, 1, 0, (__u16)A(2) & 07777, -1, K_FILE_OP);
}

ENTER(fchmodat2)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FCHMODAT2, FOP_CHMOD, FD(0), S(1), 0, NULL, 1, (__u32)A(3),
		     (__u16)A(2) & 07777, -1, K_FILE_OP);
}

ENTER(truncate)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_TRUNCATE, FOP_TRUNCATE, AT_FDCWD, S(0), 0, NULL, 1, 0, -1, -1, K_FILE_OP);
}

ENTER(ftruncate)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_FTRUNCATE, FOP_TRUNCATE, 0, NULL, 0, NULL, 0, 0, -1, FD(0), K_FILE_OP);
}

ENTER(link)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_LINK, FOP_LINK, AT_FDCWD, S(0), AT_FDCWD, S(1), 2, 0, -1, -1, K_FILE_OP);
}

ENTER(linkat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_LINKAT, FOP_LINK, FD(0), S(1), FD(2), S(3), 2, (__u32)A(4), -1, -1, K_FILE_OP);
}

ENTER(symlink)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_SYMLINK, FOP_SYMLINK, AT_FDCWD, S(0), AT_FDCWD, S(1), 2, 0, -1, -1, K_FILE_OP);
}

ENTER(symlinkat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_SYMLINKAT, FOP_SYMLINK, AT_FDCWD, S(0), FD(1), S(2), 2, 0, -1, -1, K_FILE_OP);
}

ENTER(mkdir)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_MKDIR, FOP_MKDIR, AT_FDCWD, S(0), 0, NULL, 1, 0, (__u16)A(1) & 07777, -1, K_FILE_OP);
}

ENTER(mkdirat)
{
	if (!is_tracked())
		return 0;
	return stash(FSC_MKDIRAT, FOP_MKDIR, FD(0), S(1), 0, NULL, 1, 0, (__u16)A(2) & 07777, -1, K_FILE_OP);
}

/* mknod of a regular file creates it without an open (and with any mode): a create.
 * Other node types (fifo, socket, device) are creates too; their type is in `flags`. */
#define S_IFREG 0100000
ENTER(mknod)
{
	if (!is_tracked())
		return 0;
	__u32 m = (__u32)A(1);
	return stash(FSC_MKNOD, FOP_CREATE, AT_FDCWD, S(0), 0, NULL, 1, m & S_IFMT, m & 07777, -1,
		     K_FILE_OP);
}

ENTER(mknodat)
{
	if (!is_tracked())
		return 0;
	__u32 m = (__u32)A(2);
	return stash(FSC_MKNODAT, FOP_CREATE, FD(0), S(1), 0, NULL, 1, m & S_IFMT, m & 07777, -1,
		     K_FILE_OP);
}
