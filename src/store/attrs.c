/*
 * attrs.c -- the event store's batch attributes: request id, request content hash, claims
 * and releases, stored in each batch (as TLV: tag u8, length u32 LE, bytes) so the indexes
 * can be rebuilt from the log alone.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

kp_attrs *
kp_attrs_new(size_t cap)
{
	kp_attrs *a = calloc(1, sizeof(*a) + cap * sizeof(a->claims[0]));
	if (a)
		a->cap = cap;
	return a;
}

int
kp_attrs_decode(kp_bytes raw, kp_attrs *a, kappa_err *err)
{
	a->request_id = a->request_hash = a->forget = (kp_bytes){NULL, 0};
	a->nclaims = 0;
	size_t off = 0;
	while (off < raw.len) {
		if (raw.len - off < 5)
			return KP_ERR(err, KAPPA_ECORRUPT, "batch attributes are cut short");
		uint8_t tag = raw.p[off];
		uint32_t len = kp_get_u32(raw.p + off + 1);
		off += 5;
		if (len > raw.len - off)
			return KP_ERR(err, KAPPA_ECORRUPT, "batch attribute %u overruns", tag);
		kp_bytes v = {raw.p + off, len};
		off += len;
		switch (tag) {
		case KP_ATTR_REQUEST_ID:
			a->request_id = v;
			break;
		case KP_ATTR_REQUEST_HASH:
			a->request_hash = v;
			break;
		case KP_ATTR_CLAIM:
		case KP_ATTR_RELEASE:
		case KP_ATTR_CLAIM_ID:
		case KP_ATTR_RELEASE_ID:
			if (a->nclaims == a->cap)
				return KP_ERR(err, KAPPA_ECORRUPT, "too many claims in a batch");
			if (tag >= KP_ATTR_CLAIM_ID && len != KP_CLAIM_HASH)
				return KP_ERR(err, KAPPA_ECORRUPT, "a claim id is %u bytes", len);
			a->claims[a->nclaims].key = v;
			a->claims[a->nclaims].release =
				tag == KP_ATTR_RELEASE || tag == KP_ATTR_RELEASE_ID;
			a->claims[a->nclaims].is_id = tag >= KP_ATTR_CLAIM_ID;
			a->nclaims++;
			break;
		case KP_ATTR_FORGET:
			a->forget = v;
			break;
		default:
			break; /* unknown attributes are skipped: newer writers may add some */
		}
	}
	return KAPPA_OK;
}
