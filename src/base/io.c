/*
 * io.c -- the POSIX kp_io implementation and the full-transfer helpers built on any kp_io.
 */
#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
px_open(const kp_io *io, const char *path, int flags, mode_t mode)
{
	(void)io;
	int fd;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static int
px_close(const kp_io *io, int fd)
{
	(void)io;
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static ssize_t
px_pread(const kp_io *io, int fd, void *buf, size_t n, off_t off)
{
	(void)io;
	ssize_t r = pread(fd, buf, n, off);
	return r < 0 ? -errno : r;
}

static ssize_t
px_pwritev(const kp_io *io, int fd, const struct iovec *iov, int cnt, off_t off)
{
	(void)io;
	ssize_t r = pwritev(fd, iov, cnt, off);
	return r < 0 ? -errno : r;
}

static int
px_fdatasync(const kp_io *io, int fd)
{
	(void)io;
	return fdatasync(fd) < 0 ? -errno : 0;
}

static int
px_fsync(const kp_io *io, int fd)
{
	(void)io;
	return fsync(fd) < 0 ? -errno : 0;
}

static int
px_ftruncate(const kp_io *io, int fd, off_t len)
{
	(void)io;
	return ftruncate(fd, len) < 0 ? -errno : 0;
}

static int
px_fallocate(const kp_io *io, int fd, off_t off, off_t len)
{
	(void)io;
	int r = posix_fallocate(fd, off, len);
	return r ? -r : 0;
}

static int
px_rename(const kp_io *io, const char *from, const char *to)
{
	(void)io;
	return rename(from, to) < 0 ? -errno : 0;
}

static int
px_unlink(const kp_io *io, const char *path)
{
	(void)io;
	return unlink(path) < 0 ? -errno : 0;
}

static int
px_fstat_size(const kp_io *io, int fd, uint64_t *size)
{
	(void)io;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static const kp_io posix_io = {
	.open = px_open,
	.close = px_close,
	.pread = px_pread,
	.pwritev = px_pwritev,
	.fdatasync = px_fdatasync,
	.fsync = px_fsync,
	.ftruncate = px_ftruncate,
	.fallocate = px_fallocate,
	.rename = px_rename,
	.unlink = px_unlink,
	.fstat_size = px_fstat_size,
	.ctx = NULL,
};

const kp_io *
kp_io_posix(void)
{
	return &posix_io;
}

ssize_t
kp_io_pread_full(const kp_io *io, int fd, void *buf, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = io->pread(io, fd, (char *)buf + done, n - done, off + (off_t)done);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

#define IOV_STACK 64

int
kp_io_pwritev_full(const kp_io *io, int fd, const struct iovec *iov, int cnt, off_t off)
{
	/* Work on a copy so short writes can advance it; big vectors go in slices of IOV_MAX. */
	struct iovec stack[IOV_STACK];
	while (cnt > 0) {
		int n = cnt < IOV_STACK ? cnt : IOV_STACK;
		memcpy(stack, iov, (size_t)n * sizeof(*iov));
		struct iovec *v = stack;
		int vn = n;
		while (vn > 0) {
			ssize_t w = io->pwritev(io, fd, v, vn, off);
			if (w == -EINTR)
				continue;
			if (w < 0)
				return (int)w;
			if (w == 0)
				return -EIO;
			off += w;
			while (vn > 0 && (size_t)w >= v->iov_len) {
				w -= (ssize_t)v->iov_len;
				v++;
				vn--;
			}
			if (vn > 0 && w > 0) {
				v->iov_base = (char *)v->iov_base + w;
				v->iov_len -= (size_t)w;
			}
		}
		iov += n;
		cnt -= n;
	}
	return 0;
}

int
kp_io_fsync_dir(const kp_io *io, const char *dir)
{
	int fd = io->open(io, dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	int r = io->fsync(io, fd);
	io->close(io, fd);
	return r;
}
