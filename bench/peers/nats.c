/*
 * nats.c -- bench/peers against NATS JetStream (file storage, one replica) through the C
 * client libnats. Writes are asynchronous publishes with acknowledgements on one connection:
 * each client keeps one operation in flight (closed loop), its next sent from the ack
 * callback. The stream BENCH takes the subjects bench.>; client i publishes on bench.<i>.
 *
 *   append   one message, acknowledged by the stream
 *   batch    'batch' messages published at once; the operation ends with the last ack
 *            (JetStream 2.9 has no atomic batch: a pipeline)
 *   retry    each client publishes its own message with the same Nats-Msg-Id again and again:
 *            after the first, every ack must say Duplicate
 *   read     direct get of a random sequence (js_DirectGetMsg), one thread per client
 *   catchup  an ephemeral pull consumer (deliver all, no acks) fetching 'page' messages
 *   fill     'events' messages on bench.f, asynchronously
 *   reset    delete and create the stream
 */
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"

#define STREAM "BENCH"
#define FILL_PENDING 4000

typedef struct slot {
	uint64_t t0;
	uint64_t seq; /* operations sent */
	int got;
	bool ok;
} slot;

typedef struct run {
	const pl_cfg *cfg;
	natsConnection *nc;
	jsCtx *js;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	slot *slots;
	int active; /* clients with an operation in flight */
	int want;   /* acks per operation */
	pl_window w;
	pl_tally *tally;
	uint64_t acked; /* fill */
	char rid_prefix[32];
} run;

static void
check(natsStatus s, const char *what, jsErrCode jerr)
{
	if (s != NATS_OK)
		kb_die("nats: %s: %s (JetStream error %d)", what, natsStatus_GetText(s), (int)jerr);
}

/* Publish client i's next operation. Called with r->mu held. */
static void
publish_op(run *r, int i)
{
	const pl_cfg *cfg = r->cfg;
	char subj[32];
	snprintf(subj, sizeof(subj), "bench.%d", i);
	slot *s = &r->slots[i];
	s->t0 = kb_mono_ns();
	s->got = 0;
	s->ok = true;
	s->seq++;
	for (int k = 0; k < r->want; k++) {
		natsMsg *m;
		check(natsMsg_Create(&m, subj, NULL, cfg->payload, (int)cfg->size), "message", 0);
		if (cfg->workload == PL_RETRY) {
			char rid[64];
			snprintf(rid, sizeof(rid), "%s-%d", r->rid_prefix, i);
			check(natsMsgHeader_Set(m, "Nats-Msg-Id", rid), "header", 0);
		}
		check(js_PublishMsgAsync(r->js, &m, NULL), "publish", 0);
	}
}

static void
on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	run *r = closure;
	const pl_cfg *cfg = r->cfg;
	pthread_mutex_lock(&r->mu);
	if (cfg->workload == PL_FILL) {
		if (!pa)
			pl_tally_error(r->tally, "nats: %s", pae ? pae->ErrText : "no ack");
		r->acked++;
		goto done;
	}
	int i = atoi(natsMsg_GetSubject(msg) + 6); /* "bench.<i>" */
	slot *s = &r->slots[i];
	bool ok = pa != NULL;
	if (ok && cfg->workload == PL_RETRY && s->seq > 1 && !pa->Duplicate)
		ok = false; /* only the first may store */
	if (!ok && s->ok) {
		s->ok = false;
		pl_tally_error(r->tally, "nats: %s",
			       pae  ? pae->ErrText
			       : pa ? "a retry was stored again"
				    : "no ack");
	}
	if (++s->got < r->want)
		goto done;
	uint64_t t1 = kb_mono_ns();
	if (s->ok)
		pl_tally_op(r->tally, &r->w, s->t0, t1, (uint64_t)r->want);
	if (t1 < r->w.end) {
		publish_op(r, i);
	} else if (--r->active == 0) {
		pthread_cond_signal(&r->cv);
	}
done:
	pthread_mutex_unlock(&r->mu);
	natsMsg_Destroy(msg);
}

static void
connect_js(run *r, int64_t max_pending)
{
	/* Send each publish at once, except where many go together (the client library
	 * otherwise buffers them for a flusher thread, which adds ~1 ms to every ack). */
	natsOptions *opts;
	check(natsOptions_Create(&opts), "options", 0);
	check(natsOptions_SetURL(opts, r->cfg->target), "options", 0);
	bool many = r->cfg->workload == PL_BATCH || r->cfg->workload == PL_FILL;
	check(natsOptions_SetSendAsap(opts, !many), "options", 0);
	check(natsConnection_Connect(&r->nc, opts), "connect", 0);
	natsOptions_Destroy(opts);
	jsOptions o;
	jsOptions_Init(&o);
	o.PublishAsync.MaxPending = max_pending;
	o.PublishAsync.AckHandler = on_ack;
	o.PublishAsync.AckHandlerClosure = r;
	o.PublishAsync.StallWait = 60000; /* a fill may wait long for acks on a busy machine */
	o.Wait = 30000;
	check(natsConnection_JetStream(&r->js, r->nc, &o), "JetStream context", 0);
}

static void
reset(run *r)
{
	jsErrCode jerr = 0;
	natsStatus s = js_DeleteStream(r->js, STREAM, NULL, &jerr);
	if (s != NATS_OK && s != NATS_NOT_FOUND)
		check(s, "delete stream", jerr);
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	const char *subjects[] = {"bench.>"};
	sc.Name = STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = 1;
	sc.AllowDirect = true;
	jsStreamInfo *si = NULL;
	check(js_AddStream(&si, r->js, &sc, NULL, &jerr), "add stream", jerr);
	jsStreamInfo_Destroy(si);
}

static void
fill(run *r)
{
	const pl_cfg *cfg = r->cfg;
	pl_window w = {0, 0, UINT64_MAX};
	uint64_t t0 = kb_mono_ns();
	for (uint64_t k = 0; k < cfg->events; k++) {
		natsMsg *m;
		check(natsMsg_Create(&m, "bench.f", NULL, cfg->payload, (int)cfg->size), "message",
		      0);
		check(js_PublishMsgAsync(r->js, &m, NULL), "publish", 0);
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 600000;
	check(js_PublishAsyncComplete(r->js, &po), "waiting for acks", 0);
	pl_tally_op(r->tally, &w, t0, kb_mono_ns(), r->acked);
}

static void
catchup(run *r)
{
	const pl_cfg *cfg = r->cfg;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.AckPolicy = js_AckNone;
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	check(js_PullSubscribe(&sub, r->js, "bench.>", NULL, NULL, &so, &jerr), "pull subscribe",
	      jerr);
	pl_window w = {0, 0, UINT64_MAX};
	uint64_t got = 0;
	while (got < cfg->events) {
		natsMsgList list = {0};
		uint64_t t0 = kb_mono_ns();
		check(natsSubscription_Fetch(&list, sub, cfg->page, 10000, &jerr), "fetch", jerr);
		got += (uint64_t)list.Count;
		pl_tally_op(r->tally, &w, t0, kb_mono_ns(), (uint64_t)list.Count);
		natsMsgList_Destroy(&list);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
}

/* One reading client: direct gets of random sequences until the window closes. */
static void
read_loop(void *ctx, int i, const pl_window *w, pl_tally *t)
{
	run *r = ctx;
	uint64_t rng = (0x2545f4914f6cdd1dull ^ r->cfg->nonce) + (uint64_t)i * 7919;
	for (;;) {
		jsDirectGetMsgOptions o;
		jsDirectGetMsgOptions_Init(&o);
		o.Sequence = pl_rand_below(&rng, r->cfg->events) + 1;
		natsMsg *m = NULL;
		uint64_t t0 = kb_mono_ns();
		natsStatus s = js_DirectGetMsg(&m, r->js, STREAM, NULL, &o);
		uint64_t t1 = kb_mono_ns();
		if (s == NATS_OK && natsMsg_GetDataLength(m) == (int)r->cfg->size)
			pl_tally_op(t, w, t0, t1, 1);
		else
			pl_tally_error(t, "nats: direct get %" PRIu64 ": %s", o.Sequence,
				       natsStatus_GetText(s));
		natsMsg_Destroy(m);
		if (t1 >= w->end)
			return;
	}
}

void
pl_nats_run(const pl_cfg *cfg, pl_tally *out)
{
	run r = {.cfg = cfg, .tally = out};
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	r.want = (int)pl_op_events(cfg);
	snprintf(r.rid_prefix, sizeof(r.rid_prefix), "retry-%08" PRIx32, cfg->nonce);
	connect_js(&r,
		   cfg->workload == PL_FILL ? FILL_PENDING : (int64_t)cfg->clients * r.want + 1000);
	switch (cfg->workload) {
	case PL_RESET:
		reset(&r);
		break;
	case PL_FILL:
		fill(&r);
		break;
	case PL_CATCHUP:
		catchup(&r);
		break;
	case PL_READ:
		pl_threads_run(cfg, read_loop, &r, out);
		break;
	default:
		r.slots = kb_calloc((size_t)cfg->clients, sizeof(*r.slots), "clients");
		pthread_mutex_lock(&r.mu);
		pl_window_open(&r.w, cfg);
		r.active = cfg->clients;
		for (int i = 0; i < cfg->clients; i++)
			publish_op(&r, i);
		while (r.active > 0)
			pthread_cond_wait(&r.cv, &r.mu);
		pthread_mutex_unlock(&r.mu);
		free(r.slots);
		break;
	}
	jsCtx_Destroy(r.js);
	natsConnection_Destroy(r.nc);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
}
