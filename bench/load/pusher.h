/* atrium-load --mode pusher: the Pusher Channels protocol (docs/pusher.md) instead of Atrium's
 * lines. Each client connects to /app/KEY, signs a subscription to private-ROOM with the app's
 * secret, and sends client events ("client-load") on it; every client event received is a
 * delivery (Pusher never echoes one to its sender, so the fan-out is members - 1, as in emit). */
#ifndef ATRIUM_LOAD_PUSHER_H
#define ATRIUM_LOAD_PUSHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* The upgrade's request path: "/app/KEY?protocol=7&client=atrium-load&version=1". */
const char *pusher_path(void);
/* The client event carrying this send's timestamp, written to DST; its length, 0 if it did not fit. */
size_t pusher_load_message(struct conn *c, uint64_t ts, char *dst, size_t cap);
/* One whole server message (each Pusher message is one JSON object). */
void pusher_on_message(struct conn *c, const char *p, size_t n);

#endif
