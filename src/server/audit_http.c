/*
 * audit_http.c -- GET /audit/digest (a signed digest of the log's hash chain), GET
 * /audit/key (the node's public key) and GET /audit/verify (admin: recompute the whole
 * chain, optionally against a digest given as ?position=&chain_hash=).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "server/server_int.h"

static json_t *
hex_json(const uint8_t *p, size_t n)
{
	char hex[200];
	for (size_t i = 0; i < n && 2 * i + 2 < sizeof(hex); i++)
		snprintf(hex + 2 * i, 3, "%02x", p[i]);
	hex[2 * n < sizeof(hex) ? 2 * n : sizeof(hex) - 1] = '\0';
	return json_string(hex);
}

static int
unhex(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

enum MHD_Result
kp_http_audit_digest(kp_request *r)
{
	kappa_digest d;
	kappa_err err;
	int rc = kappa_audit_digest(r->srv->db, &d, &err);
	if (rc)
		return kp_send_kappa_error(r, rc, &err);
	uint8_t pk[32];
	kappa_audit_public_key(r->srv->db, pk);
	char t[KP_TIME_TEXT];
	kp_format_time_ms(d.time_ms, t);
	return kp_send_json(
		r, MHD_HTTP_OK,
		kp_dump(json_pack("{s:I, s:o, s:s, s:I, s:o, s:o}", "position",
				  (json_int_t)d.position, "chain_hash", hex_json(d.chain, 32),
				  "time", t, "time_ms", (json_int_t)d.time_ms, "signature",
				  hex_json(d.signature, 64), "public_key", hex_json(pk, 32))));
}

enum MHD_Result
kp_http_audit_key(kp_request *r)
{
	uint8_t pk[32];
	kappa_audit_public_key(r->srv->db, pk);
	return kp_send_json(r, MHD_HTTP_OK,
			    kp_dump(json_pack("{s:s, s:o}", "algorithm", "ed25519", "public_key",
					      hex_json(pk, 32))));
}

enum MHD_Result
kp_http_audit_verify(kp_request *r)
{
	kappa_digest d, *dp = NULL;
	const char *ch = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "chain_hash");
	uint64_t pos;
	if (kp_arg_u64(r->conn, "position", UINT64_MAX, UINT64_MAX, &pos))
		return kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
				     "position must be a non-negative integer");
	if (ch || pos != UINT64_MAX) {
		memset(&d, 0, sizeof(d));
		d.position = pos;
		if (pos == UINT64_MAX || unhex(ch, d.chain, 32) < 0)
			return kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
					     "a digest is position=P&chain_hash=64 hex digits");
		dp = &d;
	}
	kappa_verify_result res;
	kappa_err err;
	int rc = kappa_audit_verify(r->srv->db, dp, NULL, NULL, &res, &err);
	if (rc != KAPPA_OK && rc != KAPPA_ECORRUPT)
		return kp_send_kappa_error(r, rc, &err);
	json_t *o =
		json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:f}", "ok", rc == KAPPA_OK,
			  "first_position", (json_int_t)res.first_position, "end_position",
			  (json_int_t)res.end_position, "batches", (json_int_t)res.batches,
			  "events", (json_int_t)res.events, "bytes", (json_int_t)res.bytes,
			  "chain_hash", hex_json(res.chain, 32), "seconds", res.seconds, "mb_per_s",
			  res.seconds > 0 ? (double)res.bytes / 1e6 / res.seconds : 0.0);
	if (o && dp)
		json_object_set_new(o, "digest_checked", json_boolean(res.digest_checked));
	if (o && rc)
		json_object_set_new(o, "error", json_string(err.msg));
	return kp_send_json(r, MHD_HTTP_OK, kp_dump(o));
}
