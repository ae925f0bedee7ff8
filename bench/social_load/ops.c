/*
 * ops.c -- what each operation of bench/social_load does (load.h): who acts (a Zipf choice
 * by activity, so the most active users are hot; whom to follow and whose posts spread are
 * biased to the most followed), the request it sends, and how its answer is read. It never
 * makes a follow the views could see twice or a like of a post already liked: follows only
 * undo this run's own unfollows, and likes go to this run's posts.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"

const char *const sl_op_names[N_OPS] = {"timeline", "post",   "like",
					"follow",   "search", "freshness"};

#define PICK_TRIES 50

/* ---- sets ---------------------------------------------------------------------------- */

static size_t
slot_of(const sl_set *s, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h >> 20) & (s->cap - 1);
	while (s->v[i] && s->v[i] != key)
		i = (i + 1) & (s->cap - 1);
	return i;
}

int
sl_set_has(const sl_set *s, uint64_t key)
{
	return s->cap && s->v[slot_of(s, key)] == key;
}

void
sl_set_add(sl_set *s, uint64_t key)
{
	if ((s->n + 1) * 2 > s->cap) {
		sl_set old = *s;
		s->cap = old.cap ? old.cap * 2 : 1024;
		s->v = kb_calloc(s->cap, sizeof(*s->v), "a set");
		s->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.v[i])
				sl_set_add(s, old.v[i]);
		free(old.v);
	}
	size_t i = slot_of(s, key);
	if (!s->v[i]) {
		s->v[i] = key;
		s->n++;
	}
}

void
sl_set_del(sl_set *s, uint64_t key)
{
	if (!sl_set_has(s, key))
		return;
	/* Remove and reinsert the rest of the cluster (linear probing). */
	size_t i = slot_of(s, key);
	s->v[i] = 0;
	s->n--;
	for (size_t j = (i + 1) & (s->cap - 1); s->v[j]; j = (j + 1) & (s->cap - 1)) {
		uint64_t k = s->v[j];
		s->v[j] = 0;
		s->n--;
		sl_set_add(s, k);
	}
}

/* ---- who acts ------------------------------------------------------------------------ */

/* A user by activity (Zipf over the activity ranking), never a deleted one. */
static uint32_t
active_user(sl_run *run)
{
	for (int i = 0; i < PICK_TRIES; i++) {
		uint32_t u = sg_dist_pick(&run->m.authors, &run->rng);
		if (!(run->m.users[u].flags & SG_U_DELETED))
			return u;
	}
	return 0;
}

static uint64_t
edge_key(uint32_t follower, uint32_t followee)
{
	return ((uint64_t)follower << 32) | followee;
}

/* Whether 'follower' follows 'followee' now: in the dataset and not unfollowed by us. */
static int
follows_now(const sl_run *run, uint32_t follower, uint32_t followee)
{
	return sg_model_follows(&run->m, follower, followee) &&
	       !sl_set_has(&run->unfollowed, edge_key(follower, followee));
}

/* A follower of 'author' who should see the post: a random one who follows now and is not
 * deleted; the author when there is none (home timelines hold one's own posts too). */
static uint32_t
reader_of(sl_run *run, uint32_t author)
{
	const sg_model *m = &run->m;
	uint32_t n = m->users[author].followers;
	for (int i = 0; n && i < PICK_TRIES; i++) {
		uint32_t f = m->fr[m->fr_off[author] + sg_rng_below(&run->rng, n)];
		if (!(m->users[f].flags & SG_U_DELETED) && follows_now(run, f, author))
			return f;
	}
	return author;
}

/* One of this run's acknowledged posts, the newest the likeliest (log-uniform in age). */
static int
recent_post(sl_run *run, uint32_t *out)
{
	uint32_t n = run->nposts;
	while (n && !run->posts[n - 1].position)
		n--;
	if (!n)
		return -1;
	double x = exp(sg_rng_unit(&run->rng) * log((double)n + 1)) - 1;
	uint32_t back = x >= n ? n - 1 : (uint32_t)x;
	uint32_t i = n - 1 - back;
	if (!run->posts[i].position)
		return -1;
	*out = i;
	return 0;
}

int
sl_op_plan(sl_run *run, sl_op *op)
{
	const sg_model *m = &run->m;
	switch (op->kind) {
	case OP_TIMELINE:
	case OP_SEARCH:
		op->user = active_user(run);
		return 0;
	case OP_POST:
		if (run->nposts == run->capposts) {
			run->capposts = run->capposts ? run->capposts * 2 : 4096;
			run->posts = realloc(run->posts, run->capposts * sizeof(*run->posts));
			if (!run->posts)
				kb_die("out of memory for posts");
		}
		op->post = run->nposts++;
		op->user = active_user(run);
		run->posts[op->post] = (sl_post){op->user, 0};
		return 0;
	case OP_LIKE:
		for (int i = 0; i < PICK_TRIES; i++) {
			uint32_t p, u = active_user(run);
			if (recent_post(run, &p))
				return -1;
			uint64_t key = ((uint64_t)p << 32) | (u + 1u);
			if (u == run->posts[p].author || sl_set_has(&run->liked, key))
				continue;
			sl_set_add(&run->liked, key);
			op->post = p;
			op->user = u;
			return 0;
		}
		return -1;
	case OP_FOLLOW:
		/* Follow back the oldest acknowledged unfollow half of the time (always once
		 * 50 wait), else unfollow one of an active user's followees. */
		if (run->npending > run->pending_head &&
		    (run->npending - run->pending_head > 50 || sg_rng_chance(&run->rng, 0.5))) {
			sl_edge e = run->pending[run->pending_head++];
			op->user = e.follower;
			op->other = e.followee;
			op->follow = 1;
			return 0;
		}
		for (int i = 0; i < PICK_TRIES; i++) {
			uint32_t u = active_user(run), n = m->users[u].followees;
			if (!n)
				continue;
			uint32_t v = m->fe[m->fe_off[u] + sg_rng_below(&run->rng, n)];
			if ((m->users[v].flags & SG_U_DELETED) || !follows_now(run, u, v))
				continue;
			sl_set_add(&run->unfollowed, edge_key(u, v));
			op->user = u;
			op->other = v;
			op->follow = 0;
			return 0;
		}
		return -1;
	default:
		return -1;
	}
}

/* ---- requests ------------------------------------------------------------------------ */

static void
post_id(const sl_run *run, uint32_t post, sg_buf *b)
{
	sg_buf_printf(b, "p%llu-%u", (unsigned long long)run->run_id, post + 1);
}

static void
now_iso(char out[64])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

static void
timeline_url(sl_run *run, sl_conn *c, uint32_t user)
{
	sg_buf_printf(&c->url, "%s/views/social/queries/home_timeline?user=u%u&limit=%u", run->url,
		      user + 1, run->limit);
}

void
sl_op_request(sl_run *run, sl_conn *c)
{
	sl_op *op = c->op;
	c->url.len = c->body.len = c->resp.len = 0;
	c->errbuf[0] = '\0';
	switch (op->kind) {
	case OP_TIMELINE:
		timeline_url(run, c, op->user);
		break;
	case OP_FRESH:
		timeline_url(run, c, op->user);
		if (run->fresh_wait)
			sg_buf_printf(&c->url, "&min_position=%llu",
				      (unsigned long long)run->posts[op->post].position);
		break;
	case OP_SEARCH:
		sg_buf_printf(&c->url, "%s/views/search/queries/search?q=%s&limit=20", run->url,
			      sg_text_search_term(&run->rng));
		break;
	case OP_POST: {
		char at[64];
		now_iso(at);
		sg_buf_printf(&c->url, "%s/streams/post-", run->url);
		post_id(run, op->post, &c->url);
		sg_buf_puts(&c->body, "{\"expected_version\":\"no_stream\",\"events\":[{\"type\":"
				      "\"PostCreated\",");
		sg_buf_printf(&c->body, "\"subject\":\"u%u\",\"data\":{\"post_id\":\"",
			      op->user + 1);
		post_id(run, op->post, &c->body);
		sg_buf_printf(&c->body, "\",\"author\":\"u%u\",\"body\":", op->user + 1);
		sg_buf text = {NULL, 0, 0};
		sg_text_post(&text, &run->rng, &run->m, op->user);
		sg_buf_json(&c->body, sg_buf_str(&text));
		sg_buf_free(&text);
		sg_buf_printf(&c->body, ",\"at\":\"%s\"}}]}", at);
		break;
	}
	case OP_LIKE:
		sg_buf_printf(&c->url, "%s/streams/post-", run->url);
		post_id(run, op->post, &c->url);
		sg_buf_printf(&c->body,
			      "{\"events\":[{\"type\":\"PostLiked\",\"subject\":\"u%u\",\"data\":{"
			      "\"post_id\":\"",
			      op->user + 1);
		post_id(run, op->post, &c->body);
		sg_buf_printf(&c->body, "\",\"user_id\":\"u%u\"}}]}", op->user + 1);
		break;
	case OP_FOLLOW:
		sg_buf_printf(&c->url, "%s/streams/user-u%u", run->url, op->user + 1);
		sg_buf_printf(&c->body,
			      "{\"events\":[{\"type\":\"%s\",\"subject\":\"u%u\",\"data\":{"
			      "\"follower\":\"u%u\",\"followee\":\"u%u\"}}]}",
			      op->follow ? "UserFollowed" : "UserUnfollowed", op->user + 1,
			      op->user + 1, op->other + 1);
		break;
	default:
		break;
	}
	curl_easy_setopt(c->h, CURLOPT_URL, sg_buf_str(&c->url));
	if (c->body.len) {
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)c->body.len);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, sg_buf_str(&c->body));
	} else {
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	}
}

/* ---- answers ------------------------------------------------------------------------- */

/* Queue the edge follower -> followee to be followed again. */
static void
push_pending(sl_run *run, uint32_t follower, uint32_t followee)
{
	if (run->npending == run->cappending && run->pending_head) { /* compact */
		uint32_t live = run->npending - run->pending_head;
		memmove(run->pending, run->pending + run->pending_head,
			live * sizeof(*run->pending));
		run->npending = live;
		run->pending_head = 0;
	}
	if (run->npending == run->cappending) {
		run->cappending = run->cappending ? run->cappending * 2 : 1024;
		run->pending = realloc(run->pending, run->cappending * sizeof(*run->pending));
		if (!run->pending)
			kb_die("out of memory for follows");
	}
	run->pending[run->npending++] = (sl_edge){follower, followee};
}

/* Whether the rows of a query answer hold the post 'id'. */
static int
rows_have(const sg_buf *resp, const char *id)
{
	json_t *root = json_loadb(resp->p ? resp->p : "", resp->len, 0, NULL);
	json_t *rows = json_object_get(root, "rows"), *row;
	size_t i;
	int found = 0;
	json_array_foreach(rows, i, row)
	{
		const char *p = json_string_value(json_object_get(row, "post_id"));
		if (p && !strcmp(p, id)) {
			found = 1;
			break;
		}
	}
	json_decref(root);
	return found;
}

int
sl_op_answer(sl_run *run, sl_conn *c, long status, sl_op *fresh, int *want_fresh, int *retry)
{
	sl_op *op = c->op;
	*want_fresh = *retry = 0;
	int ok = status >= 200 && status < 300;
	switch (op->kind) {
	case OP_POST: {
		if (!ok)
			return 0;
		json_t *root = json_loadb(c->resp.p ? c->resp.p : "", c->resp.len, 0, NULL);
		json_int_t last = json_integer_value(json_object_get(root, "last_position"));
		json_decref(root);
		if (last <= 0)
			return 0;
		run->posts[op->post].position = (uint64_t)last;
		memset(fresh, 0, sizeof(*fresh));
		fresh->kind = OP_FRESH;
		fresh->measured = op->measured;
		fresh->post = op->post;
		fresh->user = reader_of(run, op->user);
		*want_fresh = 1;
		return 1;
	}
	case OP_FRESH: {
		if (!ok)
			return 0;
		sg_buf id = {NULL, 0, 0};
		post_id(run, op->post, &id);
		int found = rows_have(&c->resp, sg_buf_str(&id));
		sg_buf_free(&id);
		if (!found)
			*retry = 1;
		return found;
	}
	case OP_FOLLOW:
		if (op->follow && ok)
			sl_set_del(&run->unfollowed, edge_key(op->user, op->other));
		else if (op->follow || ok) /* a failed follow back is tried again later */
			push_pending(run, op->user, op->other);
		return ok;
	default: /* a failed like stays in 'liked': it may have been applied */
		return ok;
	}
}

int
sl_url_is_loopback(const char *url)
{
	if (strncmp(url, "http://", 7))
		return 0;
	const char *h = url + 7;
	size_t n = strcspn(h, ":/");
	if (!strncmp(h, "[::1]", 5))
		return h[5] == '\0' || h[5] == ':' || h[5] == '/';
	if (n == 9 && !strncmp(h, "localhost", 9))
		return 1;
	if (strncmp(h, "127.", 4))
		return 0;
	/* 127.a.b.c with digits and dots only */
	for (size_t i = 4; i < n; i++)
		if (!(h[i] == '.' || (h[i] >= '0' && h[i] <= '9')))
			return 0;
	return 1;
}
