/*
 * audit_http.c -- GET /audit/digest (a signed digest of the log's hash chain), GET
 * /audit/key (the node's public key) and GET /audit/verify (admin: recompute the whole
 * chain, optionally against a digest given as ?position=&chain_hash=, and answer at the
 * end); POST /audit/verify and GET /audit/verify/status (the same as a background job with
 * progress) are in verify_job.c.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/server_int.h"

static json_t *
hex_json(const uint8_t *p, size_t n)
{
	char hex[2 * 64 + 1];
	return json_string(sodium_bin2hex(hex, sizeof(hex), p, n < 64 ? n : 64));
}

int
kp_http_audit_digest(kp_request *r)
{
	kappa_digest d;
	kappa_err err;
	int rc = kappa_audit_digest(r->srv->db, &d, &err);
	if (rc)
		return kp_send_kappa_error(r, rc, &err);
	uint8_t pk[32];
	kappa_audit_public_key(r->srv->db, pk);
	return kp_send_json(r, 200, kappa_digest_to_json(&d, pk));
}

int
kp_http_audit_key(kp_request *r)
{
	uint8_t pk[32];
	kappa_audit_public_key(r->srv->db, pk);
	return kp_send_json(r, 200,
			    kp_dump(json_pack("{s:s, s:o}", "algorithm", "ed25519", "public_key",
					      hex_json(pk, 32))));
}

/* A digest given as ?position=P&chain_hash=HEX: 0 and *dp set (NULL when none given), or -1
 * with the 400 answer queued in *ret. */
static int
digest_arg(kp_request *r, kappa_digest *d, kappa_digest **dp, int *ret)
{
	const char *ch = kp_http_arg(r->conn, "chain_hash");
	uint64_t pos;
	*dp = NULL;
	if (kp_arg_u64(r->conn, "position", UINT64_MAX, UINT64_MAX, &pos)) {
		*ret = kp_send_error(r, 400, "invalid_argument",
				     "position must be a non-negative integer");
		return -1;
	}
	if (ch || pos != UINT64_MAX) {
		memset(d, 0, sizeof(*d));
		d->position = pos;
		size_t len = 0;
		const char *end = NULL;
		if (pos == UINT64_MAX || !ch ||
		    sodium_hex2bin(d->chain, 32, ch, strlen(ch), NULL, &len, &end) != 0 ||
		    len != 32 || *end) {
			*ret = kp_send_error(r, 400, "invalid_argument",
					     "a digest is position=P&chain_hash=64 hex digits");
			return -1;
		}
		*dp = d;
	}
	return 0;
}

json_t *
kp_verify_result_json(int rc, const kappa_verify_result *res, const kappa_err *err, int with_digest)
{
	json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:f}", "ok", rc == KAPPA_OK,
			      "first_position", (json_int_t)res->first_position, "end_position",
			      (json_int_t)res->end_position, "batches", (json_int_t)res->batches,
			      "events", (json_int_t)res->events, "bytes", (json_int_t)res->bytes,
			      "chain_hash", hex_json(res->chain, 32), "seconds", res->seconds,
			      "mb_per_s",
			      res->seconds > 0 ? (double)res->bytes / 1e6 / res->seconds : 0.0);
	if (o && with_digest)
		json_object_set_new(o, "digest_checked", json_boolean(res->digest_checked));
	if (o && rc)
		json_object_set_new(o, "error", json_string(err->msg));
	return o;
}

static int
verify_now(kp_request *r)
{
	kappa_digest d, *dp;
	int ret;
	if (digest_arg(r, &d, &dp, &ret))
		return ret;
	kappa_verify_result res;
	kappa_err err;
	int rc = kappa_audit_verify(r->srv->db, dp, NULL, NULL, &res, &err);
	if (rc != KAPPA_OK && rc != KAPPA_ECORRUPT)
		return kp_send_kappa_error(r, rc, &err);
	return kp_send_json(r, 200, kp_dump(kp_verify_result_json(rc, &res, &err, dp != NULL)));
}

int
kp_http_audit_verify(kp_request *r, const char *url, const char *method)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	if (!strcmp(url, "/audit/verify/status"))
		return get ? kp_http_verify_status(r) : kp_send_not_allowed(r, "GET, HEAD");
	if (get)
		return verify_now(r);
	if (strcmp(method, "POST"))
		return kp_send_not_allowed(r, "GET, HEAD, POST");
	kappa_digest d, *dp;
	int ret;
	if (digest_arg(r, &d, &dp, &ret))
		return ret;
	return kp_http_verify_start(r, dp);
}
