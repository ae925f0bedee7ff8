/*
 * crash_log.c -- proves that appends the log acknowledged survive kill -9.
 *
 * Each round forks a child that appends from 4 threads (fsync 'always', small segments) and
 * reports every acknowledged batch through a pipe; the parent SIGKILLs it at a random moment,
 * reopens the log and checks every byte of every event against what the child must have
 * written. Prints TAP. CRASH_ROUNDS (default 200) and CRASH_SEED tune a run.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kappa.h"
#include "log/batch.h"
#include "log/log.h"
#include "testlib.h"

#define NTHREADS 4
#define MAX_BATCH 5   /* events per batch: 1..MAX_BATCH */
#define MAX_DATA 3000 /* event data: 1..MAX_DATA bytes */
#define SEGMENT_BYTES (64 * 1024)
#define PREALLOC_BYTES (32 * 1024)
#define ROUNDS_PER_DIR 50
#define FIRST_ACK_TIMEOUT_MS 30000
#define MAX_KEPT 3	/* failed log directories kept for inspection */
#define SPOT_CHECKS 256 /* acknowledged batches re-read with kp_log_read per round */

/* ---- deterministic content ------------------------------------------------------------ */

static uint64_t
event_seed(uint32_t round, uint32_t tid, uint64_t seq, uint32_t idx)
{
	return kt_mix64(kt_mix64(kt_mix64(((uint64_t)round << 8 | tid) + 0x51ed27) ^ seq) ^ idx);
}

/* How many events batch 'seq' of thread 'tid' in 'round' holds. */
static uint32_t
batch_count(uint32_t round, uint32_t tid, uint64_t seq)
{
	return 1 + (uint32_t)(event_seed(round, tid, seq, 0xffffu) % MAX_BATCH);
}

/* The stream version of an event: it names the event (the stream names the thread). */
static uint64_t
event_version(uint32_t round, uint64_t seq, uint32_t idx)
{
	return (uint64_t)round << 44 | seq << 4 | idx;
}

/* The data of event 'idx' of a batch: the first 'len' bytes of a readable header naming it
 * followed by PRNG filler. Fills 'out' (MAX_DATA bytes) and returns the length. */
static size_t
event_data(uint32_t round, uint32_t tid, uint64_t seq, uint32_t idx, uint8_t *out)
{
	uint64_t s = event_seed(round, tid, seq, idx);
	size_t len;
	if (kt_rng_next(&s) % 4 == 0)
		len = 1 + (size_t)(kt_rng_next(&s) % 64);
	else
		len = 1 + (size_t)(kt_rng_next(&s) % MAX_DATA);
	char hdr[96];
	int hl = snprintf(hdr, sizeof(hdr), "r=%u t=%u s=%" PRIu64 " i=%u;", round, tid, seq, idx);
	size_t h = (size_t)hl < len ? (size_t)hl : len;
	memcpy(out, hdr, h);
	for (size_t i = h; i < len; i += 8) {
		uint64_t v = kt_rng_next(&s);
		memcpy(out + i, &v, len - i < 8 ? len - i : 8);
	}
	return len;
}

static const char TYPE[] = "Tick";

static int
stream_name(uint32_t tid, char *out, size_t n)
{
	return snprintf(out, n, "crash-%u", tid);
}

/* NULL if 'ev' is event 'idx' of batch (round, tid, seq), else what differs. */
static const char *
event_mismatch(const kp_event *ev, uint32_t round, uint32_t tid, uint64_t seq, uint32_t idx,
	       uint8_t *scratch)
{
	char name[32];
	int nl = stream_name(tid, name, sizeof(name));
	if (ev->stream.len != (size_t)nl || memcmp(ev->stream.p, name, (size_t)nl) != 0)
		return "wrong stream";
	if (ev->type.len != sizeof(TYPE) - 1 || memcmp(ev->type.p, TYPE, sizeof(TYPE) - 1) != 0)
		return "wrong type";
	if (ev->subject.len != 0 || ev->metadata.len != 0)
		return "unexpected subject or metadata";
	if (ev->flags != 0)
		return "wrong flags";
	if (ev->version != event_version(round, seq, idx))
		return "wrong version";
	if (ev->batch_index != idx || ev->batch_count != batch_count(round, tid, seq))
		return "wrong batch index or count";
	size_t len = event_data(round, tid, seq, idx, scratch);
	if (ev->data.len != len)
		return "wrong data length";
	if (memcmp(ev->data.p, scratch, len) != 0)
		return "wrong data bytes";
	return NULL;
}

/* Who an event claims to be, from its stream and version. Returns 0, or -1 if the stream is
 * not one of ours. */
static int
event_identity(const kp_event *ev, uint32_t *round, uint32_t *tid, uint64_t *seq, uint32_t *idx)
{
	if (ev->stream.len != 7 || memcmp(ev->stream.p, "crash-", 6) != 0 ||
	    ev->stream.p[6] < '0' || ev->stream.p[6] >= '0' + NTHREADS)
		return -1;
	*tid = (uint32_t)(ev->stream.p[6] - '0');
	*round = (uint32_t)(ev->version >> 44);
	*seq = (ev->version >> 4) & ((1ull << 40) - 1);
	*idx = (uint32_t)(ev->version & 0xf);
	return 0;
}

/* ---- the child: appenders that acknowledge through a pipe ------------------------------ */

enum { REC_ACK = 1, REC_ERR = 2 };

/* One record per write() on the pipe: atomic, as it is far below PIPE_BUF. */
struct rec {
	uint32_t kind;
	uint32_t tid;
	uint64_t seq;
	uint64_t pos; /* first position of the batch */
	uint32_t count;
	int32_t rc; /* REC_ERR: the error code */
};
_Static_assert(sizeof(struct rec) == 32, "struct rec must be 32 bytes");

struct appender {
	kp_log *log;
	const kp_log_options *opts;
	int fd;
	uint32_t round, tid;
};

static void *
appender_main(void *arg)
{
	struct appender *a = arg;
	uint8_t data[MAX_DATA];
	char name[32];
	int nl = stream_name(a->tid, name, sizeof(name));
	for (uint64_t seq = 0;; seq++) {
		kp_batch b;
		kappa_err err = {0};
		uint32_t n = batch_count(a->round, a->tid, seq);
		uint64_t pos = 0;
		int rc = kp_batch_init(&b, &a->opts->limits, NULL, 0, &err);
		if (rc == KAPPA_OK) {
			for (uint32_t i = 0; i < n && rc == KAPPA_OK; i++) {
				kp_event ev;
				memset(&ev, 0, sizeof(ev));
				ev.version = event_version(a->round, seq, i);
				ev.stream = (kp_bytes){(const uint8_t *)name, (size_t)nl};
				ev.type = (kp_bytes){(const uint8_t *)TYPE, sizeof(TYPE) - 1};
				size_t len = event_data(a->round, a->tid, seq, i, data);
				ev.data = (kp_bytes){data, len};
				rc = kp_batch_add(&b, &ev, &err);
			}
			if (rc == KAPPA_OK)
				rc = kp_log_append(a->log, &b, &pos, &err);
			kp_batch_release(&b);
		}
		if (rc != KAPPA_OK) {
			struct rec r = {REC_ERR, a->tid, seq, 0, n, rc};
			fprintf(stderr,
				"# round %u child thread %u seq %" PRIu64 ": error %s: %s\n",
				a->round, a->tid, seq, kappa_strerror(rc), err.msg);
			kt_send(a->fd, &r, sizeof(r));
			return NULL;
		}
		struct rec r = {REC_ACK, a->tid, seq, pos, n, 0};
		kt_send(a->fd, &r, sizeof(r));
	}
}

static void
child_main(const char *dir, const kp_log_options *o, uint32_t round, int fd)
{
	kp_log *log = NULL;
	kappa_err err = {0};
	int rc = kp_log_open(dir, o, &log, &err);
	if (rc != KAPPA_OK) {
		struct rec r = {REC_ERR, NTHREADS, 0, 0, 0, rc};
		fprintf(stderr, "# round %u child: kp_log_open: error %s: %s\n", round,
			kappa_strerror(rc), err.msg);
		kt_send(fd, &r, sizeof(r));
		_exit(2);
	}
	pthread_t th[NTHREADS];
	struct appender a[NTHREADS];
	for (uint32_t t = 0; t < NTHREADS; t++) {
		a[t] = (struct appender){log, o, fd, round, t};
		if (pthread_create(&th[t], NULL, appender_main, &a[t]) != 0) {
			struct rec r = {REC_ERR, t, 0, 0, 0, KAPPA_ENOMEM};
			fprintf(stderr, "# round %u child: pthread_create failed\n", round);
			kt_send(fd, &r, sizeof(r));
			_exit(2);
		}
	}
	for (uint32_t t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	_exit(2); /* every appender stopped on an error */
}

/* ---- small vectors --------------------------------------------------------------------- */

struct batch_rec {
	uint32_t round, tid;
	uint64_t seq, pos;
	uint32_t count;
};

struct batches {
	struct batch_rec *v;
	size_t n, cap;
};

struct recs {
	struct rec *v;
	size_t n, cap;
	struct rec first_err; /* the first error the child reported */
};

static void
batches_push(struct batches *b, const struct batch_rec *r)
{
	b->v = kt_grow(b->v, &b->cap, b->n + 1, sizeof(*b->v));
	b->v[b->n++] = *r;
}

static void
recs_push(struct recs *b, const struct rec *r)
{
	b->v = kt_grow(b->v, &b->cap, b->n + 1, sizeof(*b->v));
	b->v[b->n++] = *r;
}

/* ---- reporting ------------------------------------------------------------------------- */

enum { CAT_ROUND, CAT_LOST, CAT_DENSE, CAT_INTACT, NCAT };

/* Pipe records: keep the acknowledgements in 'ctx' (a struct recs) and the first error. */
static int
on_rec(kt_pipe *p, const void *rec)
{
	struct recs *acks = p->ctx;
	struct rec rc;
	memcpy(&rc, rec, sizeof(rc));
	if (rc.kind == REC_ACK) {
		recs_push(acks, &rc);
		return 0;
	}
	if (p->errs == 0)
		acks->first_err = rc;
	return 1;
}

/* What the scan of the reopened log found. */
struct scan {
	uint32_t round, round0; /* this round; the first round of this directory */
	uint8_t *scratch;
	uint64_t pos; /* next expected position */
	uint64_t events;
	int in_batch;
	struct batch_rec cur;
	uint32_t next_idx;
	uint32_t last_round;
	uint64_t next_seq[NTHREADS];
	struct batches all;		     /* every complete batch, in log order */
	struct batches this_round[NTHREADS]; /* batches of this round, indexed by seq */
	uint64_t gap_events;		     /* events of batches missing before a later one */
	int bad_events;
};

static void
scan_reset(struct scan *s, uint32_t round, uint32_t round0)
{
	s->round = round;
	s->round0 = round0;
	s->pos = 0;
	s->events = 0;
	s->in_batch = 0;
	s->next_idx = 0;
	s->last_round = round0;
	memset(s->next_seq, 0, sizeof(s->next_seq));
	s->all.n = 0;
	for (int t = 0; t < NTHREADS; t++)
		s->this_round[t].n = 0;
	s->gap_events = 0;
	s->bad_events = 0;
}

static void
batch_done(struct scan *s)
{
	struct batch_rec *b = &s->cur;
	if (b->round < s->last_round)
		kt_problem(CAT_DENSE,
			   "batch r=%u t=%u s=%" PRIu64 " at %" PRIu64
			   " follows a batch of round %u",
			   b->round, b->tid, b->seq, b->pos, s->last_round);
	if (b->round != s->last_round) {
		s->last_round = b->round;
		memset(s->next_seq, 0, sizeof(s->next_seq));
	}
	uint64_t want = s->next_seq[b->tid];
	if (b->seq < want) {
		kt_problem(CAT_DENSE,
			   "batch r=%u t=%u s=%" PRIu64 " at %" PRIu64
			   " appears again (or out of order; expected s=%" PRIu64 ")",
			   b->round, b->tid, b->seq, b->pos, want);
	} else if (b->seq > want) {
		/* The child appends seq+1 only after seq was acknowledged to it. */
		uint64_t lost = 0;
		for (uint64_t q = want; q < b->seq && q < want + 100000; q++)
			lost += batch_count(b->round, b->tid, q);
		if (b->round == s->round)
			s->gap_events += lost;
		kt_problem(CAT_LOST,
			   "batches r=%u t=%u s=%" PRIu64 "..%" PRIu64 " (%" PRIu64
			   " events) missing before s=%" PRIu64 " at %" PRIu64
			   ": acknowledged to the appender, lost",
			   b->round, b->tid, want, b->seq - 1, lost, b->seq, b->pos);
	}
	if (b->seq >= want)
		s->next_seq[b->tid] = b->seq + 1;
	if (b->round == s->round && b->seq == s->this_round[b->tid].n)
		batches_push(&s->this_round[b->tid], b);
	batches_push(&s->all, b);
}

static void
scan_event(struct scan *s, const kp_event *ev)
{
	uint32_t r = 0, t = 0, i = 0;
	uint64_t q = 0;
	if (ev->position != s->pos)
		kt_problem(CAT_DENSE, "event at position %" PRIu64 " follows position %" PRIu64,
			   ev->position, s->pos - 1);
	s->pos = ev->position + 1;
	s->events++;
	const char *why = NULL;
	if (event_identity(ev, &r, &t, &q, &i) < 0)
		why = "not one of ours (bad stream name)";
	else if (r < s->round0 || r > s->round)
		why = "names a round that did not write here";
	else if (i >= MAX_BATCH)
		why = "names a bad index";
	else
		why = event_mismatch(ev, r, t, q, i, s->scratch);
	if (why) {
		s->bad_events++;
		kt_problem(CAT_INTACT,
			   "event at %" PRIu64 " (claims r=%u t=%u s=%" PRIu64
			   " i=%u, batch %u/%u, %zu data bytes): %s",
			   ev->position, r, t, q, i, ev->batch_index, ev->batch_count, ev->data.len,
			   why);
		s->in_batch = 0;
		return;
	}
	if (i == 0) {
		if (s->in_batch)
			kt_problem(CAT_DENSE,
				   "partial batch r=%u t=%u s=%" PRIu64 " at %" PRIu64
				   ": %u of %u events, then a new batch at %" PRIu64,
				   s->cur.round, s->cur.tid, s->cur.seq, s->cur.pos, s->next_idx,
				   s->cur.count, ev->position);
		s->cur = (struct batch_rec){r, t, q, ev->position, batch_count(r, t, q)};
		s->in_batch = 1;
		s->next_idx = 1;
	} else if (!s->in_batch || s->cur.round != r || s->cur.tid != t || s->cur.seq != q ||
		   s->next_idx != i) {
		kt_problem(CAT_DENSE,
			   "event r=%u t=%u s=%" PRIu64 " i=%u at %" PRIu64
			   " is not preceded by the rest of its batch",
			   r, t, q, i, ev->position);
		s->in_batch = 0;
		return;
	} else {
		s->next_idx++;
	}
	if (s->next_idx == s->cur.count) {
		batch_done(s);
		s->in_batch = 0;
	}
}

/* kp_log_read callback that checks one acknowledged batch. */
struct spot {
	struct scan *s;
	struct rec ack;
	uint32_t seen;
	const char *why;
};

static int
spot_cb(void *ctx, const kp_event *ev)
{
	struct spot *sp = ctx;
	if (ev->position != sp->ack.pos + sp->seen) {
		sp->why = "wrong position";
		return 1;
	}
	sp->why = event_mismatch(ev, sp->s->round, sp->ack.tid, sp->ack.seq, sp->seen,
				 sp->s->scratch);
	sp->seen++;
	return sp->why != NULL;
}

static int
count_cb(void *ctx, const kp_event *ev)
{
	(void)ev;
	(*(uint64_t *)ctx)++;
	return 0;
}

struct stats {
	uint64_t acked_batches, acked_events, lost_events, unacked_durable;
	uint64_t kills[3];
	uint64_t log_events; /* events in the last log verified */
	uint64_t max_log_events;
	uint64_t spot_checks;
};

/* Reopen the log after the kill and check it. Returns 0 if the log could be read. */
static int
verify(const char *dir, const kp_log_options *o, struct scan *s, struct batches *layout,
       const struct recs *acks, struct stats *st)
{
	kp_log *log = NULL;
	kappa_err err = {0};
	int rc = kp_log_open(dir, o, &log, &err);
	if (rc != KAPPA_OK) {
		uint64_t n = 0;
		for (size_t k = 0; k < acks->n; k++)
			n += acks->v[k].count;
		st->lost_events += n;
		kt_problem(CAT_ROUND,
			   "reopen failed: %s: %s (%" PRIu64
			   " acknowledged events of this round unverifiable)",
			   kappa_strerror(rc), err.msg, n);
		kt_fail(CAT_LOST);
		return -1;
	}
	uint64_t first = kp_log_first(log), head = kp_log_head(log);
	if (first != 0)
		kt_problem(CAT_DENSE, "kp_log_first is %" PRIu64 ", expected 0 (no retention)",
			   first);
	s->pos = first;

	/* (2), (3): read everything in order. */
	kp_log_iter *it = NULL;
	rc = kp_log_iter_open(log, first, &it, &err);
	if (rc != KAPPA_OK) {
		kt_problem(CAT_ROUND, "kp_log_iter_open(%" PRIu64 "): %s: %s", first,
			   kappa_strerror(rc), err.msg);
	} else {
		kp_event ev;
		while ((rc = kp_log_iter_next(it, &ev, &err)) == 1) {
			if (ev.position >= head) {
				kt_problem(CAT_DENSE,
					   "event at %" PRIu64 " readable past the head %" PRIu64,
					   ev.position, head);
				break;
			}
			scan_event(s, &ev);
		}
		if (rc < 0)
			kt_problem(CAT_INTACT, "reading at %" PRIu64 ": %s: %s",
				   kp_log_iter_position(it), kappa_strerror(rc), err.msg);
		kp_log_iter_close(it);
	}
	if (s->in_batch)
		kt_problem(CAT_DENSE,
			   "partial batch r=%u t=%u s=%" PRIu64 " at %" PRIu64
			   ": %u of %u events at the end of the log",
			   s->cur.round, s->cur.tid, s->cur.seq, s->cur.pos, s->next_idx,
			   s->cur.count);
	if (s->pos != head)
		kt_problem(CAT_DENSE,
			   "reading from %" PRIu64 " ended at %" PRIu64 ", head is %" PRIu64, first,
			   s->pos, head);

	/* (4): nothing past the head, by both reading paths. */
	uint64_t n = 0;
	rc = kp_log_read(log, head, 16, count_cb, &n, &err);
	if (rc != KAPPA_OK || n != 0)
		kt_problem(CAT_DENSE,
			   "kp_log_read at the head %" PRIu64 ": rc %s, %" PRIu64 " events", head,
			   kappa_strerror(rc), n);
	if (head > first) {
		n = 0;
		rc = kp_log_read(log, head - 1, 16, count_cb, &n, &err);
		if (rc != KAPPA_OK || n != 1)
			kt_problem(CAT_DENSE,
				   "kp_log_read at head-1 %" PRIu64 ": rc %s, %" PRIu64
				   " events (expected 1)",
				   head - 1, kappa_strerror(rc), n);
	}
	rc = kp_log_iter_open(log, head, &it, &err);
	if (rc == KAPPA_OK) {
		kp_event ev;
		rc = kp_log_iter_next(it, &ev, &err);
		if (rc != 0)
			kt_problem(CAT_DENSE, "an iterator at the head %" PRIu64 " returned %d",
				   head, rc);
		kp_log_iter_close(it);
	} else {
		kt_problem(CAT_ROUND, "kp_log_iter_open at the head: %s: %s", kappa_strerror(rc),
			   err.msg);
	}

	/* Earlier rounds' batches are all still there, unchanged. */
	for (size_t k = 0; k < layout->n; k++) {
		const struct batch_rec *a = &layout->v[k], *b = k < s->all.n ? &s->all.v[k] : a;
		if (k < s->all.n && a->round == b->round && a->tid == b->tid && a->seq == b->seq &&
		    a->pos == b->pos)
			continue;
		/* Everything from here on that was verified before is lost or moved. */
		uint64_t gone = 0;
		for (size_t j = k; j < layout->n; j++)
			gone += layout->v[j].count;
		st->lost_events += gone;
		if (k < s->all.n)
			kt_problem(CAT_LOST,
				   "batch #%zu was r=%u t=%u s=%" PRIu64 " at %" PRIu64
				   " and is now r=%u t=%u s=%" PRIu64 " at %" PRIu64 " (%" PRIu64
				   " events verified earlier lost or moved)",
				   k, a->round, a->tid, a->seq, a->pos, b->round, b->tid, b->seq,
				   b->pos, gone);
		else
			kt_problem(CAT_LOST,
				   "batch #%zu r=%u t=%u s=%" PRIu64 " at %" PRIu64
				   " and %zu more verified earlier are gone (%" PRIu64 " events)",
				   k, a->round, a->tid, a->seq, a->pos, layout->n - k - 1, gone);
		break;
	}

	/* (1): every acknowledged batch at its acknowledged position. */
	uint64_t found_batches = 0, bad_batches = 0, bad_events = 0;
	for (size_t k = 0; k < acks->n; k++) {
		const struct rec *a = &acks->v[k];
		const struct batches *tb = a->tid < NTHREADS ? &s->this_round[a->tid] : NULL;
		if (!tb || a->seq >= tb->n || tb->v[a->seq].pos != a->pos ||
		    tb->v[a->seq].count != a->count) {
			bad_batches++;
			bad_events += a->count;
		}
	}
	if (bad_batches)
		kt_problem(CAT_LOST,
			   "%" PRIu64 " of %zu acknowledged batches (%" PRIu64
			   " events) missing or misplaced; head %" PRIu64,
			   bad_batches, acks->n, bad_events, head);
	for (size_t k = 0; k < acks->n; k++) {
		const struct rec *a = &acks->v[k];
		st->acked_batches++;
		st->acked_events += a->count;
		const struct batches *tb = a->tid < NTHREADS ? &s->this_round[a->tid] : NULL;
		if (!tb || a->seq >= tb->n) {
			st->lost_events += a->count;
			kt_problem(CAT_LOST,
				   "acknowledged batch t=%u s=%" PRIu64 " at %" PRIu64
				   " (%u events) is missing",
				   a->tid, a->seq, a->pos, a->count);
			continue;
		}
		found_batches++;
		const struct batch_rec *b = &tb->v[a->seq];
		if (b->pos != a->pos || b->count != a->count) {
			st->lost_events += a->count;
			kt_problem(CAT_LOST,
				   "acknowledged batch t=%u s=%" PRIu64 " at %" PRIu64
				   " (%u events) is at %" PRIu64 " (%u events)",
				   a->tid, a->seq, a->pos, a->count, b->pos, b->count);
			continue;
		}
		/* Re-read some by position, through the index rather than in sequence. */
		if (acks->n <= SPOT_CHECKS || k % (acks->n / SPOT_CHECKS + 1) == 0) {
			struct spot sp = {s, *a, 0, NULL};
			st->spot_checks++;
			rc = kp_log_read(log, a->pos, a->count, spot_cb, &sp, &err);
			if (rc < 0 || sp.why || sp.seen != a->count)
				kt_problem(CAT_INTACT,
					   "kp_log_read(%" PRIu64 ", %u) of acknowledged t=%u"
					   " s=%" PRIu64 ": rc %s, %u events, %s",
					   a->pos, a->count, a->tid, a->seq, kappa_strerror(rc),
					   sp.seen, sp.why ? sp.why : "");
		}
	}
	st->lost_events += s->gap_events;
	uint64_t round_batches = 0;
	for (int t = 0; t < NTHREADS; t++)
		round_batches += s->this_round[t].n;
	st->unacked_durable += round_batches - found_batches;
	st->log_events = s->events;
	if (s->events > st->max_log_events)
		st->max_log_events = s->events;
	kp_log_close(log);

	/* What this round verified becomes the reference for the next ones. */
	layout->n = 0;
	for (size_t k = 0; k < s->all.n; k++)
		batches_push(layout, &s->all.v[k]);
	return 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static const char *const MODE_NAME[3] = {"at the first ack", "1-40 ms after the first ack",
					 "0-5 ms after fork"};

int
main(void)
{
	const char *e = getenv("CRASH_ROUNDS");
	long rounds = e && *e ? strtol(e, NULL, 10) : 200;
	if (rounds < 1 || rounds > 1000000)
		rounds = 200;
	uint64_t seed = kt_seed_from_env();
	uint64_t rng = seed;

	char *base = kt_tmpdir("crash_log");
	printf("# crash_log: %ld rounds, seed %" PRIu64 ", directory %s\n", rounds, seed, base);
	fflush(stdout);

	struct scan s;
	memset(&s, 0, sizeof(s));
	s.scratch = malloc(MAX_DATA);
	struct batches layout = {0};
	struct recs acks = {0};
	struct stats st;
	memset(&st, 0, sizeof(st));
	kt_notices notes = {0};
	e = getenv("CRASH_VERBOSE");
	notes.verbose = e && *e && *e != '0';
	char dir[4200] = "";
	uint32_t round0 = 0;
	int fresh = 1, kept = 0, dir_failed = 0, ndirs = 0;
	int64_t t_start = kt_now_us();

	for (uint32_t round = 1; round <= (uint32_t)rounds; round++) {
		if (fresh || (round - round0) >= ROUNDS_PER_DIR) {
			if (dir[0] && !(dir_failed && kept++ < MAX_KEPT))
				kt_rm_rf(dir);
			else if (dir[0])
				printf("# kept %s for inspection\n", dir);
			snprintf(dir, sizeof(dir), "%s/log-%03d", base, ndirs++);
			round0 = round;
			layout.n = 0;
			fresh = 0;
			dir_failed = 0;
		}
		uint64_t r1 = kt_rng_next(&rng);
		int mode = r1 % 10 == 0 ? 0 : r1 % 10 == 1 ? 2 : 1;
		int delay_us = mode == 0   ? 0
			       : mode == 1 ? 1000 + (int)(kt_rng_next(&rng) % 39001)
					   : (int)(kt_rng_next(&rng) % 5001);
		int prealloc = (kt_rng_next(&rng) >> 7) & 1;
		st.kills[mode]++;

		kp_log_options o;
		kp_log_options_init(&o);
		o.fsync_mode = KP_FSYNC_ALWAYS;
		o.segment_bytes = SEGMENT_BYTES;
		o.prealloc_bytes = prealloc ? PREALLOC_BYTES : 0;

		kt_round_start();
		acks.n = 0;
		int fd;
		pid_t pid = kt_fork_piped(&fd);
		if (pid < 0)
			return 1;
		if (pid == 0) {
			child_main(dir, &o, round, fd);
			_exit(3);
		}
		kt_pipe rd;
		kt_pipe_init(&rd, fd, sizeof(struct rec), on_rec, &acks);
		int status = kt_kill_child(&rd, pid, mode == 2, delay_us, FIRST_ACK_TIMEOUT_MS,
					   CAT_ROUND);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			if (WIFEXITED(status))
				kt_problem(CAT_ROUND,
					   "the child exited with status %d before the kill",
					   WEXITSTATUS(status));
			else
				kt_problem(CAT_ROUND, "the child died of signal %d",
					   WIFSIGNALED(status) ? WTERMSIG(status) : -1);
		}
		if (rd.errs)
			kt_problem(CAT_ROUND,
				   "the child reported %d error(s), the first %s (thread %u,"
				   " seq %" PRIu64 ")",
				   (int)rd.errs, kappa_strerror(acks.first_err.rc),
				   acks.first_err.tid, acks.first_err.seq);

		o.notice = kt_on_notice;
		o.notice_ctx = &notes;
		notes.last[0] = '\0';
		scan_reset(&s, round, round0);
		if (verify(dir, &o, &s, &layout, &acks, &st) < 0)
			fresh = 1;
		if (kt_round_problems()) {
			kt_tap(0, "round %u (kill %s, %d us, prealloc %s, %zu acks): %s%s", round,
			       MODE_NAME[mode], delay_us, prealloc ? "on" : "off", acks.n,
			       kt_round_detail(0), kt_round_problems() > 1 ? " (and more)" : "");
			for (int k = 1; k < kt_round_problems() && k < KT_MAX_DETAILS; k++)
				printf("#   %s\n", kt_round_detail(k));
			if (notes.last[0])
				printf("#   last recovery notice: %s\n", notes.last);
			printf("#   log directory %s, rounds %u..%u; rerun with CRASH_SEED=%" PRIu64
			       "\n",
			       dir, round0, round, seed);
			fresh = 1;
			dir_failed = 1;
		}
	}
	if (dir[0] && !(dir_failed && kept++ < MAX_KEPT))
		kt_rm_rf(dir);
	if (kept == 0) {
		kt_rmdir(base);
	} else {
		printf("# kept failed log directories under %s\n", base);
		free(base);
	}

	double secs = (double)(kt_now_us() - t_start) / 1e6;
	printf("# rounds=%ld acknowledged=%" PRIu64 " (batches=%" PRIu64 ") lost=%" PRIu64
	       " unacknowledged_but_durable_batches=%" PRIu64 " spot_reads=%" PRIu64
	       " recovery_notices=%" PRIu64 " largest_log=%" PRIu64 " events"
	       " kills(first-ack/delayed/early)=%" PRIu64 "/%" PRIu64 "/%" PRIu64 " seed=%" PRIu64
	       " elapsed=%.1fs\n",
	       rounds, st.acked_events, st.acked_batches, st.lost_events, st.unacked_durable,
	       st.spot_checks, notes.count, st.max_log_events, st.kills[0], st.kills[1],
	       st.kills[2], seed, secs);
	kt_tap(!kt_failed(CAT_ROUND), "%ld kill -9 rounds", rounds);
	kt_tap(!kt_failed(CAT_LOST), "%" PRIu64 " acknowledged events lost of %" PRIu64,
	       st.lost_events, st.acked_events);
	kt_tap(!kt_failed(CAT_DENSE), "positions dense, no partial batch visible");
	kt_tap(!kt_failed(CAT_INTACT), "every event intact");
	kt_tap_plan();

	free(s.scratch);
	free(s.all.v);
	for (int t = 0; t < NTHREADS; t++)
		free(s.this_round[t].v);
	free(layout.v);
	free(acks.v);
	return kt_all_passed(NCAT) ? 0 : 1;
}
