/*
 * io.h -- the one interface through which kappa's storage does file I/O.
 *
 * The log (and later the key store) never call POSIX file functions directly: they go
 * through a kp_io table, as SQLite's pager goes through its VFS. The default table is plain
 * POSIX; tests substitute one that injects EIO, ENOSPC, short writes and failed syncs.
 * Every call returns >= 0 on success or -errno on failure (never sets errno for the caller).
 */
#ifndef KP_IO_H
#define KP_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct kp_io kp_io;
struct kp_io {
	int (*open)(const kp_io *io, const char *path, int flags, mode_t mode); /* fd */
	int (*close)(const kp_io *io, int fd);
	ssize_t (*pread)(const kp_io *io, int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwritev)(const kp_io *io, int fd, const struct iovec *iov, int cnt, off_t off);
	int (*fdatasync)(const kp_io *io, int fd);
	int (*fsync)(const kp_io *io, int fd);
	int (*ftruncate)(const kp_io *io, int fd, off_t len);
	int (*fallocate)(const kp_io *io, int fd, off_t off, off_t len);
	int (*rename)(const kp_io *io, const char *from, const char *to);
	int (*unlink)(const kp_io *io, const char *path);
	int (*fstat_size)(const kp_io *io, int fd, uint64_t *size);
	void *ctx; /* for implementations that need state (fault injection) */
};

/* The POSIX implementation. */
const kp_io *kp_io_posix(void);

/* Read exactly 'n' bytes at 'off' (looping over short reads). Returns the number of bytes
 * read, which is less than 'n' only at end of file, or -errno. */
ssize_t kp_io_pread_full(const kp_io *io, int fd, void *buf, size_t n, off_t off);

/* Write all of 'iov' at 'off', looping over short writes and EINTR. Returns 0 or -errno. A
 * failure may leave part of the data written. 'iov' is not modified. */
int kp_io_pwritev_full(const kp_io *io, int fd, const struct iovec *iov, int cnt, off_t off);

/* fsync the directory 'dir' so that entries created or removed in it are durable. */
int kp_io_fsync_dir(const kp_io *io, const char *dir);

#endif
