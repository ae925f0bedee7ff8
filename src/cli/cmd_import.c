/*
 * cmd_import.c -- `kappa import FILE.jsonl`: bulk append from JSON Lines (import.h has the
 * parts). A regular file is checked whole first, so a file with a bad line imports
 * nothing; standard input is checked as it streams and stops at its first bad line. Every
 * append has a request id derived from its lines, so running the same import again appends
 * nothing twice. Progress goes to stderr when it is a terminal; the summary to stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/import.h"

static const char usage_text[] =
	"usage: kappa import FILE.jsonl|- [--batch N] [--parallel N] [--url URL] [--table]\n"
	"\n"
	"Append the events of a JSON Lines file ('-': standard input). Each line is either an\n"
	"event {\"stream\", \"type\", \"data\", \"subject\"?, \"metadata\"?} (as `kappa "
	"export-log`\n"
	"writes them; position, version and time are ignored), which may carry its own\n"
	"\"expected_version\", \"claims\" and \"request_id\", or an append body with \"stream\" "
	"and\n"
	"\"events\". Consecutive event lines of one stream go in one append of up to --batch\n"
	"events. Each append has a request id (the line's own, or one derived from the lines),\n"
	"so importing the same file again appends nothing twice (use the same --batch).\n"
	"A file is checked whole before anything is sent: one bad line (or a line over 16 MiB)\n"
	"and nothing is imported. Standard input stops at its first bad line.\n"
	"Appends to one stream keep the file's order; appends to different streams may\n"
	"interleave differently from the file: --parallel 1 keeps the file's order exactly.\n"
	"After a failed append, the rest of that stream is skipped.\n"
	"  --batch N      events per append at most (default 100, at most 10000)\n"
	"  --parallel N   appends in flight at once (default 16, at most 64)\n"
	"  --url URL      the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table        the summary as a table instead of JSON\n"
	"Events of forgotten subjects (their data is gone) and kappa's own '$' streams are\n"
	"skipped.\n"
	"Prints {\"lines\", \"appended\", \"deduplicated\", \"failed\", \"skipped\"} (events, but\n"
	"lines).\n"
	"Exit: 0 all imported, 1 a bad line or a failed append (the first few are named), 2 "
	"usage.\n";

typedef struct importer {
	kp_client c;
	imp_sender s;
	imp_batcher b;
	imp_reader r;
	const char *name;	     /* of the input, for messages */
	int progress;		     /* stderr is a terminal */
	const char *phase;	     /* "checking" or "importing" */
	unsigned long long total;    /* bytes of a regular file, 0 when unknown */
	unsigned long long lines;    /* lines taken (not blank) */
	unsigned long long skipped;  /* lines that cannot be imported (forgotten, '$' streams) */
	uint64_t t0, last_tick;	     /* monotonic ns */
	unsigned long long bad_line; /* the line that stopped the import, 0 if none */
	char bad_why[300];	     /* and why */
} importer;

static void
progress(importer *im, int force)
{
	if (!im->progress)
		return;
	uint64_t now = kp_mono_ns();
	if (!force && now - im->last_tick < 100000000u)
		return;
	im->last_tick = now;
	double secs = (double)(now - im->t0) / 1e9;
	fprintf(stderr, "\r\033[Kkappa import: %s ", im->phase);
	if (im->total) {
		int pct = (int)(100.0 * (double)im->r.consumed / (double)im->total);
		int fill = pct / 5;
		fprintf(stderr, "[%.*s%.*s] %3d%% ", fill, "####################", 20 - fill,
			"....................", pct);
	}
	fprintf(stderr, "%llu lines", im->lines);
	if (im->s.m)
		fprintf(stderr, ", %llu appended, %llu deduplicated, %llu failed",
			im->s.st.appended, im->s.st.deduplicated, im->s.st.failed);
	if (secs > 0.5)
		fprintf(stderr, ", %.0f lines/s", (double)im->lines / secs);
}

static void
tick(void *ctx)
{
	progress(ctx, 0);
}

static int
emit(void *ctx, imp_batch *b)
{
	importer *im = ctx;
	return imp_sender_push(&im->s, b) ? 1 : 0;
}

static int
blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

/* Read every line; with 'send', parse and append it, else only check it. Returns 0, or -1
 * after setting bad_line and bad_why (a bad or overlong line, a read error), or 1 when
 * sending stopped (the server is gone, out of memory). */
static int
pass(importer *im, int send)
{
	const char *p;
	size_t n;
	int rc;
	im->lines = im->skipped = 0;
	while ((rc = imp_reader_next(&im->r, &p, &n)) == 1) {
		if (blank(p, n))
			continue;
		imp_line l;
		int pr = imp_line_parse(p, n, &l, im->bad_why, sizeof(im->bad_why));
		if (pr == 1) {
			im->bad_why[0] = '\0';
			im->skipped++;
			continue;
		}
		if (pr) {
			im->bad_line = im->r.lineno;
			break;
		}
		im->lines++;
		int r = send ? imp_batcher_add(&im->b, &l, im->r.lineno, p, n) : 0;
		imp_line_release(&l);
		if (r)
			return 1;
		progress(im, 0);
	}
	if (rc == -2) {
		im->bad_line = im->r.lineno;
		snprintf(im->bad_why, sizeof(im->bad_why), "the line is longer than %zu MiB",
			 IMP_MAX_LINE >> 20);
	}
	if (rc == -1) {
		im->bad_line = im->r.lineno + 1;
		snprintf(im->bad_why, sizeof(im->bad_why), "cannot read: %s", strerror(errno));
	}
	/* what came before a bad line is sent */
	if (send && imp_batcher_flush(&im->b))
		return 1;
	return im->bad_line ? -1 : 0;
}

/* The summary on stdout and the failures on stderr. Returns the exit status. */
static int
summary(importer *im, int stopped)
{
	const imp_stats *st = &im->s.st;
	json_t *o =
		json_pack("{s:I, s:I, s:I, s:I, s:I}", "lines", (json_int_t)im->lines, "appended",
			  (json_int_t)st->appended, "deduplicated", (json_int_t)st->deduplicated,
			  "failed", (json_int_t)st->failed, "skipped", (json_int_t)im->skipped);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return kp_client_oom();
	kp_buf_release(&im->c.resp);
	int rc = kp_buf_append(&im->c.resp, text, strlen(text) + 1) ? kp_client_oom() : 0;
	free(text);
	if (rc)
		return rc;
	im->c.resp.len--; /* the NUL */
	rc = kp_client_print(&im->c, NULL);
	for (size_t i = 0; i < im->s.nfailures; i++)
		fprintf(stderr, "kappa import: %s\n", im->s.failures[i]);
	if (im->s.nfailures == IMP_MAX_FAILURES)
		fprintf(stderr, "kappa import: (only the first %d failures are shown)\n",
			IMP_MAX_FAILURES);
	if (im->bad_line)
		fprintf(stderr, "kappa import: %s:%llu: %s%s\n", im->name, im->bad_line,
			im->bad_why,
			im->s.m ? " (the import stopped there; the lines before it were sent)"
				: " (nothing was imported)");
	else if (im->s.aborted)
		fprintf(stderr, "kappa import: stopped at line %llu: %s cannot be reached\n",
			im->r.lineno, im->c.url);
	if (stopped || st->failed || im->bad_line)
		rc = KP_EXIT_ERROR;
	return rc;
}

static int
import(importer *im, FILE *f, size_t batch, size_t parallel)
{
	struct stat sb;
	int regular = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode);
	im->progress = isatty(STDERR_FILENO);
	im->t0 = kp_mono_ns();
	if (imp_reader_init(&im->r, f))
		return kp_client_oom();
	off_t at = regular ? ftello(f) : -1; /* a redirected stdin may not start at 0 */
	if (regular && at >= 0) {
		im->total = (unsigned long long)(sb.st_size - at);
		im->phase = "checking";
		if (pass(im, 0)) {
			im->lines = 0; /* nothing was sent */
			progress(im, 1);
			if (im->progress)
				fputs("\r\033[K", stderr);
			return summary(im, 1);
		}
		if (fseeko(f, at, SEEK_SET)) {
			fprintf(stderr, "kappa import: %s: cannot rewind: %s\n", im->name,
				strerror(errno));
			return KP_EXIT_ERROR;
		}
		imp_reader_release(&im->r);
		if (imp_reader_init(&im->r, f))
			return kp_client_oom();
	}
	int rc = kp_client_open(&im->c);
	if (rc)
		return rc;
	if ((rc = imp_sender_init(&im->s, &im->c, parallel)))
		return rc;
	if (imp_batcher_init(&im->b, batch, emit, im)) {
		fprintf(stderr, "kappa import: cannot initialise libsodium\n");
		return KP_EXIT_ERROR;
	}
	im->s.tick = tick;
	im->s.tick_ctx = im;
	im->phase = "importing";
	im->t0 = kp_mono_ns();
	int stopped = pass(im, 1);
	imp_sender_drain(&im->s);
	progress(im, 1);
	if (im->progress)
		fputs("\r\033[K", stderr);
	if (stopped > 0 && !im->s.aborted)
		return kp_client_oom();
	return summary(im, stopped != 0);
}

int
kp_cmd_import(int argc, char **argv)
{
	importer im;
	memset(&im, 0, sizeof(im));
	kp_client_defaults(&im.c);
	const char *batch_arg = "100", *par_arg = "16", *pos[1];
	const kp_opt opts[] = {{"--batch", &batch_arg, NULL, NULL, NULL},
			       {"--parallel", &par_arg, NULL, NULL, NULL},
			       {NULL, NULL, NULL, NULL, NULL}};
	int n = kp_client_args(&im.c, argc, argv, opts, pos, 1);
	unsigned long long batch, parallel;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage_text, 1);
	if (n != 1 || kp_parse_u64(batch_arg, &batch) || batch < 1 || batch > 10000 ||
	    kp_parse_u64(par_arg, &parallel) || parallel < 1 || parallel > 64) {
		if (n == 0)
			fprintf(stderr, "kappa import: needs FILE (or - for standard input)\n");
		else if (n == 1)
			fprintf(stderr, "kappa import: --batch takes 1 to 10000, --parallel 1 to "
					"64\n");
		return kp_usage(usage_text, 0);
	}
	FILE *f = strcmp(pos[0], "-") ? fopen(pos[0], "rb") : stdin;
	im.name = strcmp(pos[0], "-") ? pos[0] : "stdin";
	if (!f) {
		fprintf(stderr, "kappa import: %s: %s\n", pos[0], strerror(errno));
		return KP_EXIT_ERROR;
	}
	int rc = import(&im, f, (size_t)batch, (size_t)parallel);
	if (f != stdin)
		fclose(f);
	imp_batcher_release(&im.b);
	imp_sender_release(&im.s);
	imp_reader_release(&im.r);
	kp_client_close(&im.c);
	return rc;
}
