/*
 * raw.c -- the physical limit of bench/peers: raw write + fdatasync of the same bytes, with
 * no server and no format. One writer does, per round, one pwrite of what all clients would
 * have sent (clients x batch x size bytes: a perfect group commit) and one fdatasync, and
 * counts 'clients' operations of 'batch' events each; the latency is one round. It
 * overwrites a 64 MiB region of DIR/raw.dat that was zero-filled and synced first (the
 * strongest baseline: no block allocation, no metadata in the syncs), wrapping around.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peers.h"

#define REGION (64u << 20)

void
pl_raw_run(const pl_cfg *cfg, pl_tally *out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/raw.dat", cfg->target);
	if (cfg->workload == PL_RESET) {
		unlink(path);
		return;
	}
	int batch = (int)pl_op_events(cfg);
	size_t round = (size_t)cfg->clients * (size_t)batch * cfg->size;
	if (round > REGION)
		kb_die("raw: a round of %zu bytes is larger than the region", round);
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		kb_die("raw: %s: %s", path, strerror(errno));
	char *buf = kb_calloc(1, REGION, "the region");
	if (lseek(fd, 0, SEEK_END) < (off_t)REGION) {
		if (pwrite(fd, buf, REGION, 0) != (ssize_t)REGION || fsync(fd))
			kb_die("raw: zero-filling %s: %s", path, strerror(errno));
	}
	for (size_t i = 0; i < round; i += cfg->size)
		memcpy(buf + i, cfg->payload, cfg->size);
	pl_window w;
	pl_window_open(&w, cfg);
	off_t off = 0;
	for (;;) {
		if (off + (off_t)round > (off_t)REGION)
			off = 0;
		uint64_t t0 = kb_mono_ns();
		if (pwrite(fd, buf, round, off) != (ssize_t)round || fdatasync(fd))
			kb_die("raw: %s: %s", path, strerror(errno));
		uint64_t t1 = kb_mono_ns();
		off += (off_t)round;
		/* one round completes every client's operation at once */
		for (int c = 0; c < cfg->clients; c++)
			pl_tally_op(out, &w, t0, t1, (uint64_t)batch);
		if (t1 >= w.end)
			break;
	}
	free(buf);
	close(fd);
}
