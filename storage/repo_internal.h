/* repo_internal.h: what storage/repo.c and storage/pack.c share, and the pack index writer that
 * tests/test_repo.c drives directly (a real 2 GiB pack would be needed to reach the large-offset
 * table otherwise). Nothing outside storage/ and its test includes this file. */
#ifndef TABLEHUB_REPO_INTERNAL_H
#define TABLEHUB_REPO_INTERNAL_H

#include <git2.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tablehub/repo.h"

/* A th_repo is used by one thread at a time (libgit2 objects are not shared across threads);
 * separate handles on the same path may live on different threads. */
struct th_repo_batch;

struct th_repo {
	git_repository *git;
	git_odb *odb;                /* owned: git_odb_free */
	char *path;                  /* the path given to open/create, for messages */
	struct th_repo_batch *batch; /* th_repo_batch_begin's backend, owned by odb; or NULL */
};

/* Let the batch decline writes (off = 1: objects go loose at once) or take them again (0); returns
 * the previous setting. No-op without a batch. */
int th_repo__batch_off(th_repo *repo, int off);

/* Add an object whose id is known (a batch's) of git type `type` (1 commit, 2 tree, 3 blob, 4 tag)
 * to the pack, without asking the object database whether it exists. Returns TH_OK or
 * TH_ESTORE. */
int th_pack__add_object(th_pack *pk, int type, const unsigned char id[20], const void *data,
                        size_t len, th_error *err);

/* The one translation point from libgit2 codes: GIT_ENOTFOUND -> TH_ENOTFOUND, GIT_EEXISTS ->
 * TH_EEXISTS, GIT_EMODIFIED/GIT_ELOCKED -> TH_ECONFLICT, GIT_EINVALIDSPEC -> TH_EINVALID, a
 * full disk -> TH_ENOSPC, anything else -> TH_ESTORE. Sets err to "<what>:
 * <libgit2's message>" with the files it names cut to their names inside the repository
 * (th_scrub_paths), and returns the code. */
int th_repo__git_error(th_error *err, int giterr, const char *what);

/* Longest ref name we build ("refs/heads/<branch>"). */
#define REFNAME_MAX 1024

/* Our object ids and libgit2's have the same 20 bytes. */
static inline const git_oid *goid(const th_oid *o)
{
	return (const git_oid *)(const void *)o->id;
}

static inline void to_th(th_oid *out, const git_oid *in)
{
	memcpy(out->id, in->id, 20);
}

/* One object of a pack being written: its id, the CRC32 of its packed bytes (header and deflated
 * data) and its offset in the .pack file. */
typedef struct th_pack_entry {
	unsigned char oid[20];
	uint32_t crc;
	uint64_t offset;
} th_pack_entry;

/* Build a version 2 pack index for `n` entries sorted by oid (no duplicates) of the pack whose
 * trailer checksum is `pack_sum`. *out is malloc'd (the caller frees it), *len its size. Returns
 * TH_OK or TH_ENOMEM. */
int th_pack__idx_build(unsigned char **out, size_t *len, const th_pack_entry *entries, size_t n,
                       const unsigned char pack_sum[20], th_error *err);

/* Copy the `n` objects of another pack verbatim (deltas and all) to the end of the pack: `src`
 * are their entries as that pack's .idx gives them, sorted by offset, the first at 12 (just past
 * the header); `end` is where that pack's trailer starts; `fd` reads it. Each object's bytes are
 * checked against its CRC on the way. Nothing is written and TH_EEXISTS comes back when one of
 * the objects is in the pack already (copied bytes cannot skip it: a delta names its base by the
 * distance to it). Not with th_pack_async. Returns TH_OK, TH_EEXISTS, TH_ENOMEM or TH_ESTORE
 * (unreadable or corrupt source; the pack is then unusable). */
int th_pack__copy(th_pack *pk, int fd, const th_pack_entry *src, size_t n, uint64_t end,
                  th_error *err);

/* th_pack_commit, which also gives the hex name of the pack it wrote (objects/pack/pack-<name>)
 * in name_out when not NULL and something was written (else name_out[0] is left as it was). */
int th_pack__commit(th_pack *pk, char name_out[41], th_error *err);

#endif
