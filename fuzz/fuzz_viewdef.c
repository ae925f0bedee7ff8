/*
 * fuzz_viewdef.c -- libFuzzer target: the view definition parser (kp_view_def_parse,
 * src/view/def.c) on any text.
 *
 * The SQL itself is SQLite's to parse (kp_view_def_check compiles it; not run here, as a
 * definition may ATTACH files or run long statements). Invariants: every query the parser
 * accepted is found by its name, names are valid identifiers, and each handler has types.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "view/view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size); /* a file with a NUL ends there */
	if (!text)
		return 0;
	kp_view_def *d;
	kappa_err err;
	if (kp_view_def_parse("fuzz.sql", text, &d, &err) == KAPPA_OK) {
		if (!d->name || !d->name[0] || strlen(d->name) > KP_VIEW_NAME_MAX)
			abort();
		for (size_t i = 0; i < d->nqueries; i++)
			if (!d->queries[i].sql ||
			    kp_view_def_query(d, d->queries[i].name) != &d->queries[i])
				abort();
		for (size_t i = 0; i < d->nhandlers; i++)
			if (d->handlers[i].ntypes == 0 || !d->handlers[i].sql)
				abort();
		kp_view_def_query(d, "");
		kp_view_def_free(d);
	} else if (!err.msg[0]) {
		abort();
	}
	free(text);
	return 0;
}
