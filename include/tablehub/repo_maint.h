/* repo_maint.h: upkeep of a database's repository (storage/repo_maint.c): counting its loose
 * objects and packs, and repacking it.
 *
 * Small commits (edits, merges, small imports) write loose objects, one file each; large imports
 * write one pack each. Both pile up, and every read pays for them (a lookup tries each pack's
 * index in turn). A repack puts every reachable object into one pack with deltas and drops the
 * rest. A gc runs the git program, not libgit2: libgit2 1.5 can write a pack of given objects
 * (git_packbuilder) but has no gc: it cannot replace the existing packs, prune what is loose or
 * unreachable, nor pack the refs, and repacking those by hand is what `git gc` already does
 * safely (new pack written and renamed in before the old ones go). git is in scripts/setup. A
 * roll-up of small packs needs none of that and is done here (storage/repo_rollup.c).
 */
#ifndef TABLEHUB_REPO_MAINT_H
#define TABLEHUB_REPO_MAINT_H

#include <stdint.h>

#include "error.h"

typedef struct th_repo_objstats {
	uint64_t loose; /* loose objects: files in objects/<2 hex>/ */
	uint64_t packs; /* packfiles: objects/pack/pack-*.pack */
} th_repo_objstats;

/* Called for each loose object: its id's first 2 hex digits (its fan-out directory) and the other
 * 38. TH_OK to go on, or an error (err set) to stop with. */
typedef int (*th_repo_loose_fn)(void *payload, const char *fan, const char *rest, th_error *err);

/* Call fn for each loose object of the bare repository at `path`, reading only the fan-out
 * directories objects/ has. Returns TH_OK, what fn returned, TH_ENOTFOUND (no objects directory)
 * or TH_ESTORE. */
int th_repo_loose_foreach(const char *path, th_repo_loose_fn fn, void *payload, th_error *err);

/* Count the loose objects and packs of the bare repository at `path` into *out, from the file
 * names alone (objects/, the fan-out directories it has, objects/pack: nothing is opened).
 * Returns TH_OK, TH_ENOTFOUND (no objects directory) or TH_ESTORE. */
int th_repo_objstats_read(th_repo_objstats *out, const char *path, th_error *err);

/* Called about every 100 ms while a repack runs: TH_OK to go on, or an error (err set) to stop
 * it. */
typedef int (*th_repo_stop_fn)(void *payload, th_error *err);

/* Repack the bare repository at `path`: `git gc --quiet --prune=now`, so that every object
 * reachable from a ref ends up in one pack, unreachable objects (a failed import's) are deleted
 * and the refs are packed. The caller holds the database's writer lock: with --prune=now an
 * object written meanwhile and not yet referenced would be lost. With `keep_unreachable` (a
 * repository other repositories borrow objects from: a fork's parent, whose objects the fork's
 * alternates name) nothing is deleted: `git repack -a -d -l --keep-unreachable` puts every
 * object, reachable or not, into one pack, since a fork may need what its parent no longer
 * refers to. git runs with a scrubbed
 * environment (no user or system config, no hooks, PATH=/usr/bin:/bin), one pack thread and
 * bounded pack memory, fsyncing what it writes; in its own process group, which is killed when
 * stop (may be NULL) says to stop. An interrupted gc leaves the repository as it was or repacked:
 * git renames its new pack in before it deletes anything. Returns TH_OK, what stop returned,
 * TH_ENOTFOUND (no git program on the PATH) or TH_ESTORE (git failed: the message gives its exit
 * status, never the path; its first line of errors goes to the log, the path cut out). */
int th_repo_gc(const char *path, int keep_unreachable, th_repo_stop_fn stop, void *payload,
               th_error *err);

/* keep_unreachable values of th_repo_gc: 0 prunes, 1 keeps everything, and TH_REPO_GC_ROLLUP
 * (which drops no object either) rolls the loose objects and the small packs into one while a
 * large pack stays as it is (git's --geometric=2 rule), so that many small packs (one per import,
 * repo.h's batches) cost a repack of their own size, not of the whole repository: th_repo_rollup,
 * below, without git. */
#define TH_REPO_GC_ROLLUP 2

/* th_repo_gc's TH_REPO_GC_ROLLUP, which it calls (storage/repo_rollup.c): the packs to join are
 * copied byte for byte into one new pack (deltas and all, each object checked against its CRC),
 * the loose objects written into it, and only once it is synced and renamed in are they deleted.
 * Nothing to join (fewer than two packs out of progression, no loose object) writes nothing.
 * stop (may be NULL) is asked between packs. Returns TH_OK, what stop returned, TH_ENOMEM or
 * TH_ESTORE (an unreadable or corrupt pack or index: nothing is deleted). */
int th_repo_rollup(const char *path, th_repo_stop_fn stop, void *payload, th_error *err);

#endif
