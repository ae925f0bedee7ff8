/*
 * def.c -- view definition files: parsing the comment directives into sections, and
 * checking every statement by compiling it against an in-memory copy of the view's schema.
 *
 *   -- @view NAME                 once, first
 *   DDL ...                        run once when the view's database is created
 *   -- @on TYPE [TYPE...] | *      statements run for each event of those types
 *   -- @forget / -- @export        statements for a subject (privacy)
 *   -- @query NAME(p1, p2)         a named read-only SELECT
 */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view/view.h"

static const char *handler_params[] = {":position", ":stream",	":version",  ":type",	  ":data",
				       ":time",	    ":subject", ":metadata", ":forgotten"};

static int
valid_ident(const char *s, size_t n, int first_alpha_only)
{
	if (n == 0 || n > KP_VIEW_NAME_MAX)
		return 0;
	if (!(islower((unsigned char)s[0]) || (!first_alpha_only && s[0] == '_')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

static char *
dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Append a line to a growable section. */
static int
sect_add(char **sect, size_t *len, const char *line, size_t n)
{
	char *p = realloc(*sect, *len + n + 2);
	if (!p)
		return -1;
	memcpy(p + *len, line, n);
	p[*len + n] = '\n';
	*len += n + 1;
	p[*len] = '\0';
	*sect = p;
	return 0;
}

static int
blank_sql(const char *s)
{
	/* only whitespace and -- comments */
	while (*s) {
		if (isspace((unsigned char)*s)) {
			s++;
		} else if (s[0] == '-' && s[1] == '-') {
			while (*s && *s != '\n')
				s++;
		} else {
			return 0;
		}
	}
	return 1;
}

void
kp_view_def_free(kp_view_def *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nhandlers; i++) {
		for (size_t k = 0; k < d->handlers[i].ntypes; k++)
			free(d->handlers[i].types[k]);
		free(d->handlers[i].types);
		free(d->handlers[i].sql);
	}
	free(d->handlers);
	for (size_t i = 0; i < d->nqueries; i++) {
		for (size_t k = 0; k < d->queries[i].nparams; k++)
			free(d->queries[i].params[k]);
		free(d->queries[i].params);
		free(d->queries[i].optional);
		free(d->queries[i].name);
		free(d->queries[i].sql);
	}
	free(d->queries);
	free(d->name);
	free(d->file);
	free(d->text);
	free(d->ddl);
	free(d->forget_sql);
	free(d->export_sql);
	free(d);
}

const kp_query_def *
kp_view_def_query(const kp_view_def *d, const char *name)
{
	for (size_t i = 0; i < d->nqueries; i++)
		if (!strcmp(d->queries[i].name, name))
			return &d->queries[i];
	return NULL;
}

/* Split "word word word" after a directive into malloc'ed words. */
static int
split_words(const char *s, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	while (*s) {
		while (*s && isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		const char *e = s;
		while (*e && !isspace((unsigned char)*e))
			e++;
		char **nv = realloc(*out, (*n + 1) * sizeof(char *));
		if (!nv)
			return -1;
		*out = nv;
		if (!((*out)[(*n)++] = dupn(s, (size_t)(e - s))))
			return -1;
		s = e;
	}
	return 0;
}

/* "NAME(a, b)" -> query def fields. Returns 0 or a message. */
static const char *
parse_query_head(const char *s, kp_query_def *q)
{
	while (isspace((unsigned char)*s))
		s++;
	const char *p = strchr(s, '(');
	const char *close = p ? strchr(p, ')') : NULL;
	size_t nl = p ? (size_t)(p - s) : strlen(s);
	while (nl && isspace((unsigned char)s[nl - 1]))
		nl--;
	if (!p || !close)
		return "a query needs a parameter list: -- @query NAME(param, ...)";
	if (!valid_ident(s, nl, 0))
		return "a query name is [a-z_][a-z0-9_]*";
	if (!blank_sql(close + 1))
		return "unexpected text after the parameter list";
	if (!(q->name = dupn(s, nl)))
		return "out of memory";
	const char *a = p + 1;
	while (a < close) {
		while (a < close && (isspace((unsigned char)*a) || *a == ','))
			a++;
		const char *e = a;
		while (e < close && *e != ',' && !isspace((unsigned char)*e))
			e++;
		if (e == a)
			break;
		const char *next = e;
		if (*a == ':')
			a++;
		int optional = e > a && e[-1] == '?'; /* NAME?: may be left out (NULL) */
		e -= optional;
		if (!valid_ident(a, (size_t)(e - a), 0))
			return "a parameter name is [a-z_][a-z0-9_]*, with ? after an optional one";
		char **nv = realloc(q->params, (q->nparams + 1) * sizeof(char *));
		if (!nv)
			return "out of memory";
		q->params = nv;
		unsigned char *no = realloc(q->optional, q->nparams + 1);
		if (!no)
			return "out of memory";
		q->optional = no;
		q->optional[q->nparams] = (unsigned char)optional;
		if (!(q->params[q->nparams++] = dupn(a, (size_t)(e - a))))
			return "out of memory";
		a = next;
	}
	return NULL;
}

enum { S_PRE, S_DDL, S_ON, S_FORGET, S_EXPORT, S_QUERY };

/* Hand the text collected for section 'sect' (owned, may be NULL) to where it belongs. */
static void
close_section(kp_view_def *d, int sect, char *text)
{
	char **slot = sect == S_DDL	 ? &d->ddl
		      : sect == S_ON	 ? &d->handlers[d->nhandlers - 1].sql
		      : sect == S_FORGET ? &d->forget_sql
		      : sect == S_EXPORT ? &d->export_sql
		      : sect == S_QUERY	 ? &d->queries[d->nqueries - 1].sql
					 : NULL;
	if (!slot) {
		free(text);
		return;
	}
	*slot = text ? text : strdup("");
}

int
kp_view_def_parse(const char *file, const char *text, kp_view_def **out, kappa_err *err)
{
	*out = NULL;
	kp_view_def *d = calloc(1, sizeof(*d));
	if (!d || !(d->file = strdup(file)) || !(d->text = strdup(text))) {
		kp_view_def_free(d);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	uint8_t h[16];
	crypto_generichash(h, sizeof(h), (const uint8_t *)text, strlen(text), NULL, 0);
	sodium_bin2hex(d->hash, 33, h, sizeof(h));

	int sect = S_PRE, lineno = 0;
	char *cur = NULL;
	size_t curlen = 0;
	const char *why = NULL;
	int why_line = 0;
	const char *p = text;
	while (*p && !why) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		lineno++;
		const char *l = p;
		while (l < p + n && isspace((unsigned char)*l))
			l++;
		int directive = (size_t)(p + n - l) >= 4 && !strncmp(l, "-- @", 4);
		if (!directive) {
			if (sect == S_PRE) {
				if (l < p + n && strncmp(l, "--", 2) != 0)
					why = "SQL before '-- @view NAME'";
			} else if (sect_add(&cur, &curlen, p, n)) {
				why = "out of memory";
			}
			why_line = lineno;
			p += n + (eol ? 1 : 0);
			continue;
		}
		close_section(d, sect, cur);
		cur = NULL;
		curlen = 0;
		char *dl = dupn(l + 4, (size_t)(p + n - l - 4));
		if (!dl) {
			why = "out of memory";
			break;
		}
		char *word = dl, *rest = dl;
		while (*rest && !isspace((unsigned char)*rest))
			rest++;
		if (*rest)
			*rest++ = '\0';
		why_line = lineno;
		if (!strcmp(word, "view")) {
			char **w = NULL;
			size_t nw = 0;
			if (sect != S_PRE)
				why = "'@view' must come first, once";
			else if (split_words(rest, &w, &nw) || nw != 1 ||
				 !valid_ident(w[0], strlen(w[0]), 1))
				why = "a view name is [a-z][a-z0-9_]{0,62}: -- @view NAME";
			else if (!(d->name = strdup(w[0])))
				why = "out of memory";
			for (size_t k = 0; k < nw; k++)
				free(w[k]);
			free(w);
			sect = S_DDL;
		} else if (sect == S_PRE) {
			why = "the first directive must be '-- @view NAME'";
		} else if (!strcmp(word, "on")) {
			kp_handler *nh = realloc(d->handlers, (d->nhandlers + 1) * sizeof(*nh));
			if (!nh) {
				why = "out of memory";
			} else {
				d->handlers = nh;
				kp_handler *hd = &d->handlers[d->nhandlers++];
				memset(hd, 0, sizeof(*hd));
				hd->line = lineno;
				if (split_words(rest, &hd->types, &hd->ntypes))
					why = "out of memory";
				else if (hd->ntypes == 0)
					why = "'@on' needs event types or '*'";
				for (size_t k = 0; !why && k < hd->ntypes; k++) {
					size_t tl = strlen(hd->types[k]);
					if (!strcmp(hd->types[k], "*"))
						hd->all = 1;
					else if (tl > KAPPA_MAX_TYPE)
						why = "an event type is at most 100 bytes";
				}
			}
			sect = S_ON;
		} else if (!strcmp(word, "forget") || !strcmp(word, "export")) {
			int forget = word[0] == 'f';
			if (!blank_sql(rest))
				why = "unexpected text after the directive";
			else if (forget ? d->forget_sql != NULL : d->export_sql != NULL)
				why = forget ? "'@forget' appears twice"
					     : "'@export' appears twice";
			sect = forget ? S_FORGET : S_EXPORT;
		} else if (!strcmp(word, "query")) {
			kp_query_def *nq = realloc(d->queries, (d->nqueries + 1) * sizeof(*nq));
			if (!nq) {
				why = "out of memory";
			} else {
				d->queries = nq;
				kp_query_def *q = &d->queries[d->nqueries++];
				memset(q, 0, sizeof(*q));
				q->line = lineno;
				why = parse_query_head(rest, q);
				for (size_t k = 0; !why && k + 1 < d->nqueries; k++)
					if (!strcmp(d->queries[k].name, q->name))
						why = "a query of that name is already defined";
			}
			sect = S_QUERY;
		} else {
			why = "unknown directive (known: @view @on @forget @export @query)";
		}
		free(dl);
		p += n + (eol ? 1 : 0);
	}
	if (!why) {
		if (sect == S_PRE) {
			why = "no '-- @view NAME' directive";
			why_line = 1;
		} else {
			close_section(d, sect, cur);
		}
		cur = NULL;
	}
	free(cur);
	if (why) {
		kp_view_def_free(d);
		return KP_ERR(err, KAPPA_EINVAL, "%s:%d: %s", file, why_line, why);
	}
	*out = d;
	return KAPPA_OK;
}

/* Compile each statement of 'sql' on 'mem'; 'what' and 'line' name it in errors. 'kind':
 * 0 handler (only the event parameters), 1 query (read-only, declared parameters), 2
 * forget/export (:subject). */
static int
check_sql(sqlite3 *mem, const kp_view_def *d, const char *sql, int line, const char *what, int kind,
	  const kp_query_def *q, kappa_err *err)
{
	const char *tail = sql;
	int count = 0;
	while (tail && *tail) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(mem, tail, -1, &st, &tail) != SQLITE_OK)
			return KP_ERR(err, KAPPA_EINVAL, "%s:%d: %s: %s", d->file, line, what,
				      sqlite3_errmsg(mem));
		if (!st)
			continue; /* whitespace or a comment */
		count++;
		int rc = KAPPA_OK;
		if (kind == 1 && !sqlite3_stmt_readonly(st))
			rc = KP_ERR(err, KAPPA_EINVAL, "%s:%d: %s must be read-only", d->file, line,
				    what);
		for (int i = 1; !rc && i <= sqlite3_bind_parameter_count(st); i++) {
			const char *pn = sqlite3_bind_parameter_name(st, i);
			int ok = 0;
			if (!pn || pn[0] != ':')
				ok = 0;
			else if (kind == 0)
				for (size_t k = 0;
				     k < sizeof(handler_params) / sizeof(*handler_params); k++)
					ok |= !strcmp(pn, handler_params[k]);
			else if (kind == 2)
				ok = !strcmp(pn, ":subject");
			else
				for (size_t k = 0; k < q->nparams; k++)
					ok |= !strcmp(pn + 1, q->params[k]);
			if (!ok)
				rc = KP_ERR(err, KAPPA_EINVAL,
					    "%s:%d: %s uses parameter %s, which it does not have "
					    "(use :name parameters%s)",
					    d->file, line, what, pn ? pn : "?",
					    kind == 1 ? " declared in the query's list" : "");
		}
		sqlite3_finalize(st);
		if (rc)
			return rc;
		if (kind == 1 && count > 1)
			return KP_ERR(err, KAPPA_EINVAL, "%s:%d: %s must be a single statement",
				      d->file, line, what);
	}
	if (count == 0 && kind != 2)
		return KP_ERR(err, KAPPA_EINVAL, "%s:%d: %s has no statement", d->file, line, what);
	return KAPPA_OK;
}

int
kp_view_def_check(const kp_view_def *d, kappa_err *err)
{
	sqlite3 *mem;
	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)) {
		sqlite3_close(mem);
		return KP_ERR(err, KAPPA_ENOMEM, "cannot open an in-memory database");
	}
	int rc = KAPPA_OK;
	char *msg = NULL;
	if (sqlite3_exec(mem, d->ddl ? d->ddl : "", NULL, NULL, &msg) != SQLITE_OK) {
		rc = KP_ERR(err, KAPPA_EINVAL, "%s: the schema fails: %s", d->file,
			    msg ? msg : "error");
		sqlite3_free(msg);
		goto out;
	}
	for (size_t i = 0; !rc && i < d->nhandlers; i++)
		rc = check_sql(mem, d, d->handlers[i].sql, d->handlers[i].line, "this handler", 0,
			       NULL, err);
	for (size_t i = 0; !rc && i < d->nqueries; i++)
		rc = check_sql(mem, d, d->queries[i].sql, d->queries[i].line, "this query", 1,
			       &d->queries[i], err);
	if (!rc && d->forget_sql)
		rc = check_sql(mem, d, d->forget_sql, 0, "@forget", 2, NULL, err);
	if (!rc && d->export_sql)
		rc = check_sql(mem, d, d->export_sql, 0, "@export", 2, NULL, err);
out:
	sqlite3_close(mem);
	return rc;
}
