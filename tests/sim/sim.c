/*
 * sim.c -- kappa's deterministic fault simulation: thousands of seeded scenarios in one
 * process, each a few epochs of appends (request ids, expected versions, claims, retries)
 * against a database whose log runs on the simulated I/O of tests/lib/simio.h, with EIO,
 * full disks, short writes, failed syncs and power cuts drawn from the seed; after every
 * epoch the database is reopened without faults and checked (sim_check.c).
 *
 *   sim                      SIM_SCENARIOS (default 1000) scenarios from a random first
 *                            seed (SIM_SEED to fix it); prints TAP
 *   sim --seed N [--keep]    the one scenario N, saying what it does (the reproduction)
 *   sim --scenarios N --first-seed S
 *
 * Data goes under $SIM_DIR, else /dev/shm, else $TEST_TMPDIR or /tmp.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "simio.h"
#include "store/store.h"
#include "testlib.h"
#include "view/view.h"

#define MAX_FAILED_SEEDS 5 /* stop after this many failing scenarios */

static const char VIEW_SQL[] =
	"-- @view counts\n"
	"CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL, total INTEGER NOT "
	"NULL);\n"
	"-- @on Tick\n"
	"INSERT INTO counts VALUES (:stream, 1, :data->>'$.n')\n"
	"  ON CONFLICT(stream) DO UPDATE SET n = n + 1, total = total + excluded.total;\n"
	"-- @query all()\n"
	"SELECT stream, n, total FROM counts ORDER BY stream;\n";

static int verbose;

static char *views_dir;

/* Totals over the run. */
static struct {
	uint64_t scenarios, epochs, attempts, acked, dedup, absent, uncertain, retries,
		reopens_faulty, open_failures, view_checks, rebuilds, events;
	int64_t us_open, us_append, us_check, us_close; /* where the time goes */
	kt_sim_stats io;
} tot;

static void
close_db(kappa_db *db)
{
	int64_t t0 = kt_now_us();
	kappa_close(db);
	tot.us_close += kt_now_us() - t0;
}

#define say(...)                                                                                   \
	do {                                                                                       \
		if (verbose)                                                                       \
			printf("# " __VA_ARGS__);                                                  \
	} while (0)

static void
on_notice(void *ctx, const char *line)
{
	(void)ctx;
	printf("#   notice: %s\n", line);
}

/* Open the database in 'dir' with its log on the simulator, as kappa_open does. */
static int
open_db(const char *dir, kt_sim *sim, int views, uint64_t segment, kappa_db **db, kappa_err *err)
{
	kappa_options o;
	kappa_options_init(&o);
	o.segment_bytes = segment;
	o.index_map_bytes = 8u << 20;
	o.views_dir = views ? views_dir : NULL;
	if (verbose)
		o.notice = on_notice;
	kp_store_io sio = {kt_sim_io(sim), 1};
	int64_t t0 = kt_now_us();
	int rc = kp_store_open_io(dir, &o, &sio, db, err);
	if (rc == KAPPA_OK && (rc = kp_views_open(*db, o.views_dir, err))) {
		kappa_close(*db);
		*db = NULL;
	}
	tot.us_open += kt_now_us() - t0;
	return rc;
}

/* ---- one append ------------------------------------------------------------------------ */

static sim_attempt *
new_attempt(sim_model *m)
{
	m->a = kt_grow(m->a, &m->cap, m->n + 1, sizeof(*m->a));
	sim_attempt *a = &m->a[m->n];
	memset(a, 0, sizeof(*a));
	a->claim = -1;
	return a;
}

/* Make 'a' the same request as 'o' (content, expected version, id, claim), not yet sent. */
static void
copy_request(sim_attempt *a, const sim_attempt *o)
{
	memset(a, 0, sizeof(*a));
	a->cid = o->cid;
	a->stream = o->stream;
	a->n = o->n;
	a->expected = o->expected;
	memcpy(a->rid, o->rid, sizeof(a->rid));
	a->claim = o->claim;
	a->release = o->release;
}

/* An earlier attempt with a request id (-1: none found). */
static long
pick_with_rid(const sim_model *m, uint64_t *rng)
{
	for (int t = 0; t < 8 && m->n; t++) {
		size_t j = (size_t)(kt_rng_next(rng) % m->n);
		if (m->a[j].rid[0])
			return (long)j;
	}
	return -1;
}

static int64_t
choose_expected(const sim_model *m, int st, uint64_t r)
{
	int64_t b = m->believed[st];
	switch (r % 20) {
	case 0 ... 7:
		return KAPPA_ANY;
	case 8 ... 12:
		return b >= 0 ? b : KAPPA_NO_STREAM;
	case 13 ... 14:
		return KAPPA_NO_STREAM;
	case 15 ... 16:
		return KAPPA_EXISTS;
	default:
		return b + 1; /* wrong unless an uncertain append landed */
	}
}

/* Send attempt 'a' (its content fields filled) and record the answer. */
static void
send(kappa_db *db, sim_model *m, sim_attempt *a, int faults)
{
	size_t idx = (size_t)(a - m->a);
	m->n++;
	kappa_event_in ev[SIM_MAX_EV];
	char data[SIM_MAX_EV][SIM_MAX_PAD + 128], meta[SIM_MAX_EV][64], subj[SIM_MAX_EV][16];
	for (int i = 0; i < a->n; i++) {
		const char *mp;
		int sealm;
		sim_event(m, a->cid, i, data[i], sizeof(data[i]), meta[i], sizeof(meta[i]), &mp);
		const char *sp = sim_subject(m, a->cid, i, subj[i], sizeof(subj[i]), &sealm);
		ev[i] = (kappa_event_in){.type = "Tick",
					 .data = data[i],
					 .metadata = mp,
					 .subject = sp,
					 .seal_metadata = sealm};
	}
	char key[8];
	kappa_claim cl = {key, a->release};
	snprintf(key, sizeof(key), "k%d", a->claim);
	kappa_err err;
	memset(&err, 0, sizeof(err));
	a->rc = kappa_append(db, sim_stream(a->stream), a->expected, a->rid[0] ? a->rid : NULL, ev,
			     (size_t)a->n, &cl, a->claim >= 0 ? 1 : 0, &a->res, &err);
	tot.attempts++;
	switch (a->rc) {
	case KAPPA_OK:
		a->outcome = A_ACKED;
		tot.acked++;
		if (a->res.deduplicated)
			tot.dedup++;
		else
			m->believed[a->stream] = (int64_t)a->res.version;
		break;
	case KAPPA_EWRONG_VERSION:
	case KAPPA_ECLAIM_TAKEN:
	case KAPPA_EREQUEST_REUSED:
	case KAPPA_ENOSPC:
		a->outcome = A_ABSENT;
		a->head_at = kappa_head(db);
		tot.absent++;
		break;
	case KAPPA_EFATAL:
	case KAPPA_EIO:
		a->outcome = A_UNCERTAIN;
		tot.uncertain++;
		if (!faults)
			kt_problem(P_OPEN, "attempt %zu failed with no fault injected: %s", idx,
				   err.msg);
		break;
	default:
		a->outcome = A_UNCERTAIN;
		kt_problem(P_OPEN, "attempt %zu: kappa_append answered %s: %s", idx,
			   kappa_strerror(a->rc), err.msg);
	}
	say("attempt %zu: append %u %s n=%d expected=%" PRId64 " rid=%s claim=%s%d -> %s %" PRIu64
	    "..%" PRIu64 " v%" PRIu64 "%s\n",
	    idx, a->cid, sim_stream(a->stream), a->n, a->expected, a->rid[0] ? a->rid : "-",
	    a->release ? "-" : "+", a->claim, kappa_strerror(a->rc), a->res.first_position,
	    a->res.last_position, a->res.version, a->res.deduplicated ? " (deduplicated)" : "");
}

/* A random append: new content, a retry of an earlier request, or a reuse of its id. */
static void
random_append(kappa_db *db, sim_model *m, uint64_t *rng, int faults)
{
	uint64_t r = kt_rng_next(rng);
	long j = -1;
	if (r % 100 < 13)
		j = pick_with_rid(m, rng);
	sim_attempt *a = new_attempt(m);
	size_t idx = m->n;
	if (j >= 0 && r % 100 < 10) { /* the same request again */
		copy_request(a, &m->a[m->a[j].cid]);
		send(db, m, a, faults);
		return;
	}
	a->cid = (uint32_t)idx;
	a->stream = (int)(kt_rng_next(rng) % SIM_STREAMS);
	a->n = 1 + (int)(kt_rng_next(rng) % SIM_MAX_EV);
	a->expected = choose_expected(m, a->stream, kt_rng_next(rng));
	if (j >= 0) /* another content under an id already used */
		memcpy(a->rid, m->a[j].rid, sizeof(a->rid));
	else if (kt_rng_next(rng) % 4)
		snprintf(a->rid, sizeof(a->rid), "r%zu", idx);
	uint64_t c = kt_rng_next(rng);
	if (c % 10 < 3) {
		a->claim = (int)((c >> 8) % SIM_KEYS);
		a->release = (c >> 16) % 10 < 3;
	}
	send(db, m, a, faults);
}

/* After a fault-free reopen: send every uncertain request with an id again (same content):
 * each must be answered from the log (deduplicated) or appended now, or refused by a rule. */
static void
retry_uncertain(kappa_db *db, sim_model *m, size_t upto)
{
	for (size_t i = 0; i < upto; i++) {
		if (m->a[i].outcome != A_UNCERTAIN || !m->a[i].rid[0])
			continue;
		m->a[i].outcome = A_ABSENT + 10; /* retried: still uncertain, not again */
		sim_attempt *a = new_attempt(m);
		copy_request(a, &m->a[m->a[i].cid]);
		send(db, m, a, 0);
		tot.retries++;
	}
	for (size_t i = 0; i < upto; i++)
		if (m->a[i].outcome == A_ABSENT + 10)
			m->a[i].outcome = A_UNCERTAIN;
}

/* ---- one scenario ---------------------------------------------------------------------- */

static void
draw_faults(uint64_t *rng, kt_sim_faults *f)
{
	memset(f, 0, sizeof(*f));
	uint64_t r = kt_rng_next(rng);
	switch (r % 6) {
	case 0: /* only a power cut */
		break;
	case 1:
		f->eio_ppm = 10000;
		break;
	case 2:
		f->enospc_ppm = 40000;
		break;
	case 3:
		f->short_ppm = 80000;
		f->sync_ppm = 10000;
		break;
	case 4:
		f->eio_ppm = 4000;
		f->enospc_ppm = 15000;
		f->short_ppm = 30000;
		f->sync_ppm = 4000;
		break;
	default: /* a quiet epoch */
		return;
	}
	if ((r >> 8) % 2 || r % 6 == 0)
		f->cut_after = 1 + (r >> 16) % 250;
}

/* What a power cut did to the index (LMDB, not simulated): kept as the process left it,
 * lost, or found open under another boot id. */
static void
index_after_cut(const char *data, uint64_t r)
{
	char path[4200];
	switch (r % 3) {
	case 0:
		say("power cut: the index is kept\n");
		break;
	case 1:
		say("power cut: the index is lost\n");
		if (snprintf(path, sizeof(path), "%s/index", data) < (int)sizeof(path))
			kt_rm_rf(path);
		break;
	default: {
		say("power cut: the index was open under another boot\n");
		FILE *f = snprintf(path, sizeof(path), "%s/index/state", data) < (int)sizeof(path)
				  ? fopen(path, "w")
				  : NULL;
		if (f) {
			fputs("open 00000000-0000-0000-0000-000000000000\n", f);
			fclose(f);
		}
	}
	}
}

/* Run scenario 'seed'; 1 if it found problems. */
static int
scenario(const char *root, uint64_t seed, int keep)
{
	char base[4096], data[4200], grave[4200];
	if (snprintf(base, sizeof(base), "%s/s%" PRIu64, root, seed) >= (int)sizeof(base) ||
	    snprintf(data, sizeof(data), "%s/d", base) >= (int)sizeof(data) ||
	    snprintf(grave, sizeof(grave), "%s/grave", base) >= (int)sizeof(grave)) {
		fprintf(stderr, "sim: path too long\n");
		exit(1);
	}
	kt_rm_rf(base);
	if (mkdir(base, 0755) != 0) {
		perror(base);
		exit(1);
	}
	kt_round_start();
	kt_sim *sim = kt_sim_new(seed, grave);
	uint64_t rng = kt_mix64(seed);
	int views = seed % 16 == 0, rebuild = views && (seed / 16) % 2 == 0;
	uint64_t segment = kt_rng_next(&rng) % 2 ? 8192 : 32768;
	sim_model m = {.seed = seed};
	for (int k = 0; k < SIM_STREAMS; k++)
		m.believed[k] = -1;
	kappa_db *db = NULL;
	kappa_err err;
	int epochs = 2 + (int)(kt_rng_next(&rng) % 3);
	say("scenario %" PRIu64 ": %d epochs, segments of %" PRIu64 " bytes, views %s\n", seed,
	    epochs, segment, views ? (rebuild ? "on, with a rebuild" : "on") : "off");
	if (open_db(data, sim, views, segment, &db, &err)) {
		kt_problem(P_OPEN, "the first open failed: %s", err.msg);
		goto out;
	}
	for (int e = 0; e < epochs; e++) {
		tot.epochs++;
		kt_sim_faults f;
		draw_faults(&rng, &f);
		say("epoch %d: eio=%u enospc=%u short=%u sync=%u cut_after=%" PRIu64 "\n", e,
		    f.eio_ppm, f.enospc_ppm, f.short_ppm, f.sync_ppm, f.cut_after);
		int faults = f.eio_ppm || f.enospc_ppm || f.short_ppm || f.sync_ppm || f.cut_after;
		uint64_t r = kt_rng_next(&rng);
		kt_sim_set_faults(sim, &f);
		if (r % 4 == 0) { /* reopen with the faults armed: recovery meets them too */
			close_db(db);
			tot.reopens_faulty++;
			int rc = open_db(data, sim, views, segment, &db, &err);
			say("open with faults: %s %s\n", kappa_strerror(rc), rc ? err.msg : "");
			if (rc) {
				db = NULL;
				tot.open_failures++;
				if (rc != KAPPA_EIO && rc != KAPPA_ENOSPC && rc != KAPPA_EFATAL)
					kt_problem(P_OPEN, "open with faults answered %s: %s",
						   kappa_strerror(rc), err.msg);
			}
		}
		int k = 5 + (int)((r >> 8) % 30);
		int64_t t0 = kt_now_us();
		for (int i = 0; db && i < k; i++)
			random_append(db, &m, &rng, faults);
		tot.us_append += kt_now_us() - t0;
		if (!kt_sim_is_cut(sim) && (r >> 16) % 3 == 0)
			kt_sim_cut_now(sim); /* a power cut between two calls */
		close_db(db);
		db = NULL;
		if (kt_sim_is_cut(sim)) {
			enum kt_cut_mode mode = (r >> 20) % 2 ? KT_CUT_TEAR : KT_CUT_DROP;
			say("power cut (%s)\n", mode == KT_CUT_TEAR ? "tearing" : "dropping");
			kt_sim_power_cut(sim, mode);
			index_after_cut(data, r >> 24);
		} else {
			kt_sim_reset(sim);
		}
		int rc = open_db(data, sim, views, segment, &db, &err);
		if (rc) {
			kt_problem(P_OPEN, "epoch %d: the fault-free reopen failed: %s: %s", e,
				   kappa_strerror(rc), err.msg);
			db = NULL;
			break;
		}
		size_t before = m.n;
		t0 = kt_now_us();
		tot.events = sim_check(db, &m, views, 0);
		tot.us_check += kt_now_us() - t0;
		if (views)
			tot.view_checks++;
		retry_uncertain(db, &m, before);
	}
	if (db) {
		sim_check(db, &m, views, rebuild);
		if (rebuild)
			tot.rebuilds++;
	}
out:
	close_db(db);
	kt_sim_stats st;
	kt_sim_get_stats(sim, &st);
	kt_sim_free(sim);
	tot.io.calls += st.calls;
	tot.io.eio += st.eio;
	tot.io.enospc += st.enospc;
	tot.io.short_writes += st.short_writes;
	tot.io.sync_fails += st.sync_fails;
	tot.io.cuts += st.cuts;
	tot.io.torn += st.torn;
	tot.io.files_restored += st.files_restored;
	tot.io.entries_reverted += st.entries_reverted;
	tot.scenarios++;
	free(m.a);
	int bad = kt_round_problems() > 0;
	if (!bad && !keep)
		kt_rm_rf(base);
	return bad;
}

/* ---- main ------------------------------------------------------------------------------ */

static const char *
pick_root(void)
{
	const char *e = getenv("SIM_DIR");
	if (e && *e)
		return e;
	if (access("/dev/shm", W_OK) == 0)
		return "/dev/shm";
	e = getenv("TEST_TMPDIR");
	return e && *e ? e : "/tmp";
}

/* Seeds that once failed, run before the others every time (each is the regression test of
 * the bug it found; docs/testing.md says which). */
static const uint64_t regression_seeds[] = {
	250714189, /* a write cut short by ENOSPC left bytes after a sealed segment's end */
};

int
main(int argc, char **argv)
{
	long scenarios = 1000;
	uint64_t first = 0, one = 0;
	int have_first = 0, have_one = 0, keep = 0;
	const char *e = getenv("SIM_SCENARIOS");
	if (e && *e)
		scenarios = strtol(e, NULL, 10);
	if ((e = getenv("SIM_SEED")) && *e) {
		first = strtoull(e, NULL, 0);
		have_first = 1;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			one = strtoull(argv[++i], NULL, 0);
			have_one = 1;
		} else if (!strcmp(argv[i], "--scenarios") && i + 1 < argc) {
			scenarios = strtol(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--first-seed") && i + 1 < argc) {
			first = strtoull(argv[++i], NULL, 0);
			have_first = 1;
		} else if (!strcmp(argv[i], "--keep")) {
			keep = 1;
		} else {
			fprintf(stderr,
				"usage: %s [--seed N [--keep]] [--scenarios N] [--first-seed S]\n",
				argv[0]);
			return 2;
		}
	}
	if (!have_first)
		first = ((uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid() << 20) % 1000000000u;
	char rootbuf[4096];
	snprintf(rootbuf, sizeof(rootbuf), "%s/kappa-sim-%ld", pick_root(), (long)getpid());
	if (mkdir(rootbuf, 0755) != 0) {
		perror(rootbuf);
		return 1;
	}
	char vd[4200], vf[4300];
	snprintf(vd, sizeof(vd), "%s/views", rootbuf);
	snprintf(vf, sizeof(vf), "%s/counts.sql", vd);
	FILE *f = NULL;
	if (mkdir(vd, 0755) != 0 || !(f = fopen(vf, "w")) || fputs(VIEW_SQL, f) < 0 ||
	    fclose(f) != 0) {
		perror(vf);
		return 1;
	}
	views_dir = vd;
	if (have_one) {
		verbose = 1;
		first = one;
		scenarios = 1;
	}
	printf("# sim: %ld scenarios from seed %" PRIu64 " under %s\n", scenarios, first, rootbuf);
	int64_t t0 = kt_mono_ms();
	int failed = 0;
	long nreg = have_one ? 0 : (long)(sizeof(regression_seeds) / sizeof(regression_seeds[0]));
	for (long i = -nreg; i < scenarios && failed < MAX_FAILED_SEEDS; i++) {
		uint64_t seed = i < 0 ? regression_seeds[nreg + i] : first + (uint64_t)i;
		if (scenario(rootbuf, seed, keep)) {
			failed++;
			printf("# scenario %" PRIu64 " failed:\n", seed);
			kt_print_details();
			printf("# reproduce: %s --seed %" PRIu64 "\n", argv[0], seed);
		}
	}
	double secs = (double)(kt_mono_ms() - t0) / 1000.0;
	printf("# %" PRIu64 " scenarios, %" PRIu64 " epochs in %.1f s (%.0f per minute): "
	       "%" PRIu64 " appends (%" PRIu64 " acknowledged, %" PRIu64 " deduplicated, "
	       "%" PRIu64 " refused, %" PRIu64 " uncertain, %" PRIu64 " retried)\n",
	       tot.scenarios, tot.epochs, secs, secs > 0 ? tot.scenarios * 60.0 / secs : 0.0,
	       tot.attempts, tot.acked, tot.dedup, tot.absent, tot.uncertain, tot.retries);
	printf("# I/O: %" PRIu64 " calls, %" PRIu64 " EIO, %" PRIu64 " ENOSPC, %" PRIu64
	       " short writes, %" PRIu64 " failed syncs, %" PRIu64 " power cuts (%" PRIu64
	       " files restored, %" PRIu64 " torn writes, %" PRIu64
	       " directory entries reverted); %" PRIu64 " opens under faults (%" PRIu64
	       " failed); %" PRIu64 " view checks, %" PRIu64 " rebuilds\n",
	       tot.io.calls, tot.io.eio, tot.io.enospc, tot.io.short_writes, tot.io.sync_fails,
	       tot.io.cuts, tot.io.files_restored, tot.io.torn, tot.io.entries_reverted,
	       tot.reopens_faulty, tot.open_failures, tot.view_checks, tot.rebuilds);
	printf("# time: opening %.1f s, appending %.1f s, checking %.1f s, closing %.1f s\n",
	       (double)tot.us_open / 1e6, (double)tot.us_append / 1e6, (double)tot.us_check / 1e6,
	       (double)tot.us_close / 1e6);
	static const char *what[P_NCATS] = {
		"every acknowledged append is present, intact, where it was acknowledged",
		"nothing unacknowledged is half-visible or duplicated",
		"positions are dense and versions dense per stream",
		"expected versions, claims and request ids hold in log order; every refusal is "
		"justified by the log",
		"the index (stream facts, claims, retried request ids) agrees with the log",
		"the audit chain verifies up to the head",
		"the counter view equals what the log makes (after catch-up and rebuild)",
		"fault-free opens and appends succeed; faulty ones fail only as documented"};
	for (int c = 0; c < P_NCATS; c++)
		kt_tap(!kt_failed(c), "%s (%" PRIu64 " scenarios)", what[c], tot.scenarios);
	kt_tap(tot.scenarios >= (uint64_t)(scenarios + nreg) || failed >= MAX_FAILED_SEEDS,
	       "ran %" PRIu64 " of %ld scenarios (%ld of them regression seeds)", tot.scenarios,
	       scenarios + nreg, nreg);
	kt_tap_plan();
	if (!failed && !keep)
		kt_rm_rf(rootbuf);
	return failed ? 1 : 0;
}
