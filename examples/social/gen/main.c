/*
 * main.c -- kappa-social-gen: writes the social example's dataset as JSON Lines on standard
 * output, for `kappa import -`. The output is a function of the options alone: the same
 * options (seed included) give byte-identical output.
 *
 * The file, in order:
 *   1. every user's UserRegistered (stream user-{id}, expected_version "no_stream", claims
 *      on the lower-cased username and e-mail), one line each;
 *   2. per user, consecutive lines of user-{id}: a ProfileUpdated for some, then the
 *      UserFollowed of its followees (a Zipf choice over a popularity ranking, so a few
 *      users have thousands of followers), then UserUnfollowed for a few of them;
 *   3. the posts, in the order of their "at" times (spread over --days ending at --now,
 *      busier by day than by night): each one line, an append body for post-{id} with
 *      expected_version "no_stream" holding the PostCreated, its CommentAdded, PostLiked and
 *      a few PostUnliked; between them, login sessions as consecutive lines of user-{id}
 *      (LoggedIn, sometimes a SensitiveAction): some users from many addresses at once,
 *      some with sensitive actions without two-factor from an address never seen before;
 *   4. AccountDeleted for a few users.
 * Consecutive lines of one stream are what `kappa import` groups into one append.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "text.h"

#define DEFAULT_NOW "2026-11-23T00:00:00Z"
#define MAX_USERS 2000000u
#define MAX_POSTS 100000000u
#define FLUSH_BYTES (1u << 20)

#define USAGE_LINE                                                                                 \
	"usage: kappa-social-gen [--users N] [--posts N] [--seed S] [--follows F] [--days D]\n"    \
	"                        [--now TIME] [--stats] [--describe]\n"

static const char usage_text[] = USAGE_LINE
	"\n"
	"Write a social network's events as JSON Lines on standard output, for\n"
	"`kappa import -`: users with a Zipf-distributed follower graph, posts with comments\n"
	"and likes, profile updates, logins and sensitive actions, a few deleted accounts.\n"
	"The same options give byte-identical output.\n"
	"  --users N     users (default 10000, at most 2000000)\n"
	"  --posts N     posts (default 100000)\n"
	"  --seed S      the random seed (default 1)\n"
	"  --follows F   followees per user on average (default 20)\n"
	"  --days D      posts spread over D days (default 3) ...\n"
	"  --now TIME    ... ending at TIME: ISO-8601 (2026-11-23T08:00:00Z) or Unix seconds\n"
	"                (default " DEFAULT_NOW "; `--now \"$(date +%s)\"` for today)\n"
	"  --stats       a summary on standard error at the end\n"
	"  --describe    instead of the dataset, one JSON object about it: the most followed\n"
	"                user, one of their followers, a word to search for\n"
	"Exit: 0 written, 1 a write error, 2 bad arguments.\n";

typedef struct options {
	uint32_t users, posts;
	uint64_t seed;
	double follows;
	uint32_t days;
	int64_t now_ms;
	int stats;
	int describe;
} options;

typedef struct counts {
	uint64_t lines, registered, profiles, followed, unfollowed, posts, comments, liked, unliked,
		logins, sensitive, sensitive_no2fa, deleted, fanout;
} counts;

/* The generator's state while writing. */
typedef struct gen {
	options o;
	sg_model m;
	sg_buf out;
	sg_buf text;
	counts c;
	uint32_t *stamp;  /* per user: the post number + 1 that last chose them (distinct likers) */
	double *hour_cum; /* cumulative activity per hour of the span */
	uint32_t hours;
	uint64_t comment_id;
} gen;

/* The whole text on stdout (--help), the usage lines on stderr (bad arguments). */
static void
usage(FILE *f)
{
	fputs(f == stdout ? usage_text : USAGE_LINE, f);
}

static int
bad(const char *what, const char *arg)
{
	fprintf(stderr, "kappa-social-gen: bad %s '%s'\n", what, arg);
	usage(stderr);
	return 2;
}

/* A whole decimal number in [lo, hi]. */
static int
parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* ISO-8601 UTC ("2026-11-23", "2026-11-23T08:00:00Z", with optional fraction) or Unix
 * seconds, in milliseconds. */
static int
parse_time(const char *s, int64_t *ms)
{
	uint64_t secs;
	if (!parse_u64(s, 0, 253402300799ull, &secs)) {
		*ms = (int64_t)secs * 1000;
		return 0;
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%d", &tm);
	if (!p)
		return -1;
	if (*p == 'T' || *p == ' ') {
		p = strptime(p + 1, "%H:%M:%S", &tm);
		if (!p)
			return -1;
	}
	long frac = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if (*p == 'Z')
		p++;
	if (*p)
		return -1;
	*ms = (int64_t)timegm(&tm) * 1000 + frac;
	return 0;
}

static int
parse_options(options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"users", required_argument, NULL, 'u'}, {"posts", required_argument, NULL, 'p'},
		{"seed", required_argument, NULL, 's'},	 {"follows", required_argument, NULL, 'f'},
		{"days", required_argument, NULL, 'd'},	 {"now", required_argument, NULL, 'n'},
		{"stats", no_argument, NULL, 'S'},	 {"describe", no_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},	 {NULL, 0, NULL, 0},
	};
	*o = (options){10000, 100000, 1, 20.0, 3, 0, 0, 0};
	parse_time(DEFAULT_NOW, &o->now_ms);
	int c;
	uint64_t v;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (parse_u64(optarg, 1, MAX_USERS, &v))
				return bad("--users", optarg);
			o->users = (uint32_t)v;
			break;
		case 'p':
			if (parse_u64(optarg, 0, MAX_POSTS, &v))
				return bad("--posts", optarg);
			o->posts = (uint32_t)v;
			break;
		case 's':
			if (parse_u64(optarg, 0, UINT64_MAX, &v))
				return bad("--seed", optarg);
			o->seed = v;
			break;
		case 'f': {
			char *end;
			o->follows = strtod(optarg, &end);
			if (*end || !(o->follows >= 1 && o->follows <= 1000))
				return bad("--follows (1 to 1000)", optarg);
			break;
		}
		case 'd':
			if (parse_u64(optarg, 1, 3650, &v))
				return bad("--days (1 to 3650)", optarg);
			o->days = (uint32_t)v;
			break;
		case 'n':
			if (parse_time(optarg, &o->now_ms))
				return bad("--now", optarg);
			break;
		case 'S':
			o->stats = 1;
			break;
		case 'D':
			o->describe = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "kappa-social-gen: %s needs a value\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			fprintf(stderr, "kappa-social-gen: unknown option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "kappa-social-gen: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/* ---- output -------------------------------------------------------------------------- */

static int
flush(gen *g, int force)
{
	if (!g->out.len || (!force && g->out.len < FLUSH_BYTES))
		return 0;
	if (fwrite(g->out.p, 1, g->out.len, stdout) != g->out.len) {
		fprintf(stderr, "kappa-social-gen: writing: %s\n", strerror(errno));
		return -1;
	}
	g->out.len = 0;
	return 0;
}

/* End a line; flush when the buffer is full. */
static int
end_line(gen *g)
{
	sg_buf_putc(&g->out, '\n');
	g->c.lines++;
	return flush(g, 0);
}

static void
put_id(sg_buf *b, char prefix, uint64_t n)
{
	sg_buf_putc(b, '"');
	sg_buf_putc(b, prefix);
	sg_buf_u64(b, n);
	sg_buf_putc(b, '"');
}

static void
put_user(sg_buf *b, uint32_t k)
{
	put_id(b, 'u', (uint64_t)k + 1);
}

/* The start of an event line or object: {"stream":"user-u7", (line) and "type", "subject". */
static void
event_head(gen *g, int line, char kind, uint64_t id, const char *type, uint32_t subject)
{
	sg_buf *b = &g->out;
	sg_buf_putc(b, '{');
	if (line) {
		sg_buf_puts(b, kind == 'u' ? "\"stream\":\"user-u" : "\"stream\":\"post-p");
		sg_buf_u64(b, id);
		sg_buf_puts(b, "\",");
	}
	sg_buf_puts(b, "\"type\":\"");
	sg_buf_puts(b, type);
	sg_buf_puts(b, "\",\"subject\":");
	put_user(b, subject);
}

/* ---- users --------------------------------------------------------------------------- */

static void
lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int
write_registrations(gen *g)
{
	sg_buf *b = &g->out;
	sg_rng r;
	sg_rng_seed(&r, g->o.seed, SG_STREAM_MISC);
	char name[SG_NAME_MAX], username[SG_NAME_MAX], email[SG_NAME_MAX];
	for (uint32_t k = 0; k < g->m.n; k++) {
		sg_user_name(&g->m, k, 0, name);
		sg_user_username(&g->m, k, username);
		sg_user_email(&g->m, k, email);
		event_head(g, 1, 'u', (uint64_t)k + 1, "UserRegistered", k);
		sg_buf_puts(b, ",\"expected_version\":\"no_stream\",\"claims\":[{\"claim\":");
		char claim[SG_NAME_MAX + 16];
		lower(username);
		snprintf(claim, sizeof(claim), "username:%s", username);
		sg_buf_json(b, claim);
		sg_buf_puts(b, "},{\"claim\":");
		lower(email);
		snprintf(claim, sizeof(claim), "email:%s", email);
		sg_buf_json(b, claim);
		sg_buf_puts(b, "}],\"data\":{\"user_id\":");
		put_user(b, k);
		sg_buf_puts(b, ",\"username\":");
		sg_user_username(&g->m, k, username);
		sg_buf_json(b, username);
		sg_buf_puts(b, ",\"name\":");
		sg_buf_json(b, name);
		sg_buf_puts(b, ",\"email\":");
		sg_user_email(&g->m, k, email);
		sg_buf_json(b, email);
		sg_buf_printf(b, ",\"consent\":{\"marketing\":%s,\"analytics\":%s}}}",
			      sg_rng_chance(&r, 0.3) ? "true" : "false",
			      sg_rng_chance(&r, 0.6) ? "true" : "false");
		g->c.registered++;
		if (end_line(g))
			return -1;
	}
	return 0;
}

static int
write_follow(gen *g, uint32_t u, uint32_t v, const char *type)
{
	sg_buf *b = &g->out;
	event_head(g, 1, 'u', (uint64_t)u + 1, type, u);
	sg_buf_puts(b, ",\"data\":{\"follower\":");
	put_user(b, u);
	sg_buf_puts(b, ",\"followee\":");
	put_user(b, v);
	sg_buf_puts(b, "}}");
	return end_line(g);
}

static int
write_profiles_and_follows(gen *g)
{
	sg_buf *b = &g->out;
	const sg_model *m = &g->m;
	sg_rng r;
	sg_rng_seed(&r, g->o.seed, SG_STREAM_MISC + 1);
	char name[SG_NAME_MAX];
	for (uint32_t u = 0; u < m->n; u++) {
		uint8_t fl = m->users[u].flags;
		if (fl & (SG_U_BIO | SG_U_RENAMED)) {
			event_head(g, 1, 'u', (uint64_t)u + 1, "ProfileUpdated", u);
			sg_buf_puts(b, ",\"data\":{\"user_id\":");
			put_user(b, u);
			if (fl & SG_U_RENAMED) {
				sg_user_name(m, u, 1, name);
				sg_buf_puts(b, ",\"name\":");
				sg_buf_json(b, name);
			}
			if (fl & SG_U_BIO) {
				g->text.len = 0;
				sg_text_bio(&g->text, &r, m, u);
				sg_buf_puts(b, ",\"bio\":");
				sg_buf_json(b, sg_buf_str(&g->text));
			}
			sg_buf_puts(b, "}}");
			g->c.profiles++;
			if (end_line(g))
				return -1;
		}
		for (uint32_t i = m->fe_off[u]; i < m->fe_off[u + 1]; i++, g->c.followed++)
			if (write_follow(g, u, m->fe[i], "UserFollowed"))
				return -1;
		for (uint32_t i = m->un_off[u]; i < m->un_off[u + 1]; i++, g->c.followed++)
			if (write_follow(g, u, m->un[i], "UserFollowed"))
				return -1;
		for (uint32_t i = m->un_off[u]; i < m->un_off[u + 1]; i++, g->c.unfollowed++)
			if (write_follow(g, u, m->un[i], "UserUnfollowed"))
				return -1;
	}
	return 0;
}

/* ---- time ---------------------------------------------------------------------------- */

/* Activity by hour of the day (UTC): quiet at night, busiest in the afternoon. */
static int
make_hours(gen *g)
{
	g->hours = g->o.days * 24;
	g->hour_cum = malloc((size_t)g->hours * sizeof(double));
	if (!g->hour_cum)
		return -1;
	int64_t start_h = g->o.now_ms / 3600000 - g->hours;
	double sum = 0;
	for (uint32_t h = 0; h < g->hours; h++) {
		int hd = (int)(((start_h + h) % 24 + 24) % 24);
		double s = sin(3.141592653589793 * (hd - 3) / 24.0);
		g->hour_cum[h] = sum += 0.2 + s * s;
	}
	return 0;
}

/* The time of post i of n, in ms: increasing with i, jittered, ending before --now. */
static int64_t
post_time(const gen *g, uint32_t i, sg_rng *r)
{
	double u = ((double)i + 0.5 + 0.8 * (sg_rng_unit(r) - 0.5)) / (double)g->o.posts;
	double x = u * g->hour_cum[g->hours - 1];
	uint32_t lo = 0, hi = g->hours - 1;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (g->hour_cum[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	double before = lo ? g->hour_cum[lo - 1] : 0;
	double frac = (x - before) / (g->hour_cum[lo] - before);
	int64_t start_ms = (g->o.now_ms / 3600000 - g->hours) * 3600000;
	int64_t t = start_ms + (int64_t)(((double)lo + frac) * 3600000.0);
	return t < g->o.now_ms ? t : g->o.now_ms - 1;
}

static void
put_time(sg_buf *b, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	sg_buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
		      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		      (int)(ms % 1000));
}

/* ---- posts --------------------------------------------------------------------------- */

/* A user who engages with a post by 'author': mostly a follower, else anyone active. */
static uint32_t
engager(const gen *g, sg_rng *r, uint32_t author, double from_followers)
{
	const sg_model *m = &g->m;
	uint32_t nf = m->users[author].followers;
	if (nf && sg_rng_chance(r, from_followers))
		return m->fr[m->fr_off[author] + sg_rng_below(r, nf)];
	return sg_dist_pick(&m->authors, r);
}

static void
write_like(gen *g, uint32_t post, uint32_t user, const char *type)
{
	sg_buf *b = &g->out;
	sg_buf_putc(b, ',');
	event_head(g, 0, 'p', 0, type, user);
	sg_buf_puts(b, ",\"data\":{\"post_id\":");
	put_id(b, 'p', (uint64_t)post + 1);
	sg_buf_puts(b, ",\"user_id\":");
	put_user(b, user);
	sg_buf_puts(b, "}}");
}

static int
write_post(gen *g, uint32_t i)
{
	sg_buf *b = &g->out;
	const sg_model *m = &g->m;
	sg_rng r;
	sg_rng_seed(&r, g->o.seed, SG_STREAM_POST + (uint64_t)i);
	uint32_t author = sg_dist_pick(&m->authors, &r);
	uint32_t followers = m->users[author].followers;
	int64_t at = post_time(g, i, &r);
	g->c.fanout += followers;

	sg_buf_puts(b, "{\"stream\":\"post-p");
	sg_buf_u64(b, (uint64_t)i + 1);
	sg_buf_puts(b, "\",\"expected_version\":\"no_stream\",\"events\":[");
	event_head(g, 0, 'p', 0, "PostCreated", author);
	sg_buf_puts(b, ",\"data\":{\"post_id\":");
	put_id(b, 'p', (uint64_t)i + 1);
	sg_buf_puts(b, ",\"author\":");
	put_user(b, author);
	sg_buf_puts(b, ",\"body\":");
	g->text.len = 0;
	sg_text_post(&g->text, &r, m, author);
	sg_buf_json(b, sg_buf_str(&g->text));
	sg_buf_puts(b, ",\"at\":");
	put_time(b, at);
	sg_buf_puts(b, "}}");
	g->c.posts++;

	/* Engagement grows with the author's audience. */
	double cmean = 0.25 + 0.004 * followers, lmean = 0.6 + 0.015 * followers;
	uint32_t comments = sg_rng_count(&r, cmean < 40 ? cmean : 40);
	uint32_t likes = sg_rng_count(&r, lmean < 300 ? lmean : 300);
	uint32_t stamp = i + 1, liked[8], nliked = 0;
	g->stamp[author] = stamp;
	while (comments || likes) {
		if (comments && (!likes || sg_rng_below(&r, comments + likes) < comments)) {
			comments--;
			uint32_t who =
				sg_rng_chance(&r, 0.2) ? author : engager(g, &r, author, 0.6);
			uint64_t cid = ++g->comment_id;
			sg_buf_putc(b, ',');
			event_head(g, 0, 'p', 0, "CommentAdded", who);
			sg_buf_puts(b, ",\"data\":{\"comment_id\":");
			put_id(b, 'c', cid);
			sg_buf_puts(b, ",\"post_id\":");
			put_id(b, 'p', (uint64_t)i + 1);
			sg_buf_puts(b, ",\"author\":");
			put_user(b, who);
			sg_buf_puts(b, ",\"body\":");
			g->text.len = 0;
			sg_text_comment(&g->text, &r, m, who, author);
			sg_buf_json(b, sg_buf_str(&g->text));
			sg_buf_puts(b, "}}");
			g->c.comments++;
			continue;
		}
		likes--;
		uint32_t who = engager(g, &r, author, 0.75), tries = 0;
		while (g->stamp[who] == stamp && tries++ < 20)
			who = engager(g, &r, author, 0.75);
		if (g->stamp[who] == stamp)
			continue;
		g->stamp[who] = stamp;
		write_like(g, i, who, "PostLiked");
		g->c.liked++;
		if (nliked < 8 && sg_rng_chance(&r, 0.03))
			liked[nliked++] = who;
	}
	for (uint32_t k = 0; k < nliked; k++, g->c.unliked++)
		write_like(g, i, liked[k], "PostUnliked");
	sg_buf_puts(b, "]}");
	return end_line(g);
}

/* ---- sessions ------------------------------------------------------------------------ */

static const char *const sensitive_actions[] = {
	"change_password", "change_email", "export_data",	 "add_payment_method",
	"revoke_sessions", "change_phone", "disable_two_factor", /* last: two-factor users only */
};
#define N_SENSITIVE (sizeof(sensitive_actions) / sizeof(sensitive_actions[0]))

/* A login session: which user, before which post it appears, and its number. */
typedef struct session {
	uint32_t slot, user, seq;
	uint8_t kind; /* 0 normal, 1 one of a roaming burst, 2 a risky sensitive action */
} session;

typedef struct sessions {
	session *v;
	size_t n, cap;
} sessions;

static int
add_session(sessions *s, uint32_t slot, uint32_t user, uint8_t kind)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		session *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = (session){slot, user, (uint32_t)s->n, kind};
	s->n++;
	return 0;
}

static int
cmp_session(const void *a, const void *b)
{
	const session *x = a, *y = b;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Every session of the dataset, ordered by where it goes among the posts. */
static int
plan_sessions(gen *g, sessions *s)
{
	const sg_model *m = &g->m;
	sg_rng r;
	sg_rng_seed(&r, g->o.seed, SG_STREAM_MISC + 2);
	uint32_t slots = g->o.posts + 1;
	for (uint32_t u = 0; u < m->n; u++) {
		uint8_t fl = m->users[u].flags;
		uint32_t n = 1 + sg_rng_count(&r, 1.5);
		for (uint32_t k = 0; k < n; k++)
			if (add_session(s, sg_rng_below(&r, slots), u, 0))
				return -1;
		if (fl & SG_U_ROAMING) { /* one burst from many addresses */
			uint32_t at = sg_rng_below(&r, slots), burst = 20 + sg_rng_below(&r, 41);
			for (uint32_t k = 0; k < burst; k++)
				if (add_session(s, at, u, 1))
					return -1;
		}
		if (fl & SG_U_RISKY)
			if (add_session(s, sg_rng_below(&r, slots), u, 2))
				return -1;
	}
	qsort(s->v, s->n, sizeof(*s->v), cmp_session);
	return 0;
}

static int
write_session(gen *g, const session *ss)
{
	sg_buf *b = &g->out;
	const sg_user *u = &g->m.users[ss->user];
	sg_rng r;
	sg_rng_seed(&r, g->o.seed, SG_STREAM_SESSION + ss->seq);
	int tfa = (u->flags & SG_U_2FA) != 0;
	uint32_t ip = u->ip;
	if (ss->kind != 0 || sg_rng_chance(&r, 0.15)) /* elsewhere: a new address */
		ip = (ip & 0xffff0000u) ^ (sg_rng_next(&r) & 0x00ffffffu) ^ 0x01000000u;
	char ipt[16];
	sg_ip_text(ip, ipt);
	unsigned agent = ss->kind == 1 ? 7 : u->agent + (sg_rng_chance(&r, 0.2) ? 3 : 0);
	event_head(g, 1, 'u', (uint64_t)ss->user + 1, "LoggedIn", ss->user);
	sg_buf_puts(b, ",\"data\":{\"user_id\":");
	put_user(b, ss->user);
	sg_buf_printf(b, ",\"ip\":\"%s\",\"user_agent\":", ipt);
	sg_buf_json(b, sg_user_agent(agent));
	sg_buf_printf(b, ",\"two_factor\":%s}}", tfa ? "true" : "false");
	g->c.logins++;
	if (end_line(g))
		return -1;
	const char *action = NULL;
	if (ss->kind == 2)
		action = sensitive_actions[1 + sg_rng_below(&r, 2)];
	else if (ss->kind == 0 && sg_rng_chance(&r, tfa ? 0.08 : 0.02))
		action = sensitive_actions[sg_rng_below(&r, N_SENSITIVE - (tfa ? 0 : 1))];
	if (!action)
		return 0;
	event_head(g, 1, 'u', (uint64_t)ss->user + 1, "SensitiveAction", ss->user);
	sg_buf_puts(b, ",\"data\":{\"user_id\":");
	put_user(b, ss->user);
	sg_buf_printf(b, ",\"action\":\"%s\",\"two_factor\":%s}}", action, tfa ? "true" : "false");
	g->c.sensitive++;
	g->c.sensitive_no2fa += !tfa;
	return end_line(g);
}

static int
write_posts_and_sessions(gen *g)
{
	sessions s = {NULL, 0, 0};
	int rc = -1;
	if (make_hours(g) || plan_sessions(g, &s)) {
		fputs("kappa-social-gen: out of memory\n", stderr);
		goto out;
	}
	size_t next = 0;
	for (uint32_t i = 0; i <= g->o.posts; i++) {
		for (; next < s.n && s.v[next].slot == i; next++)
			if (write_session(g, &s.v[next]))
				goto out;
		if (i < g->o.posts && write_post(g, i))
			goto out;
	}
	rc = 0;
out:
	free(s.v);
	return rc;
}

static int
write_deletions(gen *g)
{
	for (uint32_t u = 0; u < g->m.n; u++) {
		if (!(g->m.users[u].flags & SG_U_DELETED))
			continue;
		sg_buf *b = &g->out;
		sg_buf_puts(b, "{\"stream\":\"user-u");
		sg_buf_u64(b, (uint64_t)u + 1);
		sg_buf_puts(b, "\",\"type\":\"AccountDeleted\",\"data\":{\"user_id\":");
		put_user(b, u);
		sg_buf_puts(b, "}}");
		g->c.deleted++;
		if (end_line(g))
			return -1;
	}
	return 0;
}

static void
print_stats(const gen *g)
{
	const sg_model *m = &g->m;
	const counts *c = &g->c;
	uint32_t maxf = 0, over1k = 0, over100 = 0;
	for (uint32_t u = 0; u < m->n; u++) {
		uint32_t f = m->users[u].followers;
		maxf = f > maxf ? f : maxf;
		over1k += f >= 1000;
		over100 += f >= 100;
	}
	uint64_t events = c->registered + c->profiles + c->followed + c->unfollowed + c->posts +
			  c->comments + c->liked + c->unliked + c->logins + c->sensitive +
			  c->deleted;
	fprintf(stderr,
		"kappa-social-gen: %" PRIu64 " lines, %" PRIu64 " events\n"
		"  users %" PRIu64 " (profiles updated %" PRIu64 ", deleted %" PRIu64 ")\n"
		"  follows %" PRIu64 " (unfollowed %" PRIu64 "), graph edges %" PRIu64
		", max followers %u, users with >= 100 followers %u, >= 1000 %u\n"
		"  posts %" PRIu64 ", comments %" PRIu64 ", likes %" PRIu64 " (unliked %" PRIu64
		")\n"
		"  fan-out (followers of each post's author, summed) %" PRIu64 " (%.1f per post)\n"
		"  logins %" PRIu64 ", sensitive actions %" PRIu64 " (%" PRIu64
		" without two-factor)\n",
		c->lines, events, c->registered, c->profiles, c->deleted, c->followed,
		c->unfollowed, m->edges, maxf, over100, over1k, c->posts, c->comments, c->liked,
		c->unliked, c->fanout, c->posts ? (double)c->fanout / (double)c->posts : 0.0,
		c->logins, c->sensitive, c->sensitive_no2fa);
}

/* --describe: what a README or a script needs to show the dataset off. */
static void
describe(const gen *g)
{
	const sg_model *m = &g->m;
	uint32_t star = m->by_pop[0], fan = UINT32_MAX;
	for (uint32_t i = m->fr_off[star]; i < m->fr_off[star + 1] && fan == UINT32_MAX; i++)
		if (!(m->users[m->fr[i]].flags & SG_U_DELETED))
			fan = m->fr[i];
	char name[SG_NAME_MAX];
	sg_user_username(m, star, name);
	printf("{\"users\":%u,\"posts\":%u,\"next_post_id\":\"p%u\",\"most_followed\":"
	       "{\"user_id\":\"u%u\",\"username\":\"%s\",\"followers\":%u,\"topic\":\"%s\"}",
	       m->n, g->o.posts, g->o.posts + 1, star + 1, name, m->users[star].followers,
	       sg_topic_name(sg_user_topic(m, star, 0)));
	if (fan != UINT32_MAX)
		printf(",\"a_follower\":\"u%u\"", fan + 1);
	printf(",\"search\":\"espresso\"}\n");
}

int
main(int argc, char **argv)
{
	gen g;
	memset(&g, 0, sizeof(g));
	int rc = parse_options(&g.o, argc, argv);
	if (rc)
		return rc;
	if (sg_model_build(&g.m, g.o.seed, g.o.users, g.o.follows)) {
		fputs("kappa-social-gen: out of memory\n", stderr);
		return 1;
	}
	if (g.o.describe) {
		describe(&g);
		sg_model_release(&g.m);
		return fflush(stdout) ? 1 : 0;
	}
	g.stamp = calloc(g.m.n, sizeof(*g.stamp));
	rc = 1;
	if (!g.stamp)
		fputs("kappa-social-gen: out of memory\n", stderr);
	else if (!write_registrations(&g) && !write_profiles_and_follows(&g) &&
		 !write_posts_and_sessions(&g) && !write_deletions(&g) && !flush(&g, 1))
		rc = fflush(stdout) ? 1 : 0;
	if (rc == 0 && g.o.stats)
		print_stats(&g);
	free(g.stamp);
	free(g.hour_cum);
	sg_buf_free(&g.out);
	sg_buf_free(&g.text);
	sg_model_release(&g.m);
	return rc;
}
