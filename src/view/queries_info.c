/*
 * queries_info.c -- kappa_view_queries: a view's named queries and their parameters as
 * JSON, for clients that build a form per query (the web console). Reads the definition
 * only; runs nothing.
 */
#include <jansson.h>
#include <stdlib.h>

#include "base/err.h"
#include "view/view.h"

static json_t *
queries_json(const kp_view_def *d)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && d && i < d->nqueries; i++) {
		const kp_query_def *q = &d->queries[i];
		json_t *params = json_array();
		for (size_t k = 0; params && k < q->nparams; k++)
			if (json_array_append_new(params,
						  json_pack("{s:s, s:b}", "name", q->params[k],
							    "optional", q->optional[k] != 0))) {
				json_decref(params);
				params = NULL;
			}
		if (!params || json_array_append_new(arr, json_pack("{s:s, s:o}", "name", q->name,
								    "params", params))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

int
kappa_view_queries(kappa_db *db, const char *view, char **out, kappa_err *err)
{
	*out = NULL;
	kp_view *v = kp_views_find(db, view);
	if (!v)
		return KP_ERR(err, KAPPA_ENOTFOUND, "no view named %s", view ? view : "(null)");
	/* The definition belongs to a generation, which a swap frees under the view's lock. */
	pthread_mutex_lock(&v->lock);
	const kp_view_def *d = v->cur ? v->cur->def : v->next ? v->next->def : NULL;
	json_t *arr = queries_json(d);
	pthread_mutex_unlock(&v->lock);
	if (!arr || !(*out = json_dumps(arr, JSON_COMPACT))) {
		json_decref(arr);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	json_decref(arr);
	return KAPPA_OK;
}
