/*
 * clock.h -- wall-clock and monotonic time in the units kappa uses.
 */
#ifndef KP_CLOCK_H
#define KP_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Milliseconds since the Unix epoch (wall clock; may jump). */
static inline int64_t
kp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic nanoseconds, for measuring durations. */
static inline uint64_t
kp_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Monotonic milliseconds. */
static inline int64_t
kp_mono_ms(void)
{
	return (int64_t)(kp_mono_ns() / 1000000u);
}

/* An absolute CLOCK_MONOTONIC deadline 'ms' from now, for pthread_cond_timedwait on
 * condition variables created with CLOCK_MONOTONIC. */
static inline struct timespec
kp_deadline_ms(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Initialise 'c' to time its waits on CLOCK_MONOTONIC (for kp_deadline_ms deadlines). */
static inline void
kp_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

/* Format 'ms' since the epoch as ISO-8601 UTC with milliseconds, "2026-11-23T08:00:00.123Z":
 * the form events' times take in views (:time) and in the HTTP API. */
#define KP_TIME_TEXT 64
static inline void
kp_format_time_ms(int64_t ms, char out[KP_TIME_TEXT])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(out, KP_TIME_TEXT, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

#endif
