/*
 * table.h -- the --table output of the kappa CLI: JSON objects as rows of an aligned,
 * human-readable table. Columns and widths are chosen from the first rows printed, so pages
 * and live events that come later line up; a cell wider than its column is cut with "...".
 * Only for people: JSON stays the output for programs.
 */
#ifndef KP_CLI_TABLE_H
#define KP_CLI_TABLE_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define KP_TABLE_MAX_WIDTH 48 /* a column's width at most, except the last column's */

typedef struct kp_table {
	size_t ncols;
	char **names;  /* column names (owned) */
	size_t *width; /* in characters */
	size_t *min;   /* minimum widths given to kp_table_columns, or NULL */
	int fixed;     /* the columns were given: keys not among them are not shown */
	int started;   /* widths chosen and the header printed */
} kp_table;

void kp_table_init(kp_table *t);
void kp_table_release(kp_table *t);

/* Fix the columns to 'names' (NULL-terminated), each at least 'min_width[i]' wide
 * ('min_width' may be NULL). Returns 0, or -1 when out of memory. */
int kp_table_columns(kp_table *t, const char *const *names, const size_t *min_width);

/* Print 'rows' (an array of objects; other values show as one "value" column). The first
 * call chooses the columns (unless fixed: every key in first-seen order) and the widths,
 * and prints the header. Returns 0, or -1 when out of memory. */
int kp_table_print(kp_table *t, json_t *rows, FILE *out);

/* The text of a cell: a string as it is, anything else as compact JSON, "" when missing;
 * control characters become spaces. Returns malloc'ed text, or NULL when out of memory. */
char *kp_table_cell(json_t *v);

#endif
