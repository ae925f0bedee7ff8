/*
 * seal.c -- sealing events' personal data under their subject's key (crypto-shredding), and
 * opening it again on every read path.
 *
 * A sealed field holds nonce (24 random bytes) || XChaCha20-Poly1305 ciphertext || tag (16).
 * The associated data binds it to the event's identity, which does not depend on where the
 * event lands in the log: a field tag ('d' data, 'm' metadata), the stream version, the
 * stream name and the type. So a ciphertext copied into another event, stream, version or
 * field fails authentication instead of being read as that event's data.
 *
 * Sealing happens in the log's writer thread, in the batch buffer itself, once the versions
 * are known (kappa_append builds sealed fields with room for nonce and tag around the
 * plaintext); the subject keys are fetched (and made durable) before the append is queued.
 */
#include <sodium.h>
#include <string.h>

#include "store/keys.h"
#include "store/store.h"

/* The associated data of one field; returns its length. */
static size_t
seal_ad(uint8_t *ad, char field, uint64_t version, kp_bytes stream, kp_bytes type)
{
	ad[0] = (uint8_t)field;
	kp_put_u64(ad + 1, version);
	kp_put_u16(ad + 9, (uint16_t)stream.len);
	memcpy(ad + 11, stream.p, stream.len);
	memcpy(ad + 11 + stream.len, type.p, type.len);
	return 11 + stream.len + type.len;
}

/* Seal field 'f' of event 'e' in place: its bytes are room for the nonce, the plaintext,
 * and room for the tag. */
static void
seal_field(kp_bytes f, char field, const kp_event *e, const uint8_t *key)
{
	uint8_t ad[11 + KAPPA_MAX_STREAM + KAPPA_MAX_TYPE];
	size_t adlen = seal_ad(ad, field, e->version, e->stream, e->type);
	uint8_t *p = (uint8_t *)f.p; /* the batch's own buffer, still being built */
	size_t plain = f.len - KP_SEAL_OVERHEAD;
	randombytes_buf(p, KP_SEAL_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		p + KP_SEAL_NONCE, p + KP_SEAL_NONCE + plain, NULL, p + KP_SEAL_NONCE, plain, ad,
		adlen, NULL, p, key);
}

void
kp_seal_batch(kp_batch *b, const uint8_t *const *keys)
{
	/* The batch's events read through the log's own decoder: the header is not sealed
	 * yet, so it is described here. */
	kp_batch_hdr h = {
		.length = (uint32_t)b->buf.len, .count = b->count, .attrs_len = b->attrs_len};
	kp_batch_iter it;
	kp_event e;
	kp_batch_iter_init(&it, b->buf.data, &h);
	for (uint32_t i = 0; kp_batch_iter_next(&it, &e, NULL) == 1; i++) {
		if (keys[i] && (e.flags & KP_EV_SEALED_DATA))
			seal_field(e.data, 'd', &e, keys[i]);
		if (keys[i] && (e.flags & KP_EV_SEALED_META))
			seal_field(e.metadata, 'm', &e, keys[i]);
	}
}

static int
open_field(kp_bytes *f, char field, const kp_event *ev, const uint8_t *key, uint8_t *out,
	   kappa_err *err)
{
	if (f->len < KP_SEAL_OVERHEAD)
		return KP_ERR(err, KAPPA_ECORRUPT,
			      "event at position %llu: a sealed field is short",
			      (unsigned long long)ev->position);
	uint8_t ad[11 + KAPPA_MAX_STREAM + KAPPA_MAX_TYPE];
	size_t adlen = seal_ad(ad, field, ev->version, ev->stream, ev->type);
	size_t plain = f->len - KP_SEAL_OVERHEAD;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, f->p + KP_SEAL_NONCE,
								plain, f->p + KP_SEAL_NONCE + plain,
								ad, adlen, f->p, key) != 0)
		return KP_ERR(err, KAPPA_ECORRUPT,
			      "event at position %llu: sealed %s fails authentication",
			      (unsigned long long)ev->position, field == 'd' ? "data" : "metadata");
	*f = (kp_bytes){out, plain};
	return KAPPA_OK;
}

int
kp_store_unseal(kappa_db *db, kp_event *ev, kp_buf *scratch, int *forgotten, kappa_err *err)
{
	*forgotten = 0;
	uint16_t sealed = ev->flags & (KP_EV_SEALED_DATA | KP_EV_SEALED_META);
	if (!sealed)
		return KAPPA_OK;
	uint8_t key[KP_KEY_BYTES];
	if (!ev->subject.len || kp_keys_lookup(db->keys, ev->subject, key) != KP_SUBJECT_LIVE) {
		*forgotten = 1;
		if (sealed & KP_EV_SEALED_DATA)
			ev->data = (kp_bytes){NULL, 0};
		if (sealed & KP_EV_SEALED_META)
			ev->metadata = (kp_bytes){NULL, 0};
		return KAPPA_OK;
	}
	size_t need = (sealed & KP_EV_SEALED_DATA ? ev->data.len : 0) +
		      (sealed & KP_EV_SEALED_META ? ev->metadata.len : 0) + 1;
	scratch->len = 0;
	int rc = kp_buf_reserve(scratch, need) ? KP_ERR(err, KAPPA_ENOMEM, "out of memory")
					       : KAPPA_OK;
	uint8_t *out = scratch->data;
	if (rc == KAPPA_OK && (sealed & KP_EV_SEALED_DATA) &&
	    (rc = open_field(&ev->data, 'd', ev, key, out, err)) == KAPPA_OK)
		out += ev->data.len;
	if (rc == KAPPA_OK && (sealed & KP_EV_SEALED_META))
		rc = open_field(&ev->metadata, 'm', ev, key, out, err);
	sodium_memzero(key, sizeof(key));
	return rc;
}
