/* backup_repo.c: a repository in a backup (see backup_internal.h and include/tablehub/backup.h):
 * its refs read until two reads agree, its files and objects copied (listed again when a repack
 * moved them meanwhile), its refs written into the copy once every repository is copied, and a
 * restored one checked.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "backup_internal.h"
#include "tablehub/text.h"

/* One snapshot ref. */
struct snap_ref {
	char *name;
	char *target; /* symbolic: the ref it names; NULL for a direct ref */
	git_oid oid;
};

/* libgit2's last error as `code` "<what> '<rel>': <its message, paths cut>". */
static int git_fail_as(th_error *err, int code, const char *what, const char *rel)
{
	const git_error *e = git_error_last();
	char msg[400];

	snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown error");
	th_scrub_paths(msg);
	return th_error_set(err, code, "%s '%s': %s", what, rel, msg);
}

static int git_fail(th_error *err, const char *what, const char *rel)
{
	return git_fail_as(err, TH_ESTORE, what, rel);
}

static void refs_free(snap_ref *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].target);
	}
	free(v);
}

/* Read every ref of the repository at `path` (rel for messages). */
static int read_refs(snap_ref **out, size_t *n_out, const char *path, const char *rel,
                     th_error *err)
{
	git_repository *repo = NULL;
	git_reference_iterator *it = NULL;
	git_reference *ref;
	snap_ref *v = NULL;
	size_t n = 0, cap = 0;
	int error = TH_OK, rc;

	if (git_repository_open_bare(&repo, path) < 0 ||
	    git_reference_iterator_new(&it, repo) < 0) {
		error = git_fail(err, "cannot read the refs of", rel);
		goto cleanup;
	}
	while ((rc = git_reference_next(&ref, it)) == 0) {
		snap_ref r;
		int symbolic = git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC, oom;
		memset(&r, 0, sizeof(r));
		r.name = strdup(git_reference_name(ref));
		if (symbolic)
			r.target = strdup(git_reference_symbolic_target(ref));
		else
			git_oid_cpy(&r.oid, git_reference_target(ref));
		git_reference_free(ref);
		oom = r.name == NULL || (symbolic && r.target == NULL);
		if (!oom && n == cap) {
			snap_ref *p = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));
			if (p == NULL)
				oom = 1;
			else
				v = p, cap = cap ? cap * 2 : 16;
		}
		if (oom) {
			free(r.name);
			free(r.target);
			error = th_error_set(err, TH_ENOMEM, "out of memory");
			goto cleanup;
		}
		v[n++] = r;
	}
	if (rc != GIT_ITEROVER)
		error = git_fail(err, "cannot read the refs of", rel);
cleanup:
	git_reference_iterator_free(it);
	git_repository_free(repo);
	if (error < 0) {
		refs_free(v, n);
		return error;
	}
	*out = v;
	*n_out = n;
	return TH_OK;
}

static int same_refs(const snap_ref *a, size_t na, const snap_ref *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i].name, b[i].name) != 0 ||
		    (a[i].target == NULL) != (b[i].target == NULL) ||
		    (a[i].target ? strcmp(a[i].target, b[i].target) != 0
		                 : git_oid_cmp(&a[i].oid, &b[i].oid) != 0))
			return 0;
	}
	return 1;
}

/* read_refs until two reads in a row agree (at most MAX_ROUNDS): libgit2 reads packed-refs before
 * the loose refs, so a `git pack-refs` (a repack) between the two can hide a ref from one read. */
static int read_refs_stable(snap_ref **out, size_t *n_out, const char *path, const char *rel,
                            th_error *err)
{
	snap_ref *prev = NULL, *cur = NULL;
	size_t nprev = 0, ncur = 0;
	int error;

	if ((error = read_refs(&prev, &nprev, path, rel, err)) < 0)
		return error;
	for (int i = 1; i < MAX_ROUNDS; i++) {
		if ((error = read_refs(&cur, &ncur, path, rel, err)) < 0) {
			refs_free(prev, nprev);
			return error;
		}
		if (same_refs(prev, nprev, cur, ncur))
			break;
		refs_free(prev, nprev);
		prev = cur;
		nprev = ncur;
		cur = NULL;
		ncur = 0;
	}
	refs_free(cur, ncur);
	*out = prev;
	*n_out = nprev;
	return TH_OK;
}

/* Copy the objects of repository `rel` not yet in the copy: loose ones, then packs (each .pack
 * with its .idx). *vanished = 1 when a listed file was gone before it was copied. */
static int copy_objects(copier *c, const char *rel, int *vanished, th_error *err)
{
	char sub[512], path[4096], file[1024];
	struct dirent *e;
	DIR *d;
	int error = TH_OK;

	for (int i = 0; i < 256 && error == TH_OK; i++) {
		snprintf(sub, sizeof(sub), "%s/objects/%02x", rel, i);
		if ((error = th_backup__path_of(path, sizeof(path), c->src, sub, err)) < 0)
			return error;
		if ((d = opendir(path)) == NULL) {
			if (errno == ENOENT)
				continue;
			return th_error_os(err, errno, "read", sub);
		}
		while (error == TH_OK && (e = readdir(d)) != NULL) {
			if (strlen(e->d_name) != 38 || !th_is_hex(e->d_name, 38))
				continue;
			snprintf(file, sizeof(file), "%s/%s", sub, e->d_name);
			if ((error = th_backup__path_of(path, sizeof(path), c->dst, file, err)) <
			            0 ||
			    th_backup__exists(path))
				continue;
			if ((error = th_backup__make_dir(c, sub, err)) == TH_OK)
				error = th_backup__copy_file(c, file, vanished, err);
		}
		closedir(d);
	}
	if (error < 0)
		return error;
	snprintf(sub, sizeof(sub), "%s/objects/pack", rel);
	if ((error = th_backup__path_of(path, sizeof(path), c->src, sub, err)) < 0)
		return error;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? TH_OK : th_error_os(err, errno, "read", sub);
	while (error == TH_OK && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char pack[1024], idx[1024], dpack[4096];
		int gone = 0;
		if (len < 10 || strncmp(e->d_name, "pack-", 5) != 0 ||
		    strcmp(e->d_name + len - 4, ".idx") != 0)
			continue;
		/* The .pack first: a pack is usable once both are there. */
		snprintf(idx, sizeof(idx), "%s/%s", sub, e->d_name);
		snprintf(pack, sizeof(pack), "%s/%.*s.pack", sub, (int)(len - 4), e->d_name);
		if ((error = th_backup__path_of(dpack, sizeof(dpack), c->dst, idx, err)) < 0 ||
		    th_backup__exists(dpack))
			continue;
		if ((error = th_backup__path_of(dpack, sizeof(dpack), c->dst, pack, err)) < 0)
			break;
		unlink(dpack); /* a .pack copied before its .idx vanished */
		if ((error = th_backup__copy_file(c, pack, &gone, err)) < 0)
			break;
		if (!gone && (error = th_backup__copy_file(c, idx, &gone, err)) < 0)
			break;
		if (gone) {
			unlink(dpack);
			*vanished = 1;
		}
	}
	closedir(d);
	return error;
}

/* Copy repository owner/db: its refs read into *snap, then its files and objects copied (again
 * while files vanish). Its refs are written by write_refs, once every repository is copied: a
 * fork's refs may name objects of its parent's store (objects/info/alternates). */
int th_backup__copy_repo(repo_snap *snap, copier *c, const db_name *dbn, th_error *err)
{
	static const char *const top[] = { "HEAD", "config", "description",
		                           "objects/info/alternates", NULL };
	static const char *const dirs[] = { "objects", "objects/pack", "objects/info",
		                            "refs",    "refs/heads",   "refs/tags",
		                            NULL };
	char rel[300], sub[400], path[4096];
	int error, vanished, round;

	snprintf(rel, sizeof(rel), "repos/%s/%s.git", dbn->owner, dbn->name);
	if ((error = th_backup__path_of(path, sizeof(path), c->src, rel, err)) < 0)
		return error;
	if (!th_backup__exists(path))
		return th_error_set(err, TH_ENOTFOUND, "'%s' is missing", rel);
	if ((error = read_refs_stable(&snap->refs, &snap->n, path, rel, err)) < 0)
		return error;
	snprintf(sub, sizeof(sub), "repos/%s", dbn->owner);
	if ((error = th_backup__make_dir(c, sub, err)) < 0 ||
	    (error = th_backup__make_dir(c, rel, err)) < 0)
		return error;
	for (int i = 0; dirs[i] != NULL; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", rel, dirs[i]);
		if ((error = th_backup__make_dir(c, sub, err)) < 0)
			return error;
	}
	for (int i = 0; top[i] != NULL; i++) {
		int gone = 0;
		snprintf(sub, sizeof(sub), "%s/%s", rel, top[i]);
		if ((error = th_backup__copy_file(c, sub, &gone, err)) < 0)
			return error;
	}
	snprintf(sub, sizeof(sub), "%s/info", rel);
	if ((error = th_backup__path_of(path, sizeof(path), c->src, sub, err)) < 0 ||
	    (th_backup__exists(path) && (error = th_backup__copy_tree(c, sub, err)) < 0))
		return error;
	for (round = 0;; round++) {
		vanished = 0;
		if ((error = copy_objects(c, rel, &vanished, err)) < 0)
			return error;
		if (!vanished)
			return TH_OK;
		c->st.rescans++;
		if (round + 1 == MAX_ROUNDS)
			return th_error_set(
			        err, TH_EBUSY,
			        "the objects of '%s' kept moving (%d repacks); try again", rel,
			        MAX_ROUNDS);
	}
}

/* Write the refs of `snap` into the copy of owner/db, each checked to name an object the copy
 * holds (in its own store or, for a fork, its parent's). */
int th_backup__write_refs(copier *c, const db_name *dbn, const repo_snap *snap, th_error *err)
{
	char rel[300], path[4096];
	git_repository *copy = NULL;
	git_odb *odb = NULL;
	int error = TH_OK;

	snprintf(rel, sizeof(rel), "repos/%s/%s.git", dbn->owner, dbn->name);
	if ((error = th_backup__path_of(path, sizeof(path), c->dst, rel, err)) < 0)
		return error;
	if (git_repository_open_bare(&copy, path) < 0 || git_repository_odb(&odb, copy) < 0) {
		error = git_fail(err, "cannot open the copy of", rel);
		goto cleanup;
	}
	for (size_t i = 0; i < snap->n; i++) {
		const snap_ref *r = &snap->refs[i];
		git_reference *ref = NULL;
		int rc;
		if (r->target == NULL && !git_odb_exists(odb, &r->oid)) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &r->oid);
			error = th_error_set(err, TH_ESTORE,
			                     "'%s': ref %s names object %s, which was not copied",
			                     rel, r->name, hex);
			goto cleanup;
		}
		if (r->target)
			rc = git_reference_symbolic_create(&ref, copy, r->name, r->target, 1,
			                                   "backup");
		else
			rc = git_reference_create(&ref, copy, r->name, &r->oid, 1, "backup");
		git_reference_free(ref);
		if (rc < 0) {
			error = git_fail(err, "cannot write a ref of", rel);
			goto cleanup;
		}
		c->st.files++;
	}
	c->st.databases++;
cleanup:
	git_odb_free(odb);
	git_repository_free(copy);
	return error;
}

/* Check the repository rel under c->dst: it opens, HEAD resolves, every ref names an object it
 * holds. */
int th_backup__check_repo(copier *c, const char *rel, th_error *err)
{
	char path[4096];
	git_repository *repo = NULL;
	git_odb *odb = NULL;
	git_oid head;
	snap_ref *refs = NULL;
	size_t nrefs = 0;
	int error;

	if ((error = th_backup__path_of(path, sizeof(path), c->dst, rel, err)) < 0)
		return error;
	if (!th_backup__exists(path))
		return th_error_set(err, TH_EINVALID, "damaged backup: '%s' is missing", rel);
	if ((error = read_refs(&refs, &nrefs, path, rel, err)) < 0)
		return error;
	/* (HEAD through git_reference_name_to_id: libgit2 1.5's revparse leaks a reference when the
	 * object is missing) */
	if (git_repository_open_bare(&repo, path) < 0 || git_repository_odb(&odb, repo) < 0 ||
	    git_reference_name_to_id(&head, repo, "HEAD") < 0) {
		error = git_fail_as(err, TH_EINVALID, "damaged backup: cannot read", rel);
		goto cleanup;
	}
	if (!git_odb_exists(odb, &head)) {
		error = th_error_set(err, TH_EINVALID,
		                     "damaged backup: '%s': HEAD names a missing object", rel);
		goto cleanup;
	}
	for (size_t i = 0; i < nrefs; i++) {
		if (refs[i].target == NULL && !git_odb_exists(odb, &refs[i].oid)) {
			error = th_error_set(err, TH_EINVALID,
			                     "damaged backup: '%s': ref %s names a missing object",
			                     rel, refs[i].name);
			goto cleanup;
		}
	}
cleanup:
	git_odb_free(odb);
	git_repository_free(repo);
	refs_free(refs, nrefs);
	return error;
}

void th_backup__snap_dispose(repo_snap *snap)
{
	refs_free(snap->refs, snap->n);
	snap->refs = NULL;
	snap->n = 0;
}
