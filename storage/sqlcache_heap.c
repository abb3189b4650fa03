/* sqlcache_heap.c: SQLite's allocator wrapped with per-query heap budgets, for the memory limit
 * of th_snap_query (see sqlcache_internal.h).
 *
 * SQLite's own limits are process-wide (sqlite3_hard_heap_limit64), which would let one greedy
 * query fail every other connection. So SQLite's allocator is wrapped, from a constructor that
 * runs before main() and hence before SQLite's first use: each block carries a 16-byte header
 * naming the budget it was charged to. A query thread sets its budget in a thread-local while it
 * prepares, steps and closes its statement (th_sqlcache__budget_enter), so only the query's own
 * allocations count, and a block is uncharged from the budget it was charged to wherever it is
 * freed. Budgets live in a static array and are never freed, so a block that outlives its query
 * can never point at freed memory.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "tablehub/log.h"
#include "sqlcache_internal.h"

#define HEAP_HDR 16
#define HEAP_SLOTS 64

struct th_sqlcache_budget {
	_Atomic int64_t used;
	int64_t limit;
	atomic_int exceeded;
	int in_use; /* guarded by heap_mu */
};

static th_sqlcache_budget heap_budgets[HEAP_SLOTS];
static pthread_mutex_t heap_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local th_sqlcache_budget *heap_current;
static sqlite3_mem_methods heap_base;
static int heap_installed;

static int heap_charge(th_sqlcache_budget *b, int64_t n)
{
	int64_t now = atomic_fetch_add(&b->used, n) + n;

	if (n > 0 && b->limit > 0 && now > b->limit) {
		atomic_fetch_sub(&b->used, n);
		atomic_store(&b->exceeded, 1);
		return -1;
	}
	return 0;
}

static void heap_header_read(void *q, th_sqlcache_budget **b, int64_t *size)
{
	unsigned char *p = (unsigned char *)q - HEAP_HDR;

	memcpy(b, p, sizeof(*b));
	memcpy(size, p + 8, sizeof(*size));
}

static void *heap_header_write(unsigned char *p, th_sqlcache_budget *b, int64_t size)
{
	memcpy(p, &b, sizeof(b));
	memcpy(p + 8, &size, sizeof(size));
	return p + HEAP_HDR;
}

static void *heap_malloc(int n)
{
	th_sqlcache_budget *b = heap_current;
	unsigned char *p;

	if (n < 0)
		return NULL;
	if (b != NULL && heap_charge(b, (int64_t)n + HEAP_HDR) < 0)
		return NULL;
	if ((p = heap_base.xMalloc(n + HEAP_HDR)) == NULL) {
		if (b != NULL)
			heap_charge(b, -((int64_t)n + HEAP_HDR));
		return NULL;
	}
	return heap_header_write(p, b, n);
}

static void heap_free(void *q)
{
	th_sqlcache_budget *b;
	int64_t size;

	if (q == NULL)
		return;
	heap_header_read(q, &b, &size);
	if (b != NULL)
		atomic_fetch_sub(&b->used, size + HEAP_HDR);
	heap_base.xFree((unsigned char *)q - HEAP_HDR);
}

static void *heap_realloc(void *q, int n)
{
	th_sqlcache_budget *b;
	int64_t size, delta;
	unsigned char *p;

	if (q == NULL)
		return heap_malloc(n);
	if (n < 0)
		return NULL;
	heap_header_read(q, &b, &size);
	delta = (int64_t)n - size;
	if (b != NULL && delta > 0 && heap_charge(b, delta) < 0)
		return NULL;
	if ((p = heap_base.xRealloc((unsigned char *)q - HEAP_HDR, n + HEAP_HDR)) == NULL) {
		if (b != NULL && delta > 0)
			heap_charge(b, -delta);
		return NULL;
	}
	if (b != NULL && delta < 0)
		atomic_fetch_add(&b->used, delta);
	return heap_header_write(p, b, n);
}

static int heap_size(void *q)
{
	th_sqlcache_budget *b;
	int64_t size;

	if (q == NULL)
		return 0;
	heap_header_read(q, &b, &size);
	return (int)size;
}

static int heap_roundup(int n)
{
	return (n + 7) & ~7;
}

static int heap_init(void *app)
{
	(void)app;
	return heap_base.xInit(heap_base.pAppData);
}

static void heap_shutdown(void *app)
{
	(void)app;
	heap_base.xShutdown(heap_base.pAppData);
}

/* Runs before main(): sqlite3_config(SQLITE_CONFIG_MALLOC) is refused once SQLite is in use. */
__attribute__((constructor)) static void heap_install(void)
{
	static sqlite3_mem_methods wrapped = { heap_malloc,  heap_free, heap_realloc,  heap_size,
		                               heap_roundup, heap_init, heap_shutdown, NULL };

	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &heap_base) != SQLITE_OK)
		return;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped) == SQLITE_OK)
		heap_installed = 1;
}

int th_snap_heap_limit_available(void)
{
	return heap_installed;
}

th_sqlcache_budget *th_sqlcache__budget_acquire(uint64_t limit)
{
	static atomic_int warned;
	th_sqlcache_budget *b = NULL;
	size_t i;

	if (limit == 0)
		return NULL;
	if (!heap_installed) {
		if (atomic_exchange(&warned, 1) == 0)
			TH_LOG(TH_LOG_WARN,
			       "query heap limit not enforced: SQLite's allocator could "
			       "not be wrapped");
		return NULL;
	}
	pthread_mutex_lock(&heap_mu);
	for (i = 0; i < HEAP_SLOTS; i++) {
		if (!heap_budgets[i].in_use) {
			b = &heap_budgets[i];
			b->in_use = 1;
			atomic_store(&b->used, 0);
			atomic_store(&b->exceeded, 0);
			b->limit = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
			break;
		}
	}
	pthread_mutex_unlock(&heap_mu);
	/* More than HEAP_SLOTS queries at once: this one runs unmetered rather than waiting. */
	return b;
}

void th_sqlcache__budget_release(th_sqlcache_budget *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&heap_mu);
	b->in_use = 0;
	pthread_mutex_unlock(&heap_mu);
}

void th_sqlcache__budget_enter(th_sqlcache_budget *b)
{
	heap_current = b;
}

int th_sqlcache__budget_exceeded(const th_sqlcache_budget *b)
{
	return b != NULL && atomic_load(&b->exceeded);
}
