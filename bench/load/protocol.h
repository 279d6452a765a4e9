/* atrium-load: Atrium's lines (protocol.c): the load messages out; welcome, reply, error, event and
 * patch lines in, with the probes' latency. */
#ifndef ATRIUM_LOAD_PROTOCOL_H
#define ATRIUM_LOAD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

void send_load_message(struct conn *c, uint64_t due);
void start_joins(struct conn *c);
void on_message(struct conn *c, bool text, const char *p, size_t n);
/* An event line (JSON, or the bytes of a MessagePack one: decode.c): a delivery, timed by the
 * "@TS<us>" in its data. */
void count_event(const char *p, size_t n);
/* A message holding one patch line that is counted but not read (decode.c): WIRE bytes. */
void count_unread_patch(size_t wire);

#endif
