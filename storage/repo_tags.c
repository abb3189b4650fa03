/* repo_tags.c: annotated git tags of a database's repository (refs/tags/<name>), so that `git tag
 * -l` in the bare repository shows them and th_repo_resolve takes their names as refs.
 *
 * A tag is created with force off: a name that exists is TH_EEXISTS, and libgit2 writes the ref
 * through a lock file, so two creates of one name cannot both succeed. Lightweight tags (a ref
 * straight to a commit) that someone made with git are listed too, with an empty message.
 */
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo_internal.h"

int th_repo_tag_create(th_repo *repo, const char *name, const th_oid *target, const char *tagger,
                       const char *email, const char *message, th_error *err)
{
	git_object *obj = NULL;
	git_signature *sig = NULL;
	git_oid id;
	int error, was_off;

	if (!th_repo_branch_name_valid(name))
		return th_error_set(err, TH_EINVALID, "'%.200s' is not a valid tag name", name);
	if ((error = git_object_lookup(&obj, repo->git, goid(target), GIT_OBJECT_COMMIT)) < 0) {
		error = th_repo__git_error(err, error, "cannot read the tag's commit");
		goto cleanup;
	}
	if ((error = git_signature_now(&sig, tagger, email)) < 0) {
		error = th_repo__git_error(err, error, "bad tagger");
		goto cleanup;
	}
	/* libgit2 writes the tag object and its ref in one call: what the tag names goes to disk
	 * first, and the tag object is written loose, past any batch (repo_batch.c). */
	if ((error = th_repo_batch_flush(repo, err)) < 0)
		goto cleanup;
	was_off = th_repo__batch_off(repo, 1);
	error = git_tag_create(&id, repo->git, name, obj, sig, message, 0);
	th_repo__batch_off(repo, was_off);
	if (error < 0) {
		if (error == GIT_EEXISTS)
			error = th_error_set(err, TH_EEXISTS, "tag '%.200s' already exists", name);
		else
			error = th_repo__git_error(err, error, "cannot write tag");
	}

cleanup:
	git_signature_free(sig);
	git_object_free(obj);
	return error;
}

void th_tag_list_dispose(th_tag_list *l)
{
	for (size_t i = 0; l->items != NULL && i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].message);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* Fill t from the tag ref `refname` (refs/tags/...). Returns TH_OK, 1 (not a tag of a commit:
 * skipped), or a negative th_code. */
static int read_tag(th_tag_info *t, th_repo *repo, const char *refname, th_error *err)
{
	git_object *obj = NULL, *commit = NULL;
	const char *msg = "";
	int error;

	memset(t, 0, sizeof(*t));
	if ((error = git_revparse_single(&obj, repo->git, refname)) < 0)
		return th_repo__git_error(err, error, "cannot read tag");
	if (git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
		error = 1;
		goto cleanup;
	}
	to_th(&t->commit, git_object_id(commit));
	if (git_object_type(obj) == GIT_OBJECT_TAG) {
		const git_tag *tag = (const git_tag *)obj;
		const git_signature *s = git_tag_tagger(tag);
		if (git_tag_message(tag) != NULL)
			msg = git_tag_message(tag);
		if (s != NULL) {
			snprintf(t->tagger, sizeof(t->tagger), "%s", s->name);
			t->tagged_at = (int64_t)s->when.time * 1000;
		}
	} else {
		t->tagged_at = (int64_t)git_commit_time((const git_commit *)commit) * 1000;
	}
	t->name = strdup(refname + strlen("refs/tags/"));
	t->message = strdup(msg);
	if (t->name == NULL || t->message == NULL) {
		free(t->name);
		free(t->message);
		error = th_error_set(err, TH_ENOMEM, "out of memory");
	}

cleanup:
	git_object_free(commit);
	git_object_free(obj);
	return error;
}

int th_repo_tag_list(th_tag_list *out, th_repo *repo, th_error *err)
{
	git_strarray refs = { NULL, 0 };
	th_tag_list l = { NULL, 0 };
	int error;

	if ((error = git_tag_list(&refs, repo->git)) < 0)
		return th_repo__git_error(err, error, "cannot list tags");
	if (refs.count > 0 && (l.items = calloc(refs.count, sizeof(*l.items))) == NULL) {
		error = th_error_set(err, TH_ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < refs.count; i++) {
		char ref[REFNAME_MAX];
		snprintf(ref, sizeof(ref), "refs/tags/%s", refs.strings[i]);
		if ((error = read_tag(&l.items[l.n], repo, ref, err)) < 0)
			goto cleanup;
		if (error == 0)
			l.n++;
	}
	error = TH_OK;
	*out = l;
	l.items = NULL;
	l.n = 0;

cleanup:
	th_tag_list_dispose(&l);
	git_strarray_dispose(&refs);
	return error;
}
