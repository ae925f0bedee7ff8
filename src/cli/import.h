/*
 * import.h -- the parts of `kappa import` (cmd_import.c drives them):
 *
 *   import_line.c   reads JSON Lines (bounded line length) and checks each line's shape;
 *   import_batch.c  groups consecutive lines of a stream into appends, each with a request
 *                   id derived from the lines themselves, so a re-run appends nothing twice;
 *   import_send.c   keeps several appends in flight (libcurl multi) without reordering any
 *                   one stream's appends, retries what is safe to retry, and counts.
 */
#ifndef KP_CLI_IMPORT_H
#define KP_CLI_IMPORT_H

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "cli/client.h"

#define IMP_MAX_LINE ((size_t)16 << 20)	  /* a line longer than this is an error */
#define IMP_BATCH_BYTES ((size_t)1 << 20) /* a grouped append's events, at most */
#define IMP_MAX_FAILURES 10		  /* failures described at the end */

/* ---- lines (import_line.c) ----------------------------------------------------------- */

typedef struct imp_reader {
	FILE *f;
	char *buf; /* read buffer */
	size_t start, end;
	int eof;
	kp_buf line;		     /* a line that spans reads */
	unsigned long long lineno;   /* of the line last returned */
	unsigned long long consumed; /* bytes of the input taken so far */
} imp_reader;

/* Returns 0, or -1 when out of memory. 'f' is not owned. */
int imp_reader_init(imp_reader *r, FILE *f);
void imp_reader_release(imp_reader *r);
/* The next line, without its "\n" or "\r\n": 1 (in *p, *n; valid until the next call),
 * 0 at the end, -1 on a read error (errno), -2 when it is longer than IMP_MAX_LINE. */
int imp_reader_next(imp_reader *r, const char **p, size_t *n);

/* One line, parsed and checked. Two shapes: an event ({"stream", "type", "data",
 * "subject"?, "metadata"?}, which may also carry "expected_version", "claims",
 * "request_id", and the "position", "version", "time" of an exported EVENT, ignored) or an
 * append body ({"stream", "events": [...], ...}). */
typedef struct imp_line {
	json_t *root;	    /* owned */
	const char *stream; /* in root */
	json_t *events;	    /* the append body's events, NULL for an event line */
	int alone;	    /* has its own request id, expected version or claims, or events */
	int has_position;   /* an exported EVENT: 'position' identifies it */
	unsigned long long position;
} imp_line;

/* Parse 'text'. Returns 0, 1 for a line that cannot be imported and is skipped (an event of
 * a forgotten subject, a '$' stream), or -1 with the reason in 'why'. */
int imp_line_parse(const char *text, size_t len, imp_line *out, char *why, size_t whylen);
void imp_line_release(imp_line *l);

/* ---- appends (import_batch.c) -------------------------------------------------------- */

typedef struct imp_batch {
	char *stream;		       /* owned */
	char *body;		       /* the request body (JSON), owned */
	size_t events;		       /* how many events it appends */
	unsigned long long first_line; /* the lines it came from */
	unsigned long long last_line;
	struct imp_batch *next; /* in the send queue */
} imp_batch;

void imp_batch_free(imp_batch *b);

/* Called with each finished append ('b' is handed over). Returns 0, or nonzero to stop. */
typedef int (*imp_emit_fn)(void *ctx, imp_batch *b);

typedef struct imp_batcher {
	size_t max_events; /* --batch */
	imp_emit_fn emit;
	void *ctx;
	/* the group being built: consecutive event lines of one stream */
	char *stream;
	json_t *events;
	size_t bytes;
	unsigned long long first_line, last_line;
	crypto_generichash_state hash; /* over the group's lines: its request id */
} imp_batcher;

int imp_batcher_init(imp_batcher *b, size_t max_events, imp_emit_fn emit, void *ctx);
void imp_batcher_release(imp_batcher *b);
/* Take line 'lineno' ('l' parsed from 'text'). Returns 0, -1 when out of memory, or what
 * emit returned. */
int imp_batcher_add(imp_batcher *b, imp_line *l, unsigned long long lineno, const char *text,
		    size_t len);
/* Emit the group being built, if any. */
int imp_batcher_flush(imp_batcher *b);

/* ---- sending (import_send.c) ---------------------------------------------------------- */

typedef struct imp_stats {
	unsigned long long appended;	 /* events the server wrote */
	unsigned long long deduplicated; /* events it had already (retried request ids) */
	unsigned long long failed;	 /* events not appended: refused, or skipped after a
					    failure earlier in their stream */
	unsigned long long requests;
	unsigned long long retries;
} imp_stats;

typedef struct imp_slot imp_slot;

typedef struct imp_sender {
	kp_client *c;
	CURLM *m;
	imp_slot *slots;
	size_t nslots;
	imp_batch *head, *tail; /* waiting to be sent, in file order */
	size_t queued, max_queued;
	json_t *failed_streams; /* streams with a failed append: their later ones are skipped */
	imp_stats st;
	char failures[IMP_MAX_FAILURES][512];
	size_t nfailures;
	int aborted;		 /* the server could not be reached: nothing more is sent */
	void (*tick)(void *ctx); /* called every time round the loop (progress) */
	void *tick_ctx;
} imp_sender;

/* Returns KP_EXIT_OK or an exit status after a message. */
int imp_sender_init(imp_sender *s, kp_client *c, size_t parallel);
void imp_sender_release(imp_sender *s);
/* Queue 'b' (handed over), sending while the queue is full. Returns 0, or -1 when the
 * import was aborted (b is freed). */
int imp_sender_push(imp_sender *s, imp_batch *b);
/* Send everything queued and wait for every answer. */
void imp_sender_drain(imp_sender *s);

#endif
