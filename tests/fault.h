/* fault.h: a fault-injection hook for tests (STYLE.md §4.5, after SQLite's *fault.test). Linked
 * only into test executables, with ld's --wrap (tests/CMakeLists.txt, test_fault), so the calls
 * that our libraries make to the allocator and to file I/O go through counters here first:
 *
 *   TH_FAULT_ALLOC  malloc calloc realloc strdup strndup, and cJSON's allocations
 *   TH_FAULT_IO     open read pread write pwrite fsync rename mkstemp fopen fwrite fflush
 *   TH_FAULT_SQLITE SQLite's allocations, through its allocator hook
 *
 * th_fault_arm(class, n) makes the n-th call of that class from then on fail as the real one
 * would under that condition (NULL with ENOMEM, -1 with EIO or ENOSPC, a short fwrite), once or,
 * when persistent, for every later call too. The shared libraries' own calls (libgit2's
 * allocations, loose objects and refs; SQLite's file I/O) are beyond --wrap's reach. Counting is
 * process-wide and thread-safe; a thread can exempt itself (the test's own polling) with
 * th_fault_exempt.
 */
#ifndef TABLEHUB_TEST_FAULT_H
#define TABLEHUB_TEST_FAULT_H

typedef enum { TH_FAULT_ALLOC = 0, TH_FAULT_IO = 1, TH_FAULT_SQLITE = 2 } th_fault_class;

/* Route cJSON's allocations into TH_FAULT_ALLOC and SQLite's into TH_FAULT_SQLITE. Call once,
 * first in main(), before SQLite is used. */
void th_fault_install(void);

/* Fail the n-th (1-based) call of class `c` made from now on; with `persistent`, every call after
 * it fails too. Resets the counters; arms one class at a time. */
void th_fault_arm(th_fault_class c, long n, int persistent);

/* Stop failing calls. Returns how many calls of the armed class were counted since th_fault_arm. */
long th_fault_disarm(void);

/* Whether the armed failure has happened (at least one call failed) since th_fault_arm. */
int th_fault_fired(void);

/* For the calling thread only: 1 = its calls are neither counted nor failed, 0 = they are.
 * Returns the previous setting, to restore. */
int th_fault_exempt(int on);

#endif
