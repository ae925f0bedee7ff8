/*
 * simio.h -- a kp_io for simulation tests: faults drawn deterministically from a seed (EIO on
 * any call, ENOSPC and short writes, failed syncs) and simulated power cuts.
 *
 * Writes go through to real files; for every file the simulator keeps an undo record of
 * what was written since that file's last successful fdatasync/fsync, and for every
 * directory the creations, renames and unlinks since its last fsync (an unlinked or
 * overwritten file is kept aside until then). A power cut first makes every later call fail
 * with EIO (the machine is off: nothing more reaches the disk); kt_sim_power_cut then puts
 * each file and directory back to its last synced state, optionally keeping part of the
 * unsynced writes (an in-order prefix, the last one torn at a 512-byte boundary). It does
 * not model LMDB, SQLite or anything else that does its own I/O.
 */
#ifndef KP_SIMIO_H
#define KP_SIMIO_H

#include <stdint.h>

#include "base/io.h"

typedef struct kt_sim kt_sim;

/* Fault rates, in calls per million, and an optional power cut. */
typedef struct kt_sim_faults {
	uint32_t eio_ppm;    /* any call but close fails with EIO */
	uint32_t enospc_ppm; /* pwritev / fallocate: the disk is full for the next 1-4 writes */
	uint32_t short_ppm;  /* pwritev writes only part of what it was asked (no error) */
	uint32_t sync_ppm;   /* fdatasync / fsync fail with EIO */
	uint64_t cut_after;  /* power cut at the call this many calls from now (0: none) */
} kt_sim_faults;

/* What a power cut keeps of the writes made since the last sync. */
enum kt_cut_mode {
	KT_CUT_DROP, /* nothing: every file is its last synced image */
	KT_CUT_TEAR, /* per file, a prefix of its unsynced writes, the last torn at 512 bytes */
};

typedef struct kt_sim_stats {
	uint64_t calls, eio, enospc, short_writes, sync_fails, cuts, torn, files_restored,
		entries_reverted;
} kt_sim_stats;

/* A simulator drawing its faults from 'seed'; files removed or replaced are kept aside
 * in 'grave_dir' (created if needed) until their directory is synced. Aborts when out of
 * memory. */
kt_sim *kt_sim_new(uint64_t seed, const char *grave_dir);
void kt_sim_free(kt_sim *s);
/* Its kp_io (valid while 's' lives). */
const kp_io *kt_sim_io(kt_sim *s);
/* Arm faults (replacing the previous ones); all zero: none. */
void kt_sim_set_faults(kt_sim *s, const kt_sim_faults *f);
/* Cut the power now: every later call but close fails with EIO. */
void kt_sim_cut_now(kt_sim *s);
/* Whether the power is cut. */
int kt_sim_is_cut(kt_sim *s);
/* After everything using the files was closed: put the files and directories back as the
 * power cut left them (see enum kt_cut_mode), forget what was tracked, and turn the power
 * back on with no faults armed. */
void kt_sim_power_cut(kt_sim *s, enum kt_cut_mode mode);
/* Forget what was tracked (everything on disk now counts as synced); no faults armed. */
void kt_sim_reset(kt_sim *s);
/* Counters since kt_sim_new. */
void kt_sim_get_stats(kt_sim *s, kt_sim_stats *st);

#endif
