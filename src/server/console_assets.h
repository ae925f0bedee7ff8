/*
 * console_assets.h -- the web console's files, compiled into kappa: scripts/embed-console
 * turns console/ into $(BUILD)/gen/console_assets.c (one array per file, with its content
 * type and an ETag from its content). console.c serves them; nothing else reads them.
 */
#ifndef KP_CONSOLE_ASSETS_H
#define KP_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct kp_asset {
	const char *path; /* "/console/js/main.js" */
	const char *type; /* the Content-Type */
	const char *etag; /* quoted, e.g. "\"5f0c6d2e9b1a\"" */
	const unsigned char *data;
	size_t len;
} kp_asset;

extern const kp_asset kp_console_assets[];
extern const size_t kp_console_nassets;

#endif
