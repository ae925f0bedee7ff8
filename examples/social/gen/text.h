/*
 * text.h -- text for the social example, shared by kappa-social-gen and bench/social_load: a
 * growable output buffer with JSON string escaping, and post, comment and bio text made from
 * built-in word lists. Each user writes mostly about two topics (each with its own
 * vocabulary and hashtag), so full-text search has something to find.
 */
#ifndef SG_TEXT_H
#define SG_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* A growable byte buffer. Every function exits the program with a message when memory runs
 * out (these are command-line tools). Start it as {NULL, 0, 0}. */
typedef struct sg_buf {
	char *p;
	size_t len, cap;
} sg_buf;

void sg_buf_put(sg_buf *b, const char *s, size_t n);
void sg_buf_puts(sg_buf *b, const char *s);
void sg_buf_putc(sg_buf *b, char c);
void sg_buf_printf(sg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 'v' in decimal. */
void sg_buf_u64(sg_buf *b, uint64_t v);
/* 's' (UTF-8) as a JSON string, quotes included. */
void sg_buf_json(sg_buf *b, const char *s);
/* The buffer's text as a C string (it stays owned by the buffer). */
const char *sg_buf_str(sg_buf *b);
void sg_buf_free(sg_buf *b);

/* Topic t's name (lower case, also its hashtag). */
const char *sg_topic_name(unsigned t);
/* The topic user k writes about: which = 0 or 1 (topics[] of model.h taken modulo). */
unsigned sg_user_topic(const sg_model *m, uint32_t k, int which);

/* Append a post's body by 'author' (plain text, not JSON): one to three sentences of
 * everyday words around words of one of the author's topics, sometimes a hashtag, an emoji
 * or a mention of someone the author follows. */
void sg_text_post(sg_buf *b, sg_rng *r, const sg_model *m, uint32_t author);
/* Append a comment's body by 'author' on a post by 'post_author'. */
void sg_text_comment(sg_buf *b, sg_rng *r, const sg_model *m, uint32_t author,
		     uint32_t post_author);
/* Append user k's bio. */
void sg_text_bio(sg_buf *b, sg_rng *r, const sg_model *m, uint32_t k);
/* A word worth searching for: mostly a topic's word, sometimes an everyday one. */
const char *sg_text_search_term(sg_rng *r);
/* One of the user agents, by number (taken modulo their count). */
const char *sg_user_agent(unsigned k);

#endif
