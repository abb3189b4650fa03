/* log.h: one line per event on stderr: `2026-11-21T05:11:12Z INFO msg`.
 *
 * TH_LOG checks the level before formatting, so a disabled level costs one comparison. Cell values
 * and tokens are never logged at INFO.
 */
#ifndef TABLEHUB_LOG_H
#define TABLEHUB_LOG_H

#include "error.h"

typedef enum { TH_LOG_DEBUG = 0, TH_LOG_INFO = 1, TH_LOG_WARN = 2, TH_LOG_ERROR = 3 } th_log_level;

extern th_log_level th_log_min;

void th_log_write(th_log_level level, const char *fmt, ...) TH_PRINTF(2, 3);

#define TH_LOG(level, ...)                                                                         \
	do {                                                                                       \
		if ((level) >= th_log_min)                                                         \
			th_log_write((level), __VA_ARGS__);                                        \
	} while (0)

#endif
