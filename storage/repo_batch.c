/* repo_batch.c: holding a commit's new objects in memory and writing them as one pack when a branch
 * moves (th_repo_batch_begin, see include/tablehub/repo.h).
 *
 * A small import or a merge writes a handful of objects (a chunk or two, the trees above them, the
 * commit). As loose objects, with fsync on, each costs a file sync and a sync of its fan-out
 * directory, two per object, all before the branch may move; written together as one pack they
 * cost three (the .pack, the .idx, objects/pack), whatever their number.
 *
 * Design: an object database backend of our own, put in front of the repository's (the highest
 * priority, so libgit2 offers it every write first). It keeps each object it is given (id, type,
 * bytes) in an open-addressing table and answers reads, header reads and existence from it, so the
 * handle sees its own new objects at once. th_repo_batch_flush (called by th_repo_branch_cas
 * before it moves a branch, and by th_repo_tag_create) writes them through th_pack, which hashes
 * and deflates each once, and empties the table. Past BATCH_MAX_BYTES, or while `off` is set, the
 * backend declines writes (GIT_PASSTHROUGH) and libgit2 writes the object loose, durable as
 * always: memory stays bounded and a large write loses nothing. Objects never flushed (the handle
 * freed first, a failed import) vanish with the handle; no ref can name them, since every ref
 * update of this handle flushes first (a tag, whose object and ref libgit2 writes in one call, is
 * written with the batch off).
 */
#include <stdlib.h>
#include <string.h>

#include <git2/sys/odb_backend.h>

#include "repo_internal.h"

#define BATCH_MAX_BYTES (8u << 20)

struct batch_obj {
	git_oid id;
	git_object_t type;
	size_t len;
	unsigned char *data;
};

struct th_repo_batch {
	git_odb_backend parent; /* first: libgit2 hands back this pointer */
	struct batch_obj *objs;
	size_t n, cap;
	size_t *slots; /* index + 1 into objs, 0 = empty; nslots a power of two >= 2 * cap */
	size_t nslots;
	size_t bytes;
	int off; /* decline every write (th_repo__batch_off) */
};

static size_t slot_of(const git_oid *id, size_t nslots)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h & (nslots - 1);
}

static struct batch_obj *find(struct th_repo_batch *b, const git_oid *id)
{
	size_t i;

	if (b->nslots == 0)
		return NULL;
	for (i = slot_of(id, b->nslots); b->slots[i] != 0; i = (i + 1) & (b->nslots - 1))
		if (git_oid_equal(&b->objs[b->slots[i] - 1].id, id))
			return &b->objs[b->slots[i] - 1];
	return NULL;
}

/* Room for one more object; the table rebuilt when it grows. Returns 0 or -1 (out of memory). */
static int reserve(struct th_repo_batch *b)
{
	struct batch_obj *objs;
	size_t cap, nslots, *slots, i, j;

	if (b->n < b->cap)
		return 0;
	cap = b->cap ? b->cap * 2 : 16;
	nslots = cap * 2;
	if ((objs = realloc(b->objs, cap * sizeof(*objs))) == NULL)
		return -1;
	b->objs = objs;
	if ((slots = calloc(nslots, sizeof(*slots))) == NULL)
		return -1;
	for (i = 0; i < b->n; i++) {
		for (j = slot_of(&objs[i].id, nslots); slots[j] != 0; j = (j + 1) & (nslots - 1))
			;
		slots[j] = i + 1;
	}
	free(b->slots);
	b->slots = slots;
	b->nslots = nslots;
	b->cap = cap;
	return 0;
}

static int b_write(git_odb_backend *be, const git_oid *id, const void *data, size_t len,
                   git_object_t type)
{
	struct th_repo_batch *b = (struct th_repo_batch *)be;
	struct batch_obj *o;
	size_t i;

	if (find(b, id) != NULL)
		return 0;
	if (b->off || b->bytes + len > BATCH_MAX_BYTES || reserve(b) < 0)
		return GIT_PASSTHROUGH; /* libgit2 writes it loose instead */
	o = &b->objs[b->n];
	if ((o->data = malloc(len ? len : 1)) == NULL)
		return GIT_PASSTHROUGH;
	memcpy(o->data, data, len);
	git_oid_cpy(&o->id, id);
	o->type = type;
	o->len = len;
	for (i = slot_of(id, b->nslots); b->slots[i] != 0; i = (i + 1) & (b->nslots - 1))
		;
	b->slots[i] = ++b->n;
	b->bytes += len;
	return 0;
}

static int b_read(void **out, size_t *len, git_object_t *type, git_odb_backend *be,
                  const git_oid *id)
{
	struct batch_obj *o = find((struct th_repo_batch *)be, id);

	if (o == NULL)
		return GIT_ENOTFOUND;
	if ((*out = git_odb_backend_data_alloc(be, o->len)) == NULL)
		return -1;
	memcpy(*out, o->data, o->len);
	*len = o->len;
	*type = o->type;
	return 0;
}

static int b_read_header(size_t *len, git_object_t *type, git_odb_backend *be, const git_oid *id)
{
	struct batch_obj *o = find((struct th_repo_batch *)be, id);

	if (o == NULL)
		return GIT_ENOTFOUND;
	*len = o->len;
	*type = o->type;
	return 0;
}

static int b_exists(git_odb_backend *be, const git_oid *id)
{
	return find((struct th_repo_batch *)be, id) != NULL;
}

/* Forget every object held (after a flush wrote them, or to drop them). */
static void clear(struct th_repo_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->objs[i].data);
	b->n = 0;
	b->bytes = 0;
	if (b->slots)
		memset(b->slots, 0, b->nslots * sizeof(*b->slots));
}

static void b_free(git_odb_backend *be)
{
	struct th_repo_batch *b = (struct th_repo_batch *)be;

	clear(b);
	free(b->objs);
	free(b->slots);
	free(b);
}

int th_repo_batch_begin(th_repo *repo, th_error *err)
{
	struct th_repo_batch *b;
	int error;

	if (repo->batch != NULL)
		return TH_OK;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return th_error_set(err, TH_ENOMEM, "out of memory");
	git_odb_init_backend(&b->parent, GIT_ODB_BACKEND_VERSION);
	b->parent.read = b_read;
	b->parent.read_header = b_read_header;
	b->parent.write = b_write;
	b->parent.exists = b_exists;
	b->parent.free = b_free;
	/* Above the loose (1) and pack (2) backends: every write is offered here first. */
	if ((error = git_odb_add_backend(repo->odb, &b->parent, 1000)) < 0) {
		free(b);
		return th_repo__git_error(err, error, "cannot hold objects for a batch");
	}
	repo->batch = b; /* the odb owns it now and frees it with itself */
	return TH_OK;
}

int th_repo_batch_flush(th_repo *repo, th_error *err)
{
	struct th_repo_batch *b = repo->batch;
	th_pack *pk = NULL;
	size_t i;
	int error;

	if (b == NULL || b->n == 0)
		return TH_OK;
	if ((error = th_pack_new(&pk, repo, 1, err)) < 0)
		return error;
	for (i = 0; i < b->n; i++) {
		const struct batch_obj *o = &b->objs[i];
		if ((error = th_pack__add_object(pk, (int)o->type, o->id.id, o->data, o->len,
		                                 err)) < 0) {
			th_pack_free(pk);
			return error;
		}
	}
	/* Level 1, as libgit2 writes loose objects: a repack compresses them further later. */
	/* Written and synced first, forgotten after: a failed commit keeps them held, so the
	 * branch does not move and a later flush may try again. */
	if ((error = th_pack_commit(pk, err)) < 0)
		return error;
	clear(b);
	return TH_OK;
}

int th_repo__batch_off(th_repo *repo, int off)
{
	int was;

	if (repo->batch == NULL)
		return 0;
	was = repo->batch->off;
	repo->batch->off = off;
	return was;
}
