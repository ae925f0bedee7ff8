/*
 * http_int.h -- what the engine's files share (http_loop.c: threads, sockets, wake-ups;
 * http_conn.c: a connection's requests; http_respond.c: answers on the wire). Not for the
 * server's route files: they use http.h.
 */
#ifndef KP_HTTP_INT_H
#define KP_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/buf.h"
#include "server/http.h"
#include "server/http_parse.h"

#define KP_HTTP_IN_CAP 16384  /* a connection's unparsed input, at most */
#define KP_HTTP_OUT_LOW 65536 /* produce more of a stream only below this much unsent */
#define KP_HTTP_CHUNK 32768   /* a stream's chunk, at most */
#define KP_HTTP_DATE_LEN 40   /* "Date: Mon, 23 Nov 2026 18:37:10 GMT\r\n" and NUL */

typedef struct kp_hloop kp_hloop;

/* Where a connection is in its current request. */
enum {
	KP_PH_PARSE = 0, /* reading a request (or waiting for one) */
	KP_PH_HANDLE,	 /* the request is in: the server answers it (or has suspended it) */
	KP_PH_SEND	 /* the answer is queued: sending it (and producing a stream) */
};

struct kp_hconn {
	kp_hloop *loop;
	int fd;
	int phase;
	kp_hreq q;
	char *in; /* unparsed input (pipelined requests), KP_HTTP_IN_CAP bytes, or NULL */
	size_t in_off, in_len;
	kp_buf out; /* answer bytes not yet sent */
	size_t out_off;
	void *user;
	/* the answer */
	int answered;
	unsigned status;
	kp_http_producer produce;
	void *pctx;
	void (*pfree)(void *);
	int chunked;
	/* flags */
	int in_request; /* on_headers ran: on_done is owed */
	int suspended;
	int can_read;	       /* the socket may have input (edge seen, no short read since) */
	int read_closed;       /* the peer sent EOF */
	int hup;	       /* epoll reported a hang-up or an error: read until EOF */
	int close_after;       /* close once the answer is sent */
	int busy;	       /* counted in the engine's busy */
	int early;	       /* in on_headers: an answer now leaves the body unread */
	int dead;	       /* failed while suspended: closes when resumed */
	int64_t since_ms;      /* the connection's start or its previous answer's end */
	int64_t last_io_ms;    /* the last byte read or written */
	kp_hconn *prev, *next; /* the loop's connections */
	_Atomic(kp_hconn *) resume_next; /* the loop's resume queue */
};

struct kp_hloop {
	kp_http *h;
	int ep, evfd;
	pthread_t th;
	int started;
	kp_hconn *conns;
	_Atomic(kp_hconn *) resumed; /* pushed by kp_http_resume, taken all at once */
	atomic_int sleeping;	     /* in (or about to be in) epoll_wait: write evfd */
	int listening;		     /* the listening socket is in the epoll set */
	int quiesced;		     /* ... and never will be again */
	int drained;		     /* idle connections were closed for kp_http_drain */
	int failed;		     /* an accept failed since the last tick (logged once) */
	char scratch[KP_HTTP_IN_CAP];
	char date[KP_HTTP_DATE_LEN];
	int64_t date_s;
};

struct kp_http {
	kp_http_config cfg;
	int lfd; /* the listening socket, shared by the threads */
	kp_hloop *loops;
	unsigned nloops;
	atomic_int busy;
	atomic_int quiesce, draining, stopping;
};

/* http_conn.c */
kp_hconn *kp_hconn_new(kp_hloop *l, int fd);
/* Run the connection as far as it goes now (parse, handle, send). */
void kp_hconn_run(kp_hconn *c);
/* Close and free the connection (its request's on_done and stream free run first). */
void kp_hconn_close(kp_hconn *c);
/* Called once a second: close the connection if a timeout has passed. */
void kp_hconn_tick(kp_hconn *c, int64_t now_ms);

/* http_respond.c */
const char *kp_http_reason(unsigned status);
/* Refresh l->date if the second changed. */
void kp_http_date(kp_hloop *l);
/* Append the status line and headers of c's answer to c->out. 'len': the body's length,
 * or UINT64_MAX for a stream. Returns 0 or -1 (out of memory). */
int kp_http_head(kp_hconn *c, unsigned status, const kp_http_hdr *h, size_t nh, uint64_t len);

#endif
