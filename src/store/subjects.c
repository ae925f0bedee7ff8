/*
 * subjects.c -- forgetting a data subject (crypto-shredding), its state, and claim ids.
 *
 * kappa_forget destroys the key first and records the forget in the log second: a crash in
 * between leaves the subject unreadable (the safe side) with the record still to write, and
 * the retry writes it. The record, {"subject": S} of type $subject_forgotten in stream
 * $subjects, carries a KP_ATTR_FORGET attribute: applying it releases the claims of every
 * stream the subject's events are in, in log order, so a rebuild does the same.
 */
#include <jansson.h>
#include <sodium.h>
#include <string.h>

#include "store/keys.h"
#include "store/store.h"

int
kappa_forget(kappa_db *db, const char *subject, kappa_forget_result *res, kappa_err *err)
{
	if (res)
		memset(res, 0, sizeof(*res));
	if (!db || !subject)
		return KP_ERR(err, KAPPA_EINVAL, "no database or subject");
	kp_bytes s = {(const uint8_t *)subject, strlen(subject)};
	int rc = kp_check_name(s.p, s.len, KAPPA_MAX_SUBJECT, "subject", err);
	if (rc)
		return rc;
	pthread_mutex_lock(&db->forget_lock);
	int state;
	uint64_t pos;
	if ((rc = kp_keys_forget(db->keys, s, &state, &pos, err)))
		goto out;
	if (state == KP_SUBJECT_FORGOTTEN && pos != UINT64_MAX) {
		if (res) {
			res->position = pos;
			res->already = 1;
		}
		goto out;
	}
	json_t *j = json_pack("{s:s%}", "subject", subject, s.len);
	char *data = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!data) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto out;
	}
	kappa_append_result ar;
	rc = kp_append_forget(db, s, data, &ar, err);
	free(data);
	if (rc == KAPPA_OK)
		rc = kp_keys_forgotten_at(db->keys, s, ar.first_position, err);
	if (rc == KAPPA_OK && res) {
		res->position = ar.first_position;
		res->already = state == KP_SUBJECT_FORGOTTEN;
	}
	if (rc == KAPPA_OK && db->o.notice) {
		char line[400];
		snprintf(line, sizeof(line), "event=subject_forgotten position=%llu",
			 (unsigned long long)ar.first_position);
		db->o.notice(db->o.notice_ctx, line);
	}
out:
	pthread_mutex_unlock(&db->forget_lock);
	return rc;
}

int
kappa_subject_state(kappa_db *db, const char *subject)
{
	if (!db || !subject)
		return 0;
	uint8_t key[KP_KEY_BYTES];
	int st = kp_keys_lookup(db->keys, (kp_bytes){(const uint8_t *)subject, strlen(subject)},
				key);
	sodium_memzero(key, sizeof(key));
	return st;
}

void
kappa_claim_id(kappa_db *db, const char *key, char out[KAPPA_CLAIM_ID])
{
	uint8_t id[KP_CLAIM_HASH];
	kp_claim_id_of_key(kp_keys_claim_secret(db->keys),
			   (kp_bytes){(const uint8_t *)key, key ? strlen(key) : 0}, id);
	sodium_bin2hex(out, KAPPA_CLAIM_ID, id, sizeof(id));
}
