/*
 * row_json.c -- a result row of a view's statement as a JSON object, written straight into
 * a buffer (named queries, ad-hoc SQL and subject exports answer with these): integers and
 * reals as numbers, text as strings (bytes that are not UTF-8 as U+FFFD), blobs as base64,
 * NULL as null. Two columns with one name make one member, in the first's place with the
 * last's value, as a JSON object built column by column would.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "view/view.h"

int
kp_row_plan(sqlite3_stmt *st, int *plan)
{
	int n = sqlite3_column_count(st);
	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		plan[i] = i;
		for (int j = 0; j < i && name; j++) {
			if (plan[j] >= 0 && !strcmp(sqlite3_column_name(st, j), name)) {
				plan[j] = i; /* keeps its place, takes this value */
				plan[i] = -1;
				break;
			}
		}
	}
	return n;
}

static int
blob(kp_buf *out, const void *p, size_t n)
{
	size_t bl = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	if (kp_buf_reserve(out, bl + 2) < 0)
		return -1;
	out->data[out->len++] = '"';
	sodium_bin2base64((char *)out->data + out->len, bl, p, n, sodium_base64_VARIANT_ORIGINAL);
	out->len += bl - 1; /* without its NUL */
	out->data[out->len++] = '"';
	return 0;
}

static int
column(kp_buf *out, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return kp_json_i64(out, sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return kp_json_real(out, sqlite3_column_double(st, i));
	case SQLITE_TEXT: {
		const char *t = (const char *)sqlite3_column_text(st, i);
		return t ? kp_json_escape(out, t, (size_t)sqlite3_column_bytes(st, i)) : -1;
	}
	case SQLITE_BLOB: {
		const void *b = sqlite3_column_blob(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i);
		return b || !n ? blob(out, b, n) : -1;
	}
	default:
		return kp_buf_append(out, "null", 4);
	}
}

int
kp_row_write(kp_buf *out, sqlite3_stmt *st, const int *plan, int ncol, size_t *bytes)
{
	char sep = '{';
	for (int i = 0; i < ncol; i++) {
		if (plan[i] < 0)
			continue;
		const char *name = sqlite3_column_name(st, i);
		if (!name || kp_buf_append(out, &sep, 1) < 0 ||
		    kp_json_escape(out, name, strlen(name)) < 0 || kp_buf_append(out, ":", 1) < 0 ||
		    column(out, st, plan[i]) < 0)
			return -1;
		sep = ',';
	}
	for (int i = 0; bytes && i < ncol; i++)
		*bytes += (size_t)sqlite3_column_bytes(st, i) + 8;
	return kp_buf_append(out, sep == '{' ? "{}" : "}", sep == '{' ? 2 : 1);
}
