/*
 * keys.c -- the subject key store (keys.h): a file of fixed 512-byte slots written in place,
 * an in-memory table from subject to slot, and the node master key that seals them.
 *
 * Header (512 bytes, little-endian):      Slot (512 bytes, at 512 * (index + 1)):
 *   0  4 magic "KPKS"                        0   1 state (1 live, 2 forgotten)
 *   4  4 version (1)                         2   2 subject length (1..200)
 *   8  4 slot bytes (512)                    4 200 subject
 *  16 24 nonce                             204  24 nonce          (zeros once forgotten)
 *  40 80 sealed node secrets (64 + tag)    228  48 sealed key     (zeros once forgotten)
 * 508  4 CRC-32C of bytes [0, 508)         276   8 forget position (UINT64_MAX: not yet)
 *                                          508   4 CRC-32C of bytes [0, 508)
 *
 * A slot's key is sealed with associated data "kappa-subject-key", the slot's index and the
 * subject, so slots cannot be swapped. A slot is one aligned 512-byte write, atomic on the
 * devices kappa runs on; the CRC still catches a torn one: a bad last slot was never synced
 * (no event can use it) and is dropped; a bad slot elsewhere was being forgotten and stays
 * forgotten.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/err.h"
#include "base/io.h"
#include "store/keys.h"

#define KS_MAGIC 0x534b504bu /* "KPKS" */
#define KS_VERSION 1
#define KS_SLOT 512
#define KS_MAX_SUBJECT 200
#define KS_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define KS_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KS_SECRETS 64
#define KS_MAX_SLOTS (1u << 26) /* 32 GiB of slots: far beyond any real store */

typedef struct entry {
	uint32_t slot;
	uint8_t state;
	uint8_t subject_len;
	uint64_t written; /* write sequence of the slot's last change (for syncing) */
	uint64_t position;
	char subject[KS_MAX_SUBJECT];
	uint8_t key[KP_KEY_BYTES];
} entry;

struct kp_keys {
	pthread_rwlock_t lock;
	pthread_mutex_t sync_lock;
	const kp_io *io;
	int fd;
	char *path;
	uint8_t master[KP_KEY_BYTES];
	uint8_t secrets[KS_SECRETS]; /* claim secret, request secret */
	entry *entries;		     /* in slot order */
	uint32_t n, cap;
	uint32_t *table; /* open addressing: entry index + 1, 0 empty */
	uint32_t tcap;	 /* power of two */
	uint64_t written;
	_Atomic uint64_t synced; /* every slot write up to this sequence is durable */
	void (*notice)(void *ctx, const char *line);
	void *notice_ctx;
};

static uint32_t
hash_subject(const void *p, size_t len)
{
	return kp_crc32c(0, p, len);
}

static entry *
find(kp_keys *k, const void *s, size_t len)
{
	if (!k->tcap)
		return NULL;
	for (uint32_t i = hash_subject(s, len) & (k->tcap - 1);; i = (i + 1) & (k->tcap - 1)) {
		uint32_t t = k->table[i];
		if (!t)
			return NULL;
		entry *e = &k->entries[t - 1];
		if (e->subject_len == len && memcmp(e->subject, s, len) == 0)
			return e;
	}
}

static int
table_insert(kp_keys *k, uint32_t idx)
{
	if ((uint64_t)(k->n + 1) * 2 > k->tcap) {
		uint32_t ncap = k->tcap ? k->tcap * 2 : 1024;
		uint32_t *t = calloc(ncap, sizeof(*t));
		if (!t)
			return -1;
		free(k->table);
		k->table = t;
		k->tcap = ncap;
		for (uint32_t j = 0; j < k->n; j++)
			if (j != idx) {
				entry *e = &k->entries[j];
				uint32_t i = hash_subject(e->subject, e->subject_len) & (ncap - 1);
				while (t[i])
					i = (i + 1) & (ncap - 1);
				t[i] = j + 1;
			}
	}
	entry *e = &k->entries[idx];
	uint32_t i = hash_subject(e->subject, e->subject_len) & (k->tcap - 1);
	while (k->table[i])
		i = (i + 1) & (k->tcap - 1);
	k->table[i] = idx + 1;
	return 0;
}

static void
free_entries(kp_keys *k)
{
	if (k->entries)
		sodium_memzero(k->entries, (size_t)k->cap * sizeof(entry));
	free(k->entries);
	k->entries = NULL;
}

/* Room for one more entry; the entries array moves, so callers hold the write lock. */
static int
grow(kp_keys *k)
{
	if (k->n < k->cap)
		return 0;
	uint32_t ncap = k->cap ? k->cap * 2 : 256;
	entry *ne = calloc(ncap, sizeof(entry));
	if (!ne)
		return -1;
	if (k->n)
		memcpy(ne, k->entries, (size_t)k->n * sizeof(entry));
	free_entries(k); /* zeroes the old copy of the keys */
	k->entries = ne;
	k->cap = ncap;
	return 0;
}

static void
slot_ad(uint8_t *ad, size_t *adlen, uint32_t slot, const char *s, size_t len)
{
	static const char tag[17] = "kappa-subject-key";
	memcpy(ad, tag, 17);
	kp_put_u64(ad + 17, slot);
	memcpy(ad + 25, s, len);
	*adlen = 25 + len;
}

static void
encode_slot(kp_keys *k, const entry *e, uint8_t b[KS_SLOT])
{
	memset(b, 0, KS_SLOT);
	b[0] = e->state;
	b[2] = (uint8_t)e->subject_len;
	b[3] = 0;
	memcpy(b + 4, e->subject, e->subject_len);
	if (e->state == KP_SUBJECT_LIVE) {
		uint8_t ad[25 + KS_MAX_SUBJECT];
		size_t adlen;
		slot_ad(ad, &adlen, e->slot, e->subject, e->subject_len);
		randombytes_buf(b + 204, KS_NONCE);
		crypto_aead_xchacha20poly1305_ietf_encrypt(b + 228, NULL, e->key, KP_KEY_BYTES, ad,
							   adlen, NULL, b + 204, k->master);
	}
	kp_put_u64(b + 276, e->position);
	kp_put_u32(b + 508, kp_crc32c(0, b, 508));
}

/* Write entry 'e' to its slot (under the write lock); returns the write's sequence. */
static int
write_slot(kp_keys *k, entry *e, kappa_err *err)
{
	uint8_t b[KS_SLOT];
	encode_slot(k, e, b);
	struct iovec iov = {b, KS_SLOT};
	int r = kp_io_pwritev_full(k->io, k->fd, &iov, 1, (off_t)KS_SLOT * (e->slot + 1));
	sodium_memzero(b, sizeof(b));
	if (r < 0)
		return KP_ERR_SYS(err, kp_err_from_errno(-r), -r, "cannot write %s", k->path);
	e->written = ++k->written;
	return KAPPA_OK;
}

/* Make every slot write up to 'seq' durable (any thread, no lock held). */
static int
sync_to(kp_keys *k, uint64_t seq, kappa_err *err)
{
	if (atomic_load(&k->synced) >= seq)
		return KAPPA_OK; /* the common case: a key made long ago */
	pthread_mutex_lock(&k->sync_lock);
	int rc = KAPPA_OK;
	if (k->synced < seq) {
		pthread_rwlock_rdlock(&k->lock);
		uint64_t target = k->written;
		pthread_rwlock_unlock(&k->lock);
		int r = k->io->fdatasync(k->io, k->fd);
		if (r < 0)
			rc = KP_ERR_SYS(err, kp_err_from_errno(-r), -r, "cannot sync %s", k->path);
		else
			atomic_store(&k->synced, target);
	}
	pthread_mutex_unlock(&k->sync_lock);
	return rc;
}

static int
read_master(const char *path, int create, uint8_t out[KP_KEY_BYTES], kappa_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		uint8_t m[KP_KEY_BYTES];
		randombytes_buf(m, sizeof(m));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		int ok = fd >= 0 && write(fd, m, sizeof(m)) == (ssize_t)sizeof(m) && fsync(fd) == 0;
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (!ok) {
			sodium_memzero(m, sizeof(m));
			unlink(path);
			return KP_ERR_SYS(err, kp_err_from_errno(e), e,
					  "cannot create the master key file %s", path);
		}
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		kp_io_fsync_dir(kp_io_posix(), slash ? (dir[0] ? dir : "/") : ".");
		memcpy(out, m, sizeof(m));
		sodium_memzero(m, sizeof(m));
		return KAPPA_OK;
	}
	if (fd < 0)
		return KP_ERR_SYS(err, errno == ENOENT ? KAPPA_EKEY : KAPPA_EIO, errno,
				  "cannot open the master key file %s%s", path,
				  errno == ENOENT ? " (the key store exists: it was sealed with "
						    "a master key that is not there)"
						  : "");
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		close(fd);
		return KP_ERR(err, KAPPA_EKEY,
			      "the master key file %s is readable by group or others (chmod 600 "
			      "it)",
			      path);
	}
	ssize_t n = read(fd, out, KP_KEY_BYTES);
	uint8_t extra;
	ssize_t more = n == KP_KEY_BYTES ? read(fd, &extra, 1) : 0;
	close(fd);
	if (n != KP_KEY_BYTES || more != 0) {
		sodium_memzero(out, KP_KEY_BYTES);
		return KP_ERR(err, KAPPA_EKEY, "the master key file %s must hold exactly %d bytes",
			      path, KP_KEY_BYTES);
	}
	return KAPPA_OK;
}

static const uint8_t header_ad[] = "kappa-key-store-v1";

static int
create_store(kp_keys *k, kappa_err *err)
{
	uint8_t h[KS_SLOT] = {0};
	kp_put_u32(h, KS_MAGIC);
	kp_put_u32(h + 4, KS_VERSION);
	kp_put_u32(h + 8, KS_SLOT);
	randombytes_buf(k->secrets, KS_SECRETS);
	randombytes_buf(h + 16, KS_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(h + 40, NULL, k->secrets, KS_SECRETS, header_ad,
						   sizeof(header_ad), NULL, h + 16, k->master);
	kp_put_u32(h + 508, kp_crc32c(0, h, 508));
	struct iovec iov = {h, KS_SLOT};
	int r = kp_io_pwritev_full(k->io, k->fd, &iov, 1, 0);
	if (r == 0)
		r = k->io->fdatasync(k->io, k->fd);
	if (r < 0)
		return KP_ERR_SYS(err, kp_err_from_errno(-r), -r, "cannot write %s", k->path);
	return KAPPA_OK;
}

static int
load_header(kp_keys *k, kappa_err *err)
{
	uint8_t h[KS_SLOT];
	ssize_t n = kp_io_pread_full(k->io, k->fd, h, KS_SLOT, 0);
	if (n < 0)
		return KP_ERR_SYS(err, kp_err_from_errno((int)-n), (int)-n, "cannot read %s",
				  k->path);
	if (n != KS_SLOT || kp_get_u32(h) != KS_MAGIC ||
	    kp_get_u32(h + 508) != kp_crc32c(0, h, 508))
		return KP_ERR(err, KAPPA_ECORRUPT, "%s: the header is damaged", k->path);
	if (kp_get_u32(h + 4) != KS_VERSION || kp_get_u32(h + 8) != KS_SLOT)
		return KP_ERR(err, KAPPA_ECORRUPT, "%s: unknown version %u", k->path,
			      kp_get_u32(h + 4));
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(k->secrets, NULL, NULL, h + 40,
						       KS_SECRETS + KS_TAG, header_ad,
						       sizeof(header_ad), h + 16, k->master) != 0)
		return KP_ERR(err, KAPPA_EKEY,
			      "%s was sealed with another master key: check the master key file",
			      k->path);
	return KAPPA_OK;
}

/* Decode slot 'i' into a new entry. Returns 0, 1 (a bad slot: see the file comment) or -1
 * (out of memory). */
static int
load_slot(kp_keys *k, uint32_t i, const uint8_t *b, int last)
{
	uint16_t len = kp_get_u16(b + 2);
	int ok = kp_get_u32(b + 508) == kp_crc32c(0, b, 508) && (b[0] == 1 || b[0] == 2) &&
		 len >= 1 && len <= KS_MAX_SUBJECT;
	if (!ok && last)
		return 1;
	if (grow(k))
		return -1;
	entry *e = &k->entries[k->n];
	memset(e, 0, sizeof(*e));
	e->slot = i;
	if (!ok) {
		/* A torn overwrite: the slot was being forgotten. Its subject may be torn too;
		 * keep what the slot says if it is plausible, so reads of it stay forgotten. */
		kp_emit(k->notice, k->notice_ctx,
			"event=key_slot_damaged file=%s slot=%u treated=forgotten", k->path, i);
		len = len >= 1 && len <= KS_MAX_SUBJECT ? len : 0;
		e->state = KP_SUBJECT_FORGOTTEN;
		e->position = UINT64_MAX;
	} else {
		e->state = b[0];
		e->position = kp_get_u64(b + 276);
	}
	e->subject_len = (uint8_t)len;
	memcpy(e->subject, b + 4, len);
	if (e->state == KP_SUBJECT_LIVE) {
		uint8_t ad[25 + KS_MAX_SUBJECT];
		size_t adlen;
		slot_ad(ad, &adlen, i, e->subject, len);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(e->key, NULL, NULL, b + 228,
							       KP_KEY_BYTES + KS_TAG, ad, adlen,
							       b + 204, k->master) != 0) {
			kp_emit(k->notice, k->notice_ctx,
				"event=key_slot_unreadable file=%s slot=%u", k->path, i);
			e->state = KP_SUBJECT_FORGOTTEN;
			e->position = UINT64_MAX;
		}
	}
	if (len && find(k, e->subject, len))
		return 1; /* a duplicate cannot be written; ignore it */
	k->n++;
	if (len && table_insert(k, k->n - 1))
		return -1;
	return 0;
}

static int
load_slots(kp_keys *k, uint64_t size, kappa_err *err)
{
	uint64_t nslots = (size - KS_SLOT) / KS_SLOT;
	/* Only the file's very last slot can be a creation cut short; after a partial slot,
	 * the last whole one is not it. */
	int partial = (size - KS_SLOT) % KS_SLOT != 0;
	if (nslots > KS_MAX_SLOTS)
		return KP_ERR(err, KAPPA_ECORRUPT, "%s holds too many slots", k->path);
	uint8_t *buf = malloc(KS_SLOT * 256);
	if (!buf)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	int rc = KAPPA_OK;
	for (uint64_t i = 0; i < nslots && rc == KAPPA_OK; i += 256) {
		uint64_t m = nslots - i < 256 ? nslots - i : 256;
		ssize_t n =
			kp_io_pread_full(k->io, k->fd, buf, m * KS_SLOT, (off_t)(i + 1) * KS_SLOT);
		if (n != (ssize_t)(m * KS_SLOT)) {
			rc = KP_ERR_SYS(err, KAPPA_EIO, n < 0 ? (int)-n : 0, "cannot read %s",
					k->path);
			break;
		}
		for (uint64_t j = 0; j < m; j++) {
			int r = load_slot(k, (uint32_t)(i + j), buf + j * KS_SLOT,
					  !partial && i + j == nslots - 1);
			if (r < 0) {
				rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
				break;
			}
		}
	}
	sodium_memzero(buf, KS_SLOT * 256);
	free(buf);
	return rc;
}

int
kp_keys_open(const char *data_dir, const char *master_file, const kp_io *io,
	     void (*notice_cb)(void *ctx, const char *line), void *notice_ctx, kp_keys **out,
	     kappa_err *err)
{
	*out = NULL;
	kp_keys *k = calloc(1, sizeof(*k));
	char dir[4096], master_default[4096];
	if (!k)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	k->fd = -1;
	k->io = io ? io : kp_io_posix();
	k->notice = notice_cb;
	k->notice_ctx = notice_ctx;
	pthread_rwlock_init(&k->lock, NULL);
	pthread_mutex_init(&k->sync_lock, NULL);
	snprintf(dir, sizeof(dir), "%s/keys", data_dir);
	snprintf(master_default, sizeof(master_default), "%s/master.key", data_dir);
	int rc = KAPPA_OK;
	if (!(k->path = malloc(strlen(dir) + 16))) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto fail;
	}
	sprintf(k->path, "%s/subjects.keys", dir);
	struct stat st;
	int exists = stat(k->path, &st) == 0 && st.st_size > 0;
	if ((rc = read_master(master_file ? master_file : master_default, !exists, k->master, err)))
		goto fail;
	if (!exists && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(errno), errno, "cannot create %s", dir);
		goto fail;
	}
	k->fd = k->io->open(k->io, k->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (k->fd < 0) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(-k->fd), -k->fd, "cannot open %s", k->path);
		goto fail;
	}
	uint64_t size = 0;
	int r = k->io->fstat_size(k->io, k->fd, &size);
	if (r < 0) {
		rc = KP_ERR_SYS(err, KAPPA_EIO, -r, "cannot stat %s", k->path);
		goto fail;
	}
	if (size < KS_SLOT) {
		/* new, or created and never synced whole: nothing in it was ever used */
		if ((rc = create_store(k, err)) ||
		    (rc = kp_io_fsync_dir(k->io, dir) < 0
				  ? KP_ERR(err, KAPPA_EIO, "cannot sync %s", dir)
				  : KAPPA_OK))
			goto fail;
		size = KS_SLOT;
	} else if ((rc = load_header(k, err)) || (rc = load_slots(k, size, err))) {
		goto fail;
	}
	uint64_t end = (uint64_t)KS_SLOT * (k->n ? k->entries[k->n - 1].slot + 2 : 1);
	if (size != end && size > KS_SLOT) {
		/* a torn or partial last slot: cut it (it was never synced, never used) */
		kp_emit(k->notice, k->notice_ctx, "event=key_slot_dropped file=%s bytes=%" PRIu64,
			k->path, size - end);
		if ((r = k->io->ftruncate(k->io, k->fd, (off_t)end)) < 0 ||
		    (r = k->io->fdatasync(k->io, k->fd)) < 0) {
			rc = KP_ERR_SYS(err, KAPPA_EIO, -r, "cannot truncate %s", k->path);
			goto fail;
		}
	}
	*out = k;
	return KAPPA_OK;
fail:
	kp_keys_close(k);
	return rc;
}

void
kp_keys_close(kp_keys *k)
{
	if (!k)
		return;
	if (k->fd >= 0)
		k->io->close(k->io, k->fd);
	free_entries(k);
	free(k->table);
	free(k->path);
	sodium_memzero(k->master, sizeof(k->master));
	sodium_memzero(k->secrets, sizeof(k->secrets));
	pthread_rwlock_destroy(&k->lock);
	pthread_mutex_destroy(&k->sync_lock);
	free(k);
}

const uint8_t *
kp_keys_claim_secret(const kp_keys *k)
{
	return k->secrets;
}

const uint8_t *
kp_keys_request_secret(const kp_keys *k)
{
	return k->secrets + 32;
}

int
kp_keys_lookup(kp_keys *k, kp_bytes subject, uint8_t key[KP_KEY_BYTES])
{
	pthread_rwlock_rdlock(&k->lock);
	entry *e = find(k, subject.p, subject.len);
	int state = e ? e->state : KP_SUBJECT_UNKNOWN;
	if (state == KP_SUBJECT_LIVE)
		memcpy(key, e->key, KP_KEY_BYTES);
	pthread_rwlock_unlock(&k->lock);
	return state;
}

/* A new live entry for 'subject' in *out, its slot written (not yet synced). Under the
 * write lock. */
static int
create_entry(kp_keys *k, kp_bytes subject, entry **out, kappa_err *err)
{
	if (k->n >= KS_MAX_SLOTS || grow(k))
		return KP_ERR(err, KAPPA_ENOMEM, "cannot hold another subject key");
	entry *e = &k->entries[k->n];
	memset(e, 0, sizeof(*e));
	e->slot = k->n ? k->entries[k->n - 1].slot + 1 : 0;
	e->state = KP_SUBJECT_LIVE;
	e->position = UINT64_MAX;
	e->subject_len = (uint8_t)subject.len;
	memcpy(e->subject, subject.p, subject.len);
	crypto_aead_xchacha20poly1305_ietf_keygen(e->key);
	int rc = write_slot(k, e, err);
	if (rc)
		return rc;
	if (table_insert(k, k->n)) /* not counted: the next new key rewrites the slot */
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	k->n++;
	*out = e;
	return KAPPA_OK;
}

int
kp_keys_get(kp_keys *k, kp_bytes subject, uint8_t key[KP_KEY_BYTES], kappa_err *err)
{
	if (subject.len < 1 || subject.len > KS_MAX_SUBJECT)
		return KP_ERR(err, KAPPA_EINVAL, "a subject id is 1 to %d bytes", KS_MAX_SUBJECT);
	pthread_rwlock_rdlock(&k->lock);
	entry *e = find(k, subject.p, subject.len);
	if (!e) { /* first use: make it under the write lock (another thread may have) */
		pthread_rwlock_unlock(&k->lock);
		pthread_rwlock_wrlock(&k->lock);
		int rc = KAPPA_OK;
		if (!(e = find(k, subject.p, subject.len)) &&
		    (rc = create_entry(k, subject, &e, err))) {
			pthread_rwlock_unlock(&k->lock);
			return rc;
		}
	}
	int live = e->state == KP_SUBJECT_LIVE;
	uint64_t need = e->written;
	if (live)
		memcpy(key, e->key, KP_KEY_BYTES);
	pthread_rwlock_unlock(&k->lock);
	if (!live)
		return KP_ERR(err, KAPPA_EFORGOTTEN,
			      "subject %.*s was forgotten; its id cannot be used again",
			      (int)subject.len, (const char *)subject.p);
	int rc = sync_to(k, need, err); /* no event may outlive its key */
	if (rc)
		sodium_memzero(key, KP_KEY_BYTES);
	return rc;
}

int
kp_keys_forget(kp_keys *k, kp_bytes subject, int *state, uint64_t *position, kappa_err *err)
{
	pthread_rwlock_wrlock(&k->lock);
	entry *e = find(k, subject.p, subject.len);
	int rc = KAPPA_OK;
	uint64_t need = 0;
	*state = e ? e->state : KP_SUBJECT_UNKNOWN;
	*position = e ? e->position : UINT64_MAX;
	if (!e) {
		rc = KP_ERR(err, KAPPA_ENOTFOUND, "no subject %.*s", (int)subject.len,
			    (const char *)subject.p);
	} else if (e->state == KP_SUBJECT_LIVE) {
		sodium_memzero(e->key, KP_KEY_BYTES);
		e->state = KP_SUBJECT_FORGOTTEN;
		e->position = UINT64_MAX;
		rc = write_slot(k, e, err);
		need = e->written;
	} else {
		need = e->written;
	}
	pthread_rwlock_unlock(&k->lock);
	if (rc == KAPPA_OK)
		rc = sync_to(k, need, err);
	return rc;
}

int
kp_keys_forgotten_at(kp_keys *k, kp_bytes subject, uint64_t position, kappa_err *err)
{
	pthread_rwlock_wrlock(&k->lock);
	entry *e = find(k, subject.p, subject.len);
	int rc = KAPPA_OK;
	uint64_t need = 0;
	if (e && e->state == KP_SUBJECT_FORGOTTEN && e->position != position) {
		e->position = position;
		rc = write_slot(k, e, err);
		need = e->written;
	}
	pthread_rwlock_unlock(&k->lock);
	return rc ? rc : sync_to(k, need, err);
}
