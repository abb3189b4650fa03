/* log.c: one line per event on stderr, with a UTC timestamp and the level. A single fprintf per
 * line keeps lines from different threads whole (stdio locks the stream for each call). Registered
 * server folders never appear (th_redact). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "tablehub/log.h"
#include "tablehub/text.h"

th_log_level th_log_min = TH_LOG_INFO;

void th_log_write(th_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
	char line[1024], ts[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	th_redact(line, sizeof(line));
	fprintf(stderr, "%s %s %s\n", ts, names[level], line);
}
