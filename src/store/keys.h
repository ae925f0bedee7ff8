/*
 * keys.h -- the subject key store: one 256-bit key per data subject, kept where deleting it
 * really deletes it, and the node's secrets for keyed hashes. Only src/store/ includes this.
 *
 * DATA/keys/subjects.keys is a 512-byte header and an array of 512-byte slots, one per
 * subject, written in place (never copied, never journaled): forgetting a subject overwrites
 * its slot's key bytes with zeros and syncs, so no copy of the key remains in any file. Every
 * secret in the file is sealed (XChaCha20-Poly1305) under the node master key, a 32-byte file
 * named by kappa_options.master_key_file (default DATA/master.key, created 0600 at first
 * open). docs/format.md has the byte layout.
 *
 * A key is durable (its slot synced) before kp_keys_get returns it for an append, so no event
 * can outlive the key that opens it. Thread-safe.
 */
#ifndef KP_KEYS_H
#define KP_KEYS_H

#include <stdint.h>

#include "base/buf.h"
#include "base/io.h"
#include "kappa.h"

#define KP_KEY_BYTES 32

typedef struct kp_keys kp_keys;

/* Open (creating on first use) DATA/keys/subjects.keys with the master key in 'master_file'
 * (NULL: DATA/master.key). A master key that does not open the store is KAPPA_EPERM, and
 * nothing is changed. 'io' (NULL: POSIX) does the key store's file I/O (tests inject faults
 * through it). 'notice' reports repairs (a torn last slot dropped). */
int kp_keys_open(const char *data_dir, const char *master_file, const kp_io *io,
		 void (*notice)(void *ctx, const char *line), void *notice_ctx, kp_keys **out,
		 kappa_err *err);
void kp_keys_close(kp_keys *k);

/* The node's secret for keyed claim hashes, and the one for request content hashes. */
const uint8_t *kp_keys_claim_secret(const kp_keys *k);
const uint8_t *kp_keys_request_secret(const kp_keys *k);

/* The state of a subject in the store. */
enum { KP_SUBJECT_UNKNOWN = 0, KP_SUBJECT_LIVE = 1, KP_SUBJECT_FORGOTTEN = 2 };

/* The key of 'subject' for an append: created (and synced) on first use. A forgotten subject
 * is KAPPA_ESUBJECT_FORGOTTEN. */
int kp_keys_get(kp_keys *k, kp_bytes subject, uint8_t key[KP_KEY_BYTES], kappa_err *err);

/* The key of 'subject' for a read. Returns its state; 'key' is filled only when LIVE. */
int kp_keys_lookup(kp_keys *k, kp_bytes subject, uint8_t key[KP_KEY_BYTES]);

/* Destroy the key of 'subject': overwrite its slot's key with zeros and sync. *state is the
 * state before the call; *position is where the forget was recorded in the log
 * (UINT64_MAX: not yet). KAPPA_ENOTFOUND for a subject never seen. */
int kp_keys_forget(kp_keys *k, kp_bytes subject, int *state, uint64_t *position, kappa_err *err);

/* Record (and sync) the log position of a subject's $subject_forgotten event. */
int kp_keys_forgotten_at(kp_keys *k, kp_bytes subject, uint64_t position, kappa_err *err);

#endif
