/* SPDX-License-Identifier: GPL-2.0 */
/* In-kernel path building: the absolute path of a struct path (dentry walk up
 * d_parent, crossing mounts through struct mount), for cwd, fds and dirfds.
 * bpf_d_path() is not available here (fentry/LSM are refused on this kernel),
 * so we walk the dentries ourselves with CO-RE reads.
 *
 * API (all static __always_inline; include after common.h):
 *
 *   int read_path(const struct path *p, char *buf, __u32 bufsz, int *truncated)
 *   int read_cwd_path(char *buf, __u32 bufsz, int *truncated)
 *   int read_fd_path(int fd, char *buf, __u32 bufsz, int *truncated)
 *   struct file *fd_file(int fd)
 *   int path_str_of(__u64 path_ptr, struct path_str *out)   (global subprogram)
 *
 *   p          kernel pointer to a struct path (e.g. &file->f_path, &fs->pwd).
 *   buf        destination, MUST point into a map value (per-CPU scratch) with at
 *              least bufsz writable bytes, so the verifier accepts the variable
 *              offsets. bufsz MUST be a compile-time power of two, 16..4096.
 *   return     length written INCLUDING the terminating NUL (>= 2), or <0
 *              (-EBADF: no such fd; -EFAULT: a kernel read failed).
 *   *truncated set to 1 when the depth limit (PATH_MAX_DEPTH components) or the
 *              buffer cut the path, else left untouched (caller zeroes it). A
 *              truncated path keeps the components nearest the file; the leading
 *              part is missing (it still starts with '/').
 *
 * Output forms:
 *   "/a/b/c"                     normal absolute path, relative to the root of the
 *                                task's mount namespace (a chroot is not honoured).
 *   "/a/b/c (deleted)"           the dentry was unlinked (same marker as the kernel's
 *                                d_path / readlink of /proc/PID/fd/N).
 *   "<fstype>:[<ino>]"           anonymous / pseudo files whose name the kernel
 *   "<fstype>:<name>"            synthesises: pipes "pipefs:[123]", sockets
 *                                "sockfs:[45]", anon inodes "anon_inodefs:[eventfd]",
 *                                memfds "tmpfs:memfd:<name>". Never starts with '/',
 *                                so user space can tell them apart. A name longer
 *                                than bufsz is cut (and not flagged).
 *
 * path_str_of() is the same walk as a *global* BPF function: the verifier checks it once
 * per program instead of once per call site, which keeps programs that resolve several
 * paths (file.bpf.c) fast to load. It returns the length including the NUL, ORed with
 * PATH_STR_TRUNCATED when cut, or <0; out must be 4096 writable bytes (a map value).
 *
 * Scratch: the walk builds the path backwards in its own per-CPU map `path_tmp`
 * (8 KiB per CPU, private to each object) and then copies it forward into buf.
 * Calls are sequential inside one program, so one slot per CPU is enough.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#ifndef EBADF
#define EBADF 9
#endif
#ifndef EFAULT
#define EFAULT 14
#endif

#define PATH_MAX_DEPTH 128 /* components + mount crossings; bpf_loop keeps this cheap to verify */
#define PATH_TMP_SIZE 8192 /* 4096 of path + room for a masked 255-byte name read */

struct path_tmp_buf {
	char b[PATH_TMP_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_tmp_buf);
} path_tmp SEC(".maps");

/* Anonymous/pseudo file: the kernel synthesises its name (d_op->d_dname). We write
 * "<fstype>:[<ino>]" when the dentry has no name (pipes, sockets) and "<fstype>:<name>"
 * otherwise (anon inodes "anon_inodefs:[eventfd]", memfds "tmpfs:memfd:<name>"). */
static __always_inline int path_pseudo(struct dentry *d, char *buf, __u32 bufsz)
{
	static const char fmt_ino[] = "%s:[%lu]";
	static const char fmt_name[] = "%s:%s";
	__u64 args[2];
	long n;

	args[0] = (__u64)BPF_CORE_READ(d, d_sb, s_type, name);
	if (BPF_CORE_READ(d, d_name.len)) {
		args[1] = (__u64)BPF_CORE_READ(d, d_name.name);
		n = bpf_snprintf(buf, bufsz, fmt_name, args, sizeof(args));
	} else {
		args[1] = BPF_CORE_READ(d, d_inode, i_ino);
		n = bpf_snprintf(buf, bufsz, fmt_ino, args, sizeof(args));
	}
	if (n <= 0)
		return -EFAULT;
	return n > bufsz ? bufsz : n;
}

/* State of one walk, on the caller's stack; the loop body runs through bpf_loop()
 * so the verifier checks it once instead of once per component. */
struct path_walk {
	struct dentry *d;
	struct mount *mnt;
	struct dentry *mnt_root; /* of mnt: read once per mount, not once per component */
	__u32 off;   /* start of the path built so far in path_tmp (grows down) */
	__u32 mask;  /* bufsz - 1 */
	int truncated;
	int err;
};

static long path_walk_step(__u32 idx, void *arg)
{
	struct path_walk *w = arg;
	__u32 zero = 0;
	struct path_tmp_buf *t = bpf_map_lookup_elem(&path_tmp, &zero);
	if (!t) {
		w->err = -EFAULT;
		return 1;
	}
	struct dentry *d = w->d;
	struct mount *mnt = w->mnt;

	if (d == w->mnt_root) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt)
			return 1; /* root of the namespace (or of a detached mount) */
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mp;
		w->mnt_root = BPF_CORE_READ(mp, mnt.mnt_root);
		return 0;
	}
	/* Each BPF_CORE_READ is a helper call (~20 ns): where d_name directly follows d_parent
	 * (every kernel we know; checked through CO-RE), read parent, length and name pointer
	 * in one call. The check is a relocated constant: the verifier drops the dead branch. */
	struct dentry *parent;
	__u32 len;
	const unsigned char *name;
	if (bpf_core_field_offset(struct dentry, d_name) ==
		    bpf_core_field_offset(struct dentry, d_parent) + 8 &&
	    bpf_core_field_offset(struct qstr, name) == 8) {
		struct {
			__u64 parent;
			__u64 hash_len; /* little-endian: hash in the low half, len in the high */
			__u64 name;
		} hot;
		if (bpf_probe_read_kernel(&hot, sizeof(hot),
					  (void *)d + bpf_core_field_offset(struct dentry, d_parent))) {
			w->err = -EFAULT;
			return 1;
		}
		parent = (struct dentry *)hot.parent;
		len = hot.hash_len >> 32;
		name = (const unsigned char *)hot.name;
	} else {
		parent = BPF_CORE_READ(d, d_parent);
		len = BPF_CORE_READ(d, d_name.len);
		name = BPF_CORE_READ(d, d_name.name);
	}
	if (d == parent)
		return 1; /* an unreachable root: what we have is the best path */

	if (len + 1 > w->off) {
		w->truncated = 1;
		return 1;
	}
	w->off -= len + 1;
	/* keep the verifier's bounds explicit: clang folds plain masks away */
	__u32 o = w->off;
	asm volatile("" : "+r"(o));
	o &= PATH_TMP_SIZE / 2 - 1;
	__u32 n = len;
	asm volatile("" : "+r"(n));
	n &= 255;
	t->b[o] = '/';
	if (bpf_probe_read_kernel(&t->b[o + 1], n, name)) {
		w->err = -EFAULT;
		return 1;
	}
	w->d = parent;
	return 0;
}

static __always_inline int read_path(const struct path *p, char *buf, __u32 bufsz, int *truncated)
{
	__u32 zero = 0;
	struct path_tmp_buf *t = bpf_map_lookup_elem(&path_tmp, &zero);
	if (!t)
		return -EFAULT;

	struct dentry *d = BPF_CORE_READ(p, dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(p, mnt);
	if (!d || !vfsmnt)
		return -EFAULT;

	if (BPF_CORE_READ(d, d_op, d_dname))
		return path_pseudo(d, buf, bufsz);

	/* unlinked: d_unhashed && !IS_ROOT, like the kernel's d_unlinked() */
	int deleted = !BPF_CORE_READ(d, d_hash.pprev) && BPF_CORE_READ(d, d_parent) != d;

	/* Build backwards in t->b[0 .. bufsz-1), leaving a byte for the NUL. */
	struct path_walk w = {
		.d = d,
		.mnt = container_of(vfsmnt, struct mount, mnt),
		.mnt_root = BPF_CORE_READ(vfsmnt, mnt_root),
		.off = bufsz - 1,
		.mask = bufsz - 1,
	};
	long steps = bpf_loop(PATH_MAX_DEPTH, path_walk_step, &w, 0);
	if (w.err)
		return w.err;
	if (w.truncated || steps >= PATH_MAX_DEPTH)
		*truncated = 1;

	__u32 off = w.off;
	__u32 len = (bufsz - 1) - off;
	if (len == 0) {
		buf[0] = '/';
		buf[1] = 0;
		return 2;
	}
	__u32 o = off;
	asm volatile("" : "+r"(o));
	o &= bufsz - 1;
	__u32 n = len;
	asm volatile("" : "+r"(n));
	n &= bufsz - 1;
	if (bpf_probe_read_kernel(buf, n, &t->b[o]))
		return -EFAULT;

	if (deleted) {
		static const char sfx[] = " (deleted)";
		__u32 m = n;
		asm volatile("" : "+r"(m));
		m &= bufsz - 1;
		if (m + sizeof(sfx) <= bufsz) {
			bpf_probe_read_kernel(buf + m, sizeof(sfx), sfx);
			return m + sizeof(sfx);
		}
		*truncated = 1;
	}
	buf[n & (bufsz - 1)] = 0;
	return n + 1;
}

/* Path of the current task's working directory. */
static __always_inline int read_cwd_path(char *buf, __u32 bufsz, int *truncated)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	if (!fs)
		return -EFAULT;
	return read_path(__builtin_preserve_access_index(&fs->pwd), buf, bufsz, truncated);
}

/* struct file of an fd of the current task, NULL if there is none. */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (!fdt || fd < 0)
		return NULL;
	if ((__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (!fds || bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* Path of an fd of the current task (the file actually opened: symlinks followed). */
static __always_inline int read_fd_path(int fd, char *buf, __u32 bufsz, int *truncated)
{
	struct file *f = fd_file(fd);
	if (!f)
		return -EBADF;
	return read_path(__builtin_preserve_access_index(&f->f_path), buf, bufsz, truncated);
}

#define PATH_STR_MAX 4096
#define PATH_STR_TRUNCATED (1 << 16)

struct path_str {
	char b[PATH_STR_MAX];
};

/* Global subprogram: path_ptr is a kernel `struct path *` passed as a scalar (global
 * functions may only take scalars or sized memory), out a 4096-byte buffer. */
__attribute__((noinline)) int path_str_of(__u64 path_ptr, struct path_str *out)
{
	int truncated = 0;
	if (!out || !path_ptr)
		return -EFAULT;
	int n = read_path((const struct path *)path_ptr, out->b, PATH_STR_MAX, &truncated);
	if (n < 0)
		return n;
	return n | (truncated ? PATH_STR_TRUNCATED : 0);
}

/* kernel pointer of the struct path of fd (or of the cwd for AT_FDCWD = -100), 0 if none */
static __always_inline __u64 path_ptr_of_fd(int fd)
{
	if (fd == -100) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct fs_struct *fs = BPF_CORE_READ(task, fs);
		return fs ? (__u64)__builtin_preserve_access_index(&fs->pwd) : 0;
	}
	struct file *f = fd_file(fd);
	return f ? (__u64)__builtin_preserve_access_index(&f->f_path) : 0;
}
