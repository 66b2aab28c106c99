/* clock.h — the wall clock and RFC 3339 timestamps (PROTOCOL.md 1.2). */
#ifndef LSS_CLOCK_H
#define LSS_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Room for any formatted timestamp, NUL included
 * ("YYYY-MM-DDTHH:MM:SS.ffffffZ" is 27 bytes). */
#define LSS_TIME_MAX 32
/* Room for any parse-failure detail, NUL included. */
#define LSS_TIME_ERR_MAX 64

/* The instants lss__time_parse accepts: 0001-01-01T00:00:00Z and
 * 9999-12-31T23:59:59.999999Z, in microseconds since the Unix epoch. */
#define LSS_TIME_MIN_US (-62135596800000000LL)
#define LSS_TIME_MAX_US 253402300799999999LL

/* CLOCK_REALTIME truncated to microseconds.  Thread-safe. */
int64_t lss__now_us(void);

/* UTC text "YYYY-MM-DDTHH:MM:SS[.F]Z" of unix_us: the instant floored to
 * whole seconds, F the non-negative microsecond remainder with trailing
 * zeros removed (omitted with its dot when zero).  Writes a NUL-terminated
 * string and returns its length; for instants outside years 0000..9999
 * writes "" and returns 0.  Thread-safe. */
size_t lss__time_format(int64_t unix_us, char out[LSS_TIME_MAX]);

/* The same for whole seconds (registry createdAt): never has a fraction. */
size_t lss__time_format_s(int64_t unix_s, char out[LSS_TIME_MAX]);

/* Parse RFC 3339 "YYYY-MM-DDTHH:MM:SS[.F]Z|±HH:MM" (T/Z in either case, F
 * any number of digits) into microseconds since the epoch, converted to UTC
 * and truncated (never rounded) to the microsecond.  Field ranges are
 * checked (day against the month, leap years included).  Second 60 is
 * rejected, as Go's time.Parse does: leap seconds cannot be stored and the
 * servers this library replaces refuse them too.  The resulting instant
 * must lie in [LSS_TIME_MIN_US, LSS_TIME_MAX_US], so anything accepted
 * formats back.  Returns 0 and sets *unix_us, or LSS_ETIME (also for a
 * NULL unix_us) and writes a short NUL-terminated reason (e.g. "day out of
 * range") into detail, truncated to detail_cap (detail may be NULL when
 * detail_cap is 0). */
int lss__time_parse(const char *s, size_t n, int64_t *unix_us, char *detail,
                    size_t detail_cap);

/* lss__time_parse that also accepts a bare date "YYYY-MM-DD", meaning
 * 00:00:00 UTC of that day (export bounds, PROTOCOL.md 9.3). */
int lss__time_parse_bound(const char *s, size_t n, int64_t *unix_us,
                          char *detail, size_t detail_cap);

#endif /* LSS_CLOCK_H */
