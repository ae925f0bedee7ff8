/*
 * http_loop.c -- the engine's event threads (like Redis's ae, one epoll set per thread):
 * one listening socket that every thread waits on (EPOLLEXCLUSIVE: one thread is woken
 * per new connection), accepting, readiness events, resumes from other threads, the
 * once-a-second timeouts, and start, quiesce, drain and stop. The socket is not bound with
 * SO_REUSEPORT, so a second server cannot start on the same address and share its clients.
 *
 * A connection is added to its thread's epoll set once (EPOLLIN | EPOLLOUT | EPOLLRDHUP,
 * edge-triggered) and never modified: suspending and resuming it costs no system call. A
 * resume pushes the connection on the thread's lock-free stack and writes the thread's
 * eventfd only if the thread said it may be sleeping (the 'sleeping' flag, set before
 * epoll_wait and checked by the pusher after its push), so a burst of resumes costs one
 * write at most.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "server/http_int.h"

#define EVENTS 256
#define ACCEPTS 64 /* connections accepted per readiness event, at most */

static void
wake(kp_hloop *l)
{
	uint64_t one = 1;
	ssize_t w = write(l->evfd, &one, sizeof(one));
	(void)w; /* EAGAIN: the counter is full, so the thread is awake anyway */
}

void
kp_http_resume(kp_hconn *c)
{
	kp_hloop *l = c->loop;
	kp_hconn *old = atomic_load(&l->resumed);
	do
		atomic_store_explicit(&c->resume_next, old, memory_order_relaxed);
	while (!atomic_compare_exchange_weak(&l->resumed, &old, c));
	if (atomic_exchange(&l->sleeping, 0))
		wake(l);
}

static void
run_resumed(kp_hloop *l)
{
	kp_hconn *c = atomic_exchange(&l->resumed, NULL), *fifo = NULL, *next;
	for (; c; c = next) { /* the stack, reversed: resumes in the order they came */
		next = atomic_load_explicit(&c->resume_next, memory_order_relaxed);
		atomic_store_explicit(&c->resume_next, fifo, memory_order_relaxed);
		fifo = c;
	}
	for (c = fifo; c; c = next) {
		next = atomic_load_explicit(&c->resume_next, memory_order_relaxed);
		c->suspended = 0;
		kp_hconn_run(c);
	}
}

static void
listen_on(kp_hloop *l, int on)
{
	if (l->listening == on || (on && l->quiesced))
		return;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &l->h->lfd};
	epoll_ctl(l->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->h->lfd, &ev);
	l->listening = on;
}

static void
accept_some(kp_hloop *l)
{
	kp_http *h = l->h;
	for (int i = 0; i < ACCEPTS; i++) {
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				/* out of descriptors or memory: try again at the next tick */
				listen_on(l, 0);
				if (!l->failed++ && h->cfg.on_fail)
					h->cfg.on_fail(h->cfg.ctx, "accept", e);
			}
			return;
		}
		if (atomic_fetch_add(h->cfg.connections, 1) >= (int)h->cfg.max_connections) {
			atomic_fetch_sub(h->cfg.connections,
					 1); /* over the limit: closed at once */
			atomic_fetch_add(h->cfg.refused, 1);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		kp_hconn *c = kp_hconn_new(l, fd);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
					 .data.ptr = c};
		if (!c || epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			if (c) {
				kp_hconn_close(c);
			} else {
				close(fd);
				atomic_fetch_sub(h->cfg.connections, 1);
			}
		}
	}
}

static void
tick(kp_hloop *l, int64_t now)
{
	kp_http *h = l->h;
	for (kp_hconn *c = l->conns, *next; c; c = next) {
		next = c->next;
		kp_hconn_tick(c, now);
	}
	if (!atomic_load(&h->quiesce))
		listen_on(l, 1);
	l->failed = 0;
}

static void *
loop_main(void *arg)
{
	kp_hloop *l = arg;
	kp_http *h = l->h;
	struct epoll_event ev[EVENTS];
	int64_t next_tick = kp_mono_ms() + 1000;
	while (!atomic_load(&h->stopping)) {
		int64_t now = kp_mono_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;
		atomic_store(&l->sleeping, 1);
		if (atomic_load(&l->resumed))
			timeout = 0;
		int n = epoll_wait(l->ep, ev, EVENTS, timeout);
		atomic_store(&l->sleeping, 0);
		for (int i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;
			if (p == &h->lfd) {
				accept_some(l);
			} else if (p == &l->evfd) {
				uint64_t v;
				ssize_t r = read(l->evfd, &v, sizeof(v));
				(void)r;
			} else {
				kp_hconn *c = p;
				if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					c->hup = 1;
				if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					c->can_read = 1;
				kp_hconn_run(c);
			}
		}
		run_resumed(l);
		if (atomic_load(&h->quiesce) && !l->quiesced) {
			listen_on(l, 0);
			l->quiesced = 1;
		}
		if (atomic_load(&h->draining) && !l->drained) {
			l->drained = 1;
			for (kp_hconn *c = l->conns, *next; c; c = next) {
				next = c->next;
				if (c->phase == KP_PH_PARSE && !c->suspended)
					kp_hconn_close(c);
			}
		}
		now = kp_mono_ms();
		if (now >= next_tick) {
			tick(l, now);
			next_tick = now + 1000;
		}
	}
	/* Stopping: whatever is left closes (the server made sure nothing can resume). */
	atomic_store(&l->resumed, NULL);
	while (l->conns)
		kp_hconn_close(l->conns);
	return NULL;
}

static int
loop_init(kp_hloop *l, kp_http *h)
{
	l->h = h;
	l->evfd = -1;
	if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -1;
	if ((l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->evfd};
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->evfd, &ev) < 0)
		return -1;
	listen_on(l, 1);
	return l->listening ? 0 : -1;
}

static void
loop_release(kp_hloop *l)
{
	if (l->evfd >= 0)
		close(l->evfd);
	if (l->ep >= 0)
		close(l->ep);
}

static void
wake_all(kp_http *h)
{
	for (unsigned i = 0; i < h->nloops; i++)
		wake(&h->loops[i]);
}

void
kp_http_stop(kp_http *h)
{
	if (!h)
		return;
	atomic_store(&h->stopping, 1);
	wake_all(h);
	for (unsigned i = 0; i < h->nloops; i++)
		if (h->loops[i].started)
			pthread_join(h->loops[i].th, NULL);
	for (unsigned i = 0; i < h->nloops; i++)
		loop_release(&h->loops[i]);
	if (h->lfd >= 0)
		close(h->lfd);
	free(h->loops);
	free(h);
}

int
kp_http_start(const kp_http_config *cfg, kp_http **out)
{
	*out = NULL;
	kp_http *h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	h->cfg = *cfg;
	h->nloops = cfg->threads ? cfg->threads : 1;
	if (!(h->loops = calloc(h->nloops, sizeof(*h->loops)))) {
		free(h);
		return -1;
	}
	for (unsigned i = 0; i < h->nloops; i++)
		h->loops[i].ep = h->loops[i].evfd = -1;
	int one = 1;
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(h->lfd, (const struct sockaddr *)&cfg->addr, sizeof(cfg->addr)) < 0 ||
	    listen(h->lfd, SOMAXCONN) < 0) {
		int e = errno;
		kp_http_stop(h);
		errno = e;
		return -1;
	}
	for (unsigned i = 0; i < h->nloops; i++) {
		kp_hloop *l = &h->loops[i];
		if (loop_init(l, h) < 0 || pthread_create(&l->th, NULL, loop_main, l) != 0) {
			int e = errno;
			kp_http_stop(h);
			errno = e;
			return -1;
		}
		l->started = 1;
	}
	*out = h;
	return 0;
}

void
kp_http_quiesce(kp_http *h)
{
	atomic_store(&h->quiesce, 1);
	shutdown(h->lfd, SHUT_RDWR); /* refuse new connections now; the threads let go of it */
	wake_all(h);
}

void
kp_http_drain(kp_http *h)
{
	atomic_store(&h->draining, 1);
	wake_all(h);
}

int
kp_http_busy(kp_http *h)
{
	return atomic_load(&h->busy);
}
