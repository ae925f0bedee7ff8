/*
 * table.c -- aligned tables of JSON rows for the CLI's --table output (see table.h).
 * Widths count UTF-8 characters, not bytes, so names with accents still line up.
 */
#include "cli/table.h"

#include <stdlib.h>
#include <string.h>

void
kp_table_init(kp_table *t)
{
	memset(t, 0, sizeof(*t));
}

void
kp_table_release(kp_table *t)
{
	for (size_t i = 0; i < t->ncols; i++)
		free(t->names[i]);
	free(t->names);
	free(t->width);
	free(t->min);
	kp_table_init(t);
}

static int
add_column(kp_table *t, const char *name, size_t min)
{
	char **names = realloc(t->names, (t->ncols + 1) * sizeof(*names));
	if (!names)
		return -1;
	t->names = names;
	size_t *w = realloc(t->width, (t->ncols + 1) * sizeof(*w));
	if (!w)
		return -1;
	t->width = w;
	size_t *m = realloc(t->min, (t->ncols + 1) * sizeof(*m));
	if (!m)
		return -1;
	t->min = m;
	if (!(names[t->ncols] = strdup(name)))
		return -1;
	w[t->ncols] = 0;
	m[t->ncols] = min;
	t->ncols++;
	return 0;
}

int
kp_table_columns(kp_table *t, const char *const *names, const size_t *min_width)
{
	for (size_t i = 0; names[i]; i++)
		if (add_column(t, names[i], min_width ? min_width[i] : 0))
			return -1;
	t->fixed = 1;
	return 0;
}

/* Characters in 's' (UTF-8 lead bytes). */
static size_t
chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

char *
kp_table_cell(json_t *v)
{
	char *s;
	if (!v)
		s = strdup("");
	else if (json_is_string(v))
		s = strndup(json_string_value(v), json_string_length(v));
	else
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return s;
}

static json_t *
field(json_t *row, const char *name)
{
	if (json_is_object(row))
		return json_object_get(row, name);
	return !strcmp(name, "value") ? row : NULL;
}

/* Print 's' in a column 'w' characters wide: cut with "..." when longer, padded unless
 * 'last'. */
static void
put_cell(FILE *out, const char *s, size_t w, int last)
{
	size_t n = chars(s);
	if (!last && n > w) {
		size_t keep = w > 3 ? w - 3 : 0, c = 0;
		const char *p = s;
		for (; *p; p++) {
			if (((unsigned char)*p & 0xC0) != 0x80 && c++ == keep)
				break;
		}
		fwrite(s, 1, (size_t)(p - s), out);
		fputs(w > 3 ? "..." : "", out);
		n = w;
	} else {
		fputs(s, out);
	}
	if (!last)
		fprintf(out, "%*s", (int)(w - n + 2), "");
}

/* Choose the columns (unless fixed) and widths from 'rows', then print the header. */
static int
start(kp_table *t, json_t *rows, FILE *out)
{
	size_t i;
	json_t *row;
	if (!t->fixed) {
		json_array_foreach(rows, i, row)
		{
			if (!json_is_object(row)) {
				int seen = 0;
				for (size_t c = 0; c < t->ncols; c++)
					seen |= !strcmp(t->names[c], "value");
				if (!seen && add_column(t, "value", 0))
					return -1;
				continue;
			}
			const char *key;
			json_t *v;
			json_object_foreach(row, key, v)
			{
				int seen = 0;
				for (size_t c = 0; c < t->ncols && !seen; c++)
					seen = !strcmp(t->names[c], key);
				if (!seen && add_column(t, key, 0))
					return -1;
			}
		}
	}
	for (size_t c = 0; c < t->ncols; c++) {
		size_t w = chars(t->names[c]);
		if (t->min && t->min[c] > w)
			w = t->min[c];
		json_array_foreach(rows, i, row)
		{
			char *s = kp_table_cell(field(row, t->names[c]));
			if (!s)
				return -1;
			size_t n = chars(s);
			free(s);
			if (n > w)
				w = n;
		}
		t->width[c] = w > KP_TABLE_MAX_WIDTH ? KP_TABLE_MAX_WIDTH : w;
	}
	for (size_t c = 0; c < t->ncols; c++)
		put_cell(out, t->names[c], t->width[c], c + 1 == t->ncols);
	fputc('\n', out);
	t->started = 1;
	return 0;
}

int
kp_table_print(kp_table *t, json_t *rows, FILE *out)
{
	if (!t->started && start(t, rows, out))
		return -1;
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < t->ncols; c++) {
			char *s = kp_table_cell(field(row, t->names[c]));
			if (!s)
				return -1;
			put_cell(out, s, t->width[c], c + 1 == t->ncols);
			free(s);
		}
		fputc('\n', out);
	}
	return 0;
}
