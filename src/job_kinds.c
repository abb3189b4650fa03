/* job_kinds.c: the operation kinds tablehub runs, one line each (see include/tablehub/jobs.h).
 *
 * A kind lives in its own file, which defines `const th_job_kind th_job_kind_<name>`: its name in
 * the operations table and in the API, its runner, whether it writes the database's repository
 * (the queue then holds the writer lock) and the hint for a job interrupted too often. Adding a
 * kind is that file (listed in src/CMakeLists.txt) plus one X(<name>) line below; th_jobs_create
 * registers every kind listed here. (The metadata store, below this layer, keeps the names too:
 * th_meta_op_create's list in storage/meta.c.)
 */
#include <stddef.h>

#include "tablehub/jobs.h"

#define TH_JOB_KINDS(X)                                                                            \
	X(import) /* import_job.c: an uploaded file -> an import branch and a pull request */      \
	X(merge)  /* merge_job.c: a pull request merged into its target branch */                  \
	/* sqlwrite_job.c: SQL statements committed on a branch, DoltHub's write */                \
	X(sqlwrite)                                                                                \
	X(repack) /* repack_job.c: a repository's objects repacked (queued by the pool) */

#define DECLARE(name) extern const th_job_kind th_job_kind_##name;
TH_JOB_KINDS(DECLARE)

#define ENTRY(name) &th_job_kind_##name,
const th_job_kind *const th_job_kinds[] = { TH_JOB_KINDS(ENTRY) NULL };
