/* repo.h: the content store, one bare git repository per database (storage/repo.c, storage/pack.c).
 *
 * Everything tablehub keeps of a database's history lives here as ordinary git objects, so `git
 * fsck`, `git log`, `git show` and `git clone` work on it. Writes go one way: blobs -> trees ->
 * commit -> branch moved by compare-and-swap. Large imports write their blobs into one packfile
 * (th_pack_*), small commits write loose objects. No libgit2 type appears in this header.
 */
#ifndef TABLEHUB_REPO_H
#define TABLEHUB_REPO_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "error.h"

typedef struct th_repo th_repo;

typedef struct th_oid {
	unsigned char id[20];
} th_oid;

/* 40 hex digits plus NUL. */
void th_oid_fmt(char out[41], const th_oid *oid);
/* Parse 40 hex digits. Returns TH_OK or TH_EINVALID. */
int th_oid_parse(th_oid *out, const char *hex, th_error *err);
int th_oid_equal(const th_oid *a, const th_oid *b);
int th_oid_is_zero(const th_oid *oid);

/* Process-wide libgit2 set-up (fsync of object and ref writes on). Call once before any other
 * th_repo function; th_repo_global_shutdown undoes it. Returns TH_OK or TH_ESTORE. */
int th_repo_global_init(th_error *err);
void th_repo_global_shutdown(void);

/* Tell storage that other servers write the same repositories (servers sharing a PostgreSQL store
 * and one data dir). The first writer open of a repository in this process removes the lock files
 * and temporary packs a crashed writer left; alone on a store it removes them all, but on a shared
 * one a file may be another server's, in use: then only lock files last changed over a minute ago
 * and temporary packs over ten minutes ago go (a ref update holds its lock for milliseconds, a
 * pack being written changes all the time). Call before any repository is opened. */
void th_repo_set_shared(int shared);

/* Create a bare repository at `path` (its parent directories too) whose `main` branch holds one
 * commit with an empty tree, by `author`. Returns TH_OK, TH_EEXISTS or TH_ESTORE. */
int th_repo_create(const char *path, const char *author, th_error *err);

/* Remove the repository at `path`: renamed to a temporary name beside it, then deleted, so the path
 * holds the whole repository or nothing at every moment. Nobody may have it open. Returns TH_OK,
 * TH_ENOTFOUND, TH_ENOMEM or TH_ESTORE. */
int th_repo_remove(const char *path, th_error *err);

/* Remove what a crash left beside the repositories under DIR/repos: `<db>.git.tmp-XXXXXX` (a
 * repository or fork being built) and `<db>.git.rm-XXXXXX` (one being removed) directories last
 * changed more than `min_age_ms` ago, so a creation in progress on this or another node is left
 * alone. *n_out (may be NULL) is set to the number removed. Returns TH_OK, or TH_ESTORE when
 * DIR/repos cannot be read; an entry that cannot be removed is skipped. */
int th_repo_sweep_stale(int *n_out, const char *data_dir, int64_t min_age_ms, th_error *err);

/* Fork the repository at `parent_path` into a new bare repository at `path` (storage/
 * repo_fork.c): the fork borrows the parent's objects through objects/info/alternates (no object
 * is copied) and starts with the parent's branches and tags. Whole or absent, as th_repo_create.
 * Returns TH_OK, TH_EEXISTS, TH_ENOTFOUND (no parent), TH_EINVALID or TH_ESTORE. */
int th_repo_fork(const char *path, const char *parent_path, th_error *err);

/* Copy branch `src_branch` of the repository at `src_path` (a fork of dst's, or any other) into
 * `dst` as branch `dst_branch`, created or moved to it: only the objects dst lacks are copied. Its
 * head goes to *head_out. Returns TH_OK, TH_ENOTFOUND (no such branch), TH_EINVALID (a bad branch
 * name) or TH_ESTORE. */
int th_repo_fetch_branch(th_oid *head_out, th_repo *dst, const char *src_path,
                         const char *src_branch, const char *dst_branch, th_error *err);

/* Open the repository at `path` into *out (caller frees with th_repo_free). With `writer` set the
 * caller holds the data dir's write lock, so `*.lock` files under the repository are stale
 * leftovers of a crash and are removed. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_repo_open(th_repo **out, const char *path, int writer, th_error *err);
void th_repo_free(th_repo *repo);

/* --- references ------------------------------------------------------------------------------ */

/* Resolve a revision (branch name, tag name, full or abbreviated commit id, `HEAD`) to the commit
 * it names. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_repo_resolve(th_oid *out, th_repo *repo, const char *rev, th_error *err);

/* The head of branch `name` (without refs/heads/). Returns TH_OK or TH_ENOTFOUND. */
int th_repo_branch_get(th_oid *out, th_repo *repo, const char *name, th_error *err);

/* Move (or create) branch `name` to `target` by compare-and-swap: `expected` NULL means the branch
 * must not exist yet; otherwise it must still point at *expected. Returns TH_OK, TH_ECONFLICT (the
 * branch moved or exists), TH_EINVALID (bad name) or TH_ESTORE. */
int th_repo_branch_cas(th_repo *repo, const char *name, const th_oid *target,
                       const th_oid *expected, const char *log_message, th_error *err);

/* Delete branch `name`. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_repo_branch_delete(th_repo *repo, const char *name, th_error *err);

/* The branch names, sorted, as a NULL-terminated array the caller frees with th_strv_free. */
int th_repo_branch_list(char ***out, th_repo *repo, th_error *err);
void th_strv_free(char **v);

/* The longest branch name, in bytes: each ref is a file, and its ".lock" must fit a file name. */
#define TH_BRANCH_NAME_MAX 200

/* Is `name` acceptable as a branch name (git's rules, at most TH_BRANCH_NAME_MAX bytes)? */
int th_repo_branch_name_valid(const char *name);

/* --- tags ------------------------------------------------------------------------------------ */

/* A tag of the repository (refs/tags/<name>): the commit it names, and for an annotated tag its
 * message, tagger and time (a lightweight one has "" and the commit's time). Heap strings belong
 * to the list and go with th_tag_list_dispose. */
typedef struct th_tag_info {
	char *name;
	char *message;
	char tagger[128];
	th_oid commit;
	int64_t tagged_at; /* ms since the epoch */
} th_tag_info;

typedef struct th_tag_list {
	th_tag_info *items; /* sorted by name */
	size_t n;
} th_tag_list;

void th_tag_list_dispose(th_tag_list *l);

/* Write an annotated tag `name` of commit `target` by tagger <email> with `message`. Returns
 * TH_OK, TH_EINVALID (a bad name), TH_EEXISTS (the tag exists), TH_ENOTFOUND (no such commit)
 * or TH_ESTORE. */
int th_repo_tag_create(th_repo *repo, const char *name, const th_oid *target, const char *tagger,
                       const char *email, const char *message, th_error *err);

/* The repository's tags of commits into *out (the caller disposes of it). Returns TH_OK or
 * TH_ESTORE. */
int th_repo_tag_list(th_tag_list *out, th_repo *repo, th_error *err);

/* --- commits --------------------------------------------------------------------------------- */

typedef struct th_commit_info {
	th_oid id;
	th_oid tree;
	th_oid parents[2]; /* the first two parents */
	size_t nparents;
	int64_t time; /* author time, seconds since the epoch */
	char author[128];
	char email[128];
	char *message; /* heap; freed by th_commit_info_dispose */
} th_commit_info;

void th_commit_info_dispose(th_commit_info *ci);

/* Read commit `id`. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_repo_commit_read(th_commit_info *out, th_repo *repo, const th_oid *id, th_error *err);

/* Write a commit of `tree` with `nparents` parents, author and committer `author <email>` now.
 * Returns TH_OK or TH_ESTORE. The branch is not moved: use th_repo_branch_cas. */
int th_repo_commit_write(th_oid *out, th_repo *repo, const th_oid *tree, const th_oid *parents,
                         size_t nparents, const char *author, const char *email,
                         const char *message, th_error *err);

/* The best common ancestor of two commits. Returns TH_OK, TH_ENOTFOUND (none) or TH_ESTORE. */
int th_repo_merge_base(th_oid *out, th_repo *repo, const th_oid *a, const th_oid *b, th_error *err);

/* Walk history from `start`, newest first (time order, all parents), calling cb for each commit
 * until it returns non-zero (which is then returned) or `limit` commits (0 = all) were seen. */
int th_repo_log(th_repo *repo, const th_oid *start, size_t limit,
                int (*cb)(const th_commit_info *ci, void *payload), void *payload, th_error *err);

/* --- trees and blobs ------------------------------------------------------------------------- */

typedef struct th_tree_entry {
	char *name;
	th_oid oid;
	int is_tree;
} th_tree_entry;

typedef struct th_tree_list {
	th_tree_entry *entries; /* in git's tree order, which for our names is byte order */
	size_t n;
} th_tree_list;

void th_tree_list_dispose(th_tree_list *l);

/* The entries of tree `tree`. Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_repo_tree_read(th_tree_list *out, th_repo *repo, const th_oid *tree, th_error *err);

/* Write a tree of n entries (any order; names must be unique). Returns TH_OK, TH_EINVALID or
 * TH_ESTORE. Every entry's object must already exist. */
int th_repo_tree_write(th_oid *out, th_repo *repo, const th_tree_entry *entries, size_t n,
                       th_error *err);

/* Look up `path` ("tables/users/schema.json") under tree `root`. Returns TH_OK, TH_ENOTFOUND or
 * TH_ESTORE; *is_tree says what was found. */
int th_repo_tree_lookup(th_oid *out, int *is_tree, th_repo *repo, const th_oid *root,
                        const char *path, th_error *err);

/* A copy of tree `root` (NULL = the empty tree) with `path` set to `oid` (a tree if is_tree), or
 * removed when oid is NULL, creating or pruning intermediate trees. Returns TH_OK or TH_ESTORE. */
int th_repo_tree_update(th_oid *out, th_repo *repo, const th_oid *root, const char *path,
                        const th_oid *oid, int is_tree, th_error *err);

/* The oid of the empty tree (it need not be stored for comparisons). */
void th_repo_empty_tree(th_oid *out);

/* Write `len` bytes as a loose blob. Returns TH_OK or TH_ESTORE. */
int th_repo_blob_write(th_oid *out, th_repo *repo, const void *data, size_t len, th_error *err);

/* Read blob `id` into `out` (replacing its contents). Returns TH_OK, TH_ENOTFOUND or TH_ESTORE. */
int th_repo_blob_read(th_buf *out, th_repo *repo, const th_oid *id, th_error *err);

/* Does the object exist? */
int th_repo_exists(th_repo *repo, const th_oid *id);

/* --- batches: a commit's objects in one pack ---------------------------------------------------
 */

/* From now on, hold the objects written through `repo` in memory (up to 8 MiB; past that they are
 * written loose as before) and write them as one pack the next time a branch of `repo` moves
 * (th_repo_branch_cas, before it moves) or at th_repo_batch_flush: a commit of a few objects then
 * costs the syncs of one pack (.pack, .idx and its directory) instead of two per object. Reads
 * through `repo` see the objects at once; other handles only after the flush. Objects still held
 * when `repo` is freed are dropped: no ref can name them, since each ref update flushes first.
 * Idempotent. Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_repo_batch_begin(th_repo *repo, th_error *err);

/* Write the objects `repo` holds (th_repo_batch_begin) as one pack now and forget them; nothing
 * without a batch or objects. Every ref update of `repo` calls it first. Returns TH_OK, TH_ENOSPC
 * or TH_ESTORE (then they stay held). */
int th_repo_batch_flush(th_repo *repo, th_error *err);

/* --- packs: many blobs in one file ---------------------------------------------------------- */

typedef struct th_pack th_pack;

/* Start a packfile in the repository's objects/pack directory (as a temporary file), deflating at
 * `zlevel` (0-9; 1 is fast and nearly as small for our rows). Returns TH_OK or TH_ESTORE. */
int th_pack_new(th_pack **out, th_repo *repo, int zlevel, th_error *err);

/* Add a blob; its id goes to *out. A blob already in the repository or in this pack is not written
 * again. Returns TH_OK, TH_ENOMEM or TH_ESTORE. */
int th_pack_add_blob(th_oid *out, th_pack *pack, const void *data, size_t len, th_error *err);

/* Deflate and write the pack's objects on a thread of their own from now on: th_pack_add_blob
 * then only hashes a blob and queues a copy (at most 4 MiB waiting), so a large import's deflate
 * runs beside its parsing and encoding on a second core. Errors of the writer come back from a
 * later th_pack_add_blob or th_pack_commit. Returns TH_OK or TH_ESTORE (no thread). */
int th_pack_async(th_pack *pack, th_error *err);

/* Number of objects added to the pack so far. */
size_t th_pack_count(const th_pack *pack);

/* Finish the pack: fix its header and checksum, write its .idx, fsync both, rename them into place
 * and make the repository see them. Frees `pack` whatever the result (an empty pack leaves no
 * file). Returns TH_OK or TH_ESTORE. */
int th_pack_commit(th_pack *pack, th_error *err);

/* Abandon the pack and remove its temporary file. Accepts NULL. */
void th_pack_free(th_pack *pack);

#endif
