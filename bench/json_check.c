/*
 * json_check.c -- benchmark of kp_json_check (src/base/json.h) against jansson's json_loadb
 * (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, which accepts the same texts) + json_decref,
 * the work it replaces on the append path, in one thread and in memory.
 *
 * Documents: event data of about 100 bytes and about 1 KiB (objects with strings, numbers,
 * an array, a nested object, some escapes and UTF-8), and a POST /streams body of 100 such
 * 100-byte events with types and metadata. Each is validated over and over for --seconds
 (--quick: 1 s, the default 2 s). A last row measures the whole append path on the body: today
 * json_loadb(JSON_REJECT_DUPLICATES) of the body, json_dumps of each event's data and
 * metadata and the store's json_loadb of each data; with this module kp_json_check of the
 * body, a walk to each event's type, data and metadata spans and kp_json_check of each
 * data span.
 *
 * Output: a human-readable table on stdout, then one JSON object per figure, one per line
 * (bench, metric, doc, value, unit, baseline = jansson's figure in the same run, ratio), and
 * nothing after them. MB = 10^6 bytes.
 *
 * Usage: json_check [--seconds S] [--quick]
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "benchlib.h"

/* One document and what each side achieved on it. */
typedef struct doc {
	const char *name; /* in the JSON lines */
	const char *label;
	kp_buf text;
	double kp_ns, jansson_ns; /* per document */
} doc;

static void
add(kp_buf *b, const char *s)
{
	if (kp_buf_append(b, s, strlen(s)) < 0)
		kb_die("out of memory");
}

static void addf(kp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
addf(kp_buf *b, const char *fmt, ...)
{
	char t[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(t) || kp_buf_append(b, t, (size_t)n) < 0)
		kb_die("document too long");
}

/* About 100 bytes of event data (varying with 'i'). */
static void
data_100(kp_buf *b, int i)
{
	addf(b,
	     "{\"user_id\":\"u-%06d\",\"username\":\"ada_%d\",\"name\":\"Ada Lovelace\",\"age\":%d,"
	     "\"verified\":%s}",
	     i, i % 1000, 20 + i % 50, i % 2 ? "true" : "false");
}

/* About 1 KiB of event data. */
static void
data_1k(kp_buf *b)
{
	add(b, "{\"post_id\":\"p-0000012345\",\"author\":\"u-004217\",\"title\":\"Notes on the "
	       "Analytical Engine\",\"body\":\"");
	for (int i = 0; i < 6; i++)
		add(b, "The engine weaves algebraic patterns \\u2014 as the Jacquard loom weaves "
		       "flowers and leaves. Caf\xc3\xa9 \\\"note\\\" ");
	add(b, "\",\"tags\":[\"history\",\"computing\",\"math\",\"engines\"],\"likes\":1234,"
	       "\"score\":4.75,\"geo\":{\"lat\":51.5072,\"lon\":-0.1276},\"draft\":false,"
	       "\"reply_to\":null,\"mentions\":[{\"user\":\"u-000001\",\"at\":12},"
	       "{\"user\":\"u-000002\",\"at\":57}],\"created\":\"2026-11-23T08:00:00.123Z\"}");
}

/* A POST /streams body with 'n' events of about 100 bytes of data. */
static void
append_body(kp_buf *b, int n)
{
	add(b,
	    "{\"expected_version\":\"any\",\"request_id\":\"5f0c6a1e-7d2b-4c1a-9e0f-3b8d2a6c4e10\","
	    "\"events\":[");
	for (int i = 0; i < n; i++) {
		addf(b, "%s{\"type\":\"UserRegistered\",\"data\":", i ? "," : "");
		data_100(b, i);
		addf(b, ",\"subject\":\"u-%06d\",\"metadata\":{\"ip\":\"10.0.%d.%d\"}}", i, i / 256,
		     i % 256);
	}
	add(b, "]}");
}

/* Nanoseconds per call of 'fn' on 'd', over about 'seconds'. */
static double
measure(int (*fn)(const kp_buf *), const kp_buf *d, double seconds)
{
	uint64_t t0 = kb_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9), now = t0, n = 0;
	for (int i = 0; i < 10; i++) /* warm up */
		if (fn(d) != 0)
			kb_die("a benchmark document was rejected");
	while (now < end) {
		for (int i = 0; i < 100; i++)
			if (fn(d) != 0)
				kb_die("a benchmark document was rejected");
		n += 100;
		now = kb_mono_ns();
	}
	return (double)(now - t0) / (double)n;
}

static int
kp_check(const kp_buf *d)
{
	return kp_json_check((const char *)d->data, d->len, NULL, NULL, 0, NULL);
}

static int
jansson_load(const kp_buf *d)
{
	json_t *j = json_loadb((const char *)d->data, d->len,
			       JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_decref(j);
	return j ? 0 : -1;
}

/* The append path with this module: check the body, find each event's spans, check data. */
static int
kp_append_path(const kp_buf *d)
{
	kp_jval body, key, val, ev, k, v;
	kp_jiter it, ei, fi;
	if (kp_json_check((const char *)d->data, d->len, &body, NULL, 0, NULL) != 0)
		return -1;
	size_t spans = 0;
	kp_jiter_init(&it, &body);
	while (kp_jiter_member(&it, &key, &val)) {
		if (!kp_jstr_eq(&key, "events"))
			continue;
		kp_jiter_init(&ei, &val);
		while (kp_jiter_elem(&ei, &ev)) {
			kp_jiter_init(&fi, &ev);
			while (kp_jiter_member(&fi, &k, &v)) {
				if (kp_jstr_eq(&k, "data")) {
					if (kp_json_check(v.p, v.n, NULL, NULL, 0, NULL) != 0)
						return -1;
					spans++;
				} else if (kp_jstr_eq(&k, "type") || kp_jstr_eq(&k, "metadata")) {
					spans++;
				}
			}
		}
	}
	return spans ? 0 : -1;
}

/* The append path today (src/server/append_parse.c and src/store/append.c). */
static int
jansson_append_path(const kp_buf *d)
{
	json_t *body = json_loadb((const char *)d->data, d->len, JSON_REJECT_DUPLICATES, NULL);
	json_t *events = json_object_get(body, "events");
	size_t i;
	json_t *ev;
	int rc = body && json_array_size(events) ? 0 : -1;
	json_array_foreach(events, i, ev)
	{
		char *data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT);
		char *meta = json_dumps(json_object_get(ev, "metadata"), JSON_COMPACT);
		json_t *check = data ? json_loadb(data, strlen(data), 0, NULL) : NULL;
		if (!check || !meta || !json_string_value(json_object_get(ev, "type")))
			rc = -1;
		json_decref(check);
		free(data);
		free(meta);
	}
	json_decref(body);
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: json_check [--seconds S] [--quick]\n");
}

int
main(int argc, char **argv)
{
	kb_init("json_check");
	kb_opts opts = {.seconds = 2, .threads = {1}, .nthreads = 1, .suffixes = false};
	static const struct option longopts[] = {KB_LONGOPTS, {NULL, 0, NULL, 0}};
	kb_opts_parse(&opts, argc, argv, longopts, NULL, NULL, usage);

	doc docs[4] = {
		{"data_100b", "event data, ~100 B", KP_BUF_INIT, 0, 0},
		{"data_1kib", "event data, ~1 KiB", KP_BUF_INIT, 0, 0},
		{"body_100_events", "append body, 100 events", KP_BUF_INIT, 0, 0},
		{"append_path_100_events", "append path, 100 events", KP_BUF_INIT, 0, 0},
	};
	data_100(&docs[0].text, 42);
	data_1k(&docs[1].text);
	append_body(&docs[2].text, 100);
	append_body(&docs[3].text, 100);
	for (int i = 0; i < 4; i++) {
		fprintf(stderr, "json_check: %s...\n", docs[i].label);
		if (i < 3) {
			docs[i].kp_ns = measure(kp_check, &docs[i].text, opts.seconds);
			docs[i].jansson_ns = measure(jansson_load, &docs[i].text, opts.seconds);
		} else {
			docs[i].kp_ns = measure(kp_append_path, &docs[i].text, opts.seconds);
			docs[i].jansson_ns =
				measure(jansson_append_path, &docs[i].text, opts.seconds);
		}
	}

	printf("\nkp_json_check against json_loadb + json_decref (one thread, %.1f s each)\n\n",
	       opts.seconds);
	printf("%-26s %7s %12s %9s %12s %9s %8s\n", "document", "bytes", "kappa ns", "MB/s",
	       "jansson ns", "MB/s", "speedup");
	for (int i = 0; i < 4; i++) {
		const doc *d = &docs[i];
		printf("%-26s %7zu %12.0f %9.1f %12.0f %9.1f %7.1fx\n", d->label, d->text.len,
		       d->kp_ns, (double)d->text.len * 1e3 / d->kp_ns, d->jansson_ns,
		       (double)d->text.len * 1e3 / d->jansson_ns,
		       kb_ratio(d->jansson_ns, d->kp_ns));
	}
	printf("\n(append path: jansson = json_loadb of the body, json_dumps of each data and "
	       "metadata,\n json_loadb of each data; kappa = kp_json_check of the body, a walk to "
	       "the spans,\n kp_json_check of each data)\n\n");
	for (int i = 0; i < 4; i++) {
		const doc *d = &docs[i];
		double mb = (double)d->text.len * 1e3 / d->kp_ns;
		double jmb = (double)d->text.len * 1e3 / d->jansson_ns;
		printf("{\"bench\":\"json_check\",\"metric\":\"mb_per_s\",\"doc\":\"%s\",\"bytes\":"
		       "%zu,"
		       "\"value\":%.1f,\"unit\":\"MB/s\",\"baseline\":%.1f,\"ratio\":%.2f}\n",
		       d->name, d->text.len, mb, jmb, kb_ratio(mb, jmb));
		printf("{\"bench\":\"json_check\",\"metric\":\"ns_per_doc\",\"doc\":\"%s\","
		       "\"bytes\":%zu,\"value\":%.0f,\"unit\":\"ns\",\"baseline\":%.0f,"
		       "\"ratio\":%.3f}\n",
		       d->name, d->text.len, d->kp_ns, d->jansson_ns,
		       kb_ratio(d->kp_ns, d->jansson_ns));
	}
	for (int i = 0; i < 4; i++)
		kp_buf_release(&docs[i].text);
	return 0;
}
