/* harness.h: the test harness. CHECK records a failure and goes on; CHECK_OK expects TH_OK from a
 * call that takes a th_error and prints its message otherwise; RUN runs one test function. main()
 * ends with TH_TEST_END, which prints "N passed, N failed" and returns non-zero on any failure. */
#ifndef TABLEHUB_TEST_HARNESS_H
#define TABLEHUB_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int th_t_failed_checks, th_t_passed, th_t_failed;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			th_t_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_OK(call, errp)                                                                       \
	do {                                                                                       \
		int th_t_rc_ = (call);                                                             \
		if (th_t_rc_ != 0) {                                                               \
			fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call,  \
			        th_t_rc_, (errp)->msg);                                            \
			th_t_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *th_t_a_ = (a), *th_t_b_ = (b);                                         \
		if (th_t_a_ == NULL || th_t_b_ == NULL || strcmp(th_t_a_, th_t_b_) != 0) {         \
			fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__,          \
			        __LINE__, th_t_b_ ? th_t_b_ : "(null)",                            \
			        th_t_a_ ? th_t_a_ : "(null)");                                     \
			th_t_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                                \
	do {                                                                                       \
		const char *th_t_h_ = (hay), *th_t_n_ = (needle);                                  \
		if (th_t_h_ == NULL || strstr(th_t_h_, th_t_n_) == NULL) {                         \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,       \
			        __LINE__, th_t_h_ ? th_t_h_ : "(null)", th_t_n_);                  \
			th_t_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		int th_t_before_ = th_t_failed_checks;                                             \
		fn();                                                                              \
		if (th_t_failed_checks == th_t_before_) {                                          \
			th_t_passed++;                                                             \
		} else {                                                                           \
			th_t_failed++;                                                             \
			fprintf(stderr, "FAIL %s\n", #fn);                                         \
		}                                                                                  \
	} while (0)

#define TH_TEST_END()                                                                              \
	do {                                                                                       \
		printf("%d passed, %d failed\n", th_t_passed, th_t_failed);                        \
		return th_t_failed ? 1 : 0;                                                        \
	} while (0)

#endif
