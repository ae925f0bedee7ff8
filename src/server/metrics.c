/*
 * metrics.c -- GET /metrics in the Prometheus text format (version 0.0.4): the log's
 * counters and histograms (kappa_stats_get), each view's position, lag and state, and the
 * server's own requests by route and status, latencies, connections and subscribers.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "server/server_int.h"

const unsigned kp_status_slot_codes[KP_STATUS_SLOTS] = {200, 201, 202, 204, 400, 401, 403, 404,
							405, 408, 409, 413, 414, 415, 416, 429,
							431, 500, 503, 504, 507, 0 /* other */};

const double kp_latency_bounds[KP_LATENCY_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						      0.05,   0.1,   0.25,   0.5,   1,	  INFINITY};

void
kp_metrics_count(kp_server *s, kp_route route, unsigned status, int64_t ns)
{
	if (route >= KP_R_COUNT)
		route = KP_R_OTHER;
	size_t slot = KP_STATUS_SLOTS - 1;
	for (size_t i = 0; i + 1 < KP_STATUS_SLOTS; i++)
		if (kp_status_slot_codes[i] == status)
			slot = i;
	atomic_fetch_add(&s->m.requests[route][slot], 1);
	double sec = (double)(ns < 0 ? 0 : ns) / 1e9;
	size_t b = 0;
	while (b + 1 < KP_LATENCY_BUCKETS && sec > kp_latency_bounds[b])
		b++;
	atomic_fetch_add(&s->m.latency[route][b], 1);
	atomic_fetch_add(&s->m.latency_us_sum[route], (uint64_t)(ns < 0 ? 0 : ns) / 1000);
}

typedef struct out {
	kp_buf b;
	int oom;
} out;

static void __attribute__((format(printf, 2, 3))) put(out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) || kp_buf_append(&o->b, line, (size_t)n) < 0)
		o->oom = 1;
}

static void
meta(out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
scalar(out *o, const char *name, const char *type, const char *help, double v)
{
	meta(o, name, type, help);
	if (v >= 0 && v < 9e15 && v == (double)(uint64_t)v)
		put(o, "%s %llu\n", name, (unsigned long long)v);
	else
		put(o, "%s %.6f\n", name, v);
}

static void
le_text(double le, char *buf, size_t n)
{
	if (isinf(le))
		snprintf(buf, n, "+Inf");
	else
		snprintf(buf, n, "%g", le);
}

/* One histogram series from per-bucket (not cumulative) counts. */
static void
histogram(out *o, const char *name, const char *labels, const double *le, const uint64_t *counts,
	  size_t n, double sum)
{
	uint64_t cum = 0;
	char lt[32];
	for (size_t i = 0; i < n; i++) {
		cum += counts[i];
		le_text(le[i], lt, sizeof(lt));
		put(o, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, *labels ? "," : "", lt,
		    (unsigned long long)cum);
	}
	put(o, "%s_sum%s%s%s %.17g\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", sum);
	put(o, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (unsigned long long)cum);
}

/* A view name as a label value: names are [A-Za-z0-9_] (view definitions), so no escaping
 * is needed; anything else is replaced to keep the output valid whatever happens. */
static void
label_value(const char *in, char *outv, size_t n)
{
	size_t i = 0;
	for (; in[i] && i + 1 < n; i++)
		outv[i] = (in[i] == '"' || in[i] == '\\' || in[i] == '\n') ? '_' : in[i];
	outv[i] = '\0';
}

/* The views' statuses, gathered so each metric family can list every view together (the
 * text format wants a family's lines after its one HELP/TYPE). */
typedef struct view_list {
	kappa_view_status *v;
	size_t n, cap;
	int oom;
} view_list;

static void
view_cb(void *ctx, const kappa_view_status *st)
{
	view_list *l = ctx;
	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 8;
		kappa_view_status *nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv) {
			l->oom = 1;
			return;
		}
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = *st;
}

static void
views_section(out *o, kappa_db *db)
{
	view_list l = {0};
	kappa_err err;
	kappa_views_list(db, view_cb, &l, &err);
	if (l.oom)
		o->oom = 1;
	char v[80];
	meta(o, "kappa_view_position", "gauge", "Events below this position are applied.");
	for (size_t i = 0; i < l.n; i++) {
		label_value(l.v[i].name, v, sizeof(v));
		put(o, "kappa_view_position{view=\"%s\"} %llu\n", v,
		    (unsigned long long)l.v[i].position);
	}
	meta(o, "kappa_view_lag_events", "gauge", "Head minus the view's position.");
	for (size_t i = 0; i < l.n; i++) {
		label_value(l.v[i].name, v, sizeof(v));
		put(o, "kappa_view_lag_events{view=\"%s\"} %llu\n", v,
		    (unsigned long long)l.v[i].lag);
	}
	meta(o, "kappa_view_apply_rate", "gauge", "Events applied per second, recently.");
	for (size_t i = 0; i < l.n; i++) {
		label_value(l.v[i].name, v, sizeof(v));
		put(o, "kappa_view_apply_rate{view=\"%s\"} %.17g\n", v, l.v[i].events_per_s);
	}
	meta(o, "kappa_view_state", "gauge", "1 for the view's current state.");
	for (size_t i = 0; i < l.n; i++) {
		label_value(l.v[i].name, v, sizeof(v));
		for (int st = KAPPA_VIEW_CATCHING_UP; st <= KAPPA_VIEW_STOPPED; st++)
			put(o, "kappa_view_state{view=\"%s\",state=\"%s\"} %d\n", v,
			    kappa_view_state_name((kappa_view_state)st),
			    l.v[i].state == (kappa_view_state)st);
	}
	free(l.v);
}

static void
http_section(out *o, kp_server *s)
{
	meta(o, "kappa_http_requests_total", "counter",
	     "HTTP requests answered, by route and status.");
	for (int r = 0; r < KP_R_COUNT; r++)
		for (int i = 0; i < KP_STATUS_SLOTS; i++) {
			uint64_t n = atomic_load(&s->m.requests[r][i]);
			if (!n)
				continue;
			char st[16];
			if (kp_status_slot_codes[i])
				snprintf(st, sizeof(st), "%u", kp_status_slot_codes[i]);
			else
				snprintf(st, sizeof(st), "other");
			put(o, "kappa_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
			    kp_route_name((kp_route)r), st, (unsigned long long)n);
		}
	meta(o, "kappa_http_request_duration_seconds", "histogram",
	     "Time from a request's headers to its answer, by route.");
	for (int r = 0; r < KP_R_COUNT; r++) {
		uint64_t c[KP_LATENCY_BUCKETS], total = 0;
		for (int i = 0; i < KP_LATENCY_BUCKETS; i++)
			total += c[i] = atomic_load(&s->m.latency[r][i]);
		if (!total)
			continue;
		char labels[48];
		snprintf(labels, sizeof(labels), "route=\"%s\"", kp_route_name((kp_route)r));
		histogram(o, "kappa_http_request_duration_seconds", labels, kp_latency_bounds, c,
			  KP_LATENCY_BUCKETS, (double)atomic_load(&s->m.latency_us_sum[r]) / 1e6);
	}
	scalar(o, "kappa_http_open_connections", "gauge", "Open HTTP connections.",
	       atomic_load(&s->connections));
	scalar(o, "kappa_http_appends_in_flight", "gauge",
	       "Appends waiting for their group commit.", atomic_load(&s->inflight));
	scalar(o, "kappa_http_slow_requests_closed_total", "counter",
	       "Connections closed because a request took longer than the request timeout.",
	       (double)atomic_load(&s->m.reaped));
	scalar(o, "kappa_http_overloaded_total", "counter",
	       "Requests refused for lack of capacity (503 with Retry-After).",
	       (double)atomic_load(&s->m.overloaded));
	scalar(o, "kappa_subscribers", "gauge", "Open /subscribe streams.",
	       kp_sse_hub_count(s->sse));
	scalar(o, "kappa_subscriber_events_total", "counter", "Events sent to subscribers.",
	       (double)atomic_load(&s->m.sse_events));
}

int
kp_http_metrics(kp_request *r)
{
	kp_server *s = r->srv;
	kappa_stats st;
	kappa_stats_get(s->db, &st);
	out o = {0};
	put(&o, "# HELP kappa_build_info The running kappa.\n# TYPE kappa_build_info gauge\n");
	put(&o, "kappa_build_info{version=\"%s\"} 1\n", kappa_version());
	scalar(&o, "kappa_uptime_seconds", "gauge", "Seconds since the server started.",
	       (double)(kp_now_ms() - s->started_ms) / 1000.0);
	scalar(&o, "kappa_head_position", "gauge", "The position the next event will get.",
	       (double)st.head);
	scalar(&o, "kappa_first_position", "gauge", "The first position retention kept.",
	       (double)st.first_position);
	scalar(&o, "kappa_index_position", "gauge",
	       "The event index has applied events below this.", (double)st.index_position);
	scalar(&o, "kappa_appends_total", "counter", "Appends committed.", (double)st.appends);
	scalar(&o, "kappa_events_total", "counter", "Events committed.", (double)st.events);
	scalar(&o, "kappa_log_written_bytes_total", "counter", "Bytes written to the log.",
	       (double)st.bytes);
	scalar(&o, "kappa_group_commits_total", "counter", "Group-commit writes.",
	       (double)st.group_commits);
	scalar(&o, "kappa_log_segments", "gauge", "Log segment files.", (double)st.segments);
	scalar(&o, "kappa_log_disk_bytes", "gauge", "Bytes in log segment files.",
	       (double)st.disk_bytes);
	meta(&o, "kappa_fsync_seconds", "histogram", "fdatasync latency of the log.");
	histogram(&o, "kappa_fsync_seconds", "", st.sync_le_seconds, st.sync_count,
		  KAPPA_STATS_BUCKETS, st.sync_seconds);
	meta(&o, "kappa_group_commit_appends", "histogram", "Appends per group commit.");
	histogram(&o, "kappa_group_commit_appends", "", st.group_le_appends, st.group_count,
		  KAPPA_STATS_BUCKETS, (double)st.appends);
	views_section(&o, s->db);
	http_section(&o, s);
	if (o.oom) {
		kp_buf_release(&o.b);
		return KP_HTTP_CLOSE;
	}
	const kp_http_hdr h = {"Content-Type", "text/plain; version=0.0.4; charset=utf-8"};
	int ret = kp_http_respond(r->conn, 200, &h, 1, o.b.data, o.b.len);
	kp_buf_release(&o.b);
	r->sent_status = 200;
	return ret;
}
