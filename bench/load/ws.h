/* atrium-load: the WebSocket client (ws.c): connect, the HTTP upgrade, masked frames out, frames
 * in and their reassembly into messages (handed to on_message, protocol.c). */
#ifndef ATRIUM_LOAD_WS_H
#define ATRIUM_LOAD_WS_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "load.h"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* One outgoing frame at a time; its header goes right before the payload (send_frame). */
extern char tx[TX_HEAD + TX_PAYLOAD];
extern uint64_t rng_state; /* random32(): main() mixes in the pid and the clock */

void flush_out(struct conn *c);
void send_frame(struct conn *c, int opcode, size_t n);
void send_text(struct conn *c, const char *fmt, ...);
void feed_frames(struct conn *c, const char *p, size_t n);
void on_upgrade_bytes(struct conn *c, const char *p, size_t n);
void start_connect(struct conn *c);
void finish_connect(struct conn *c);

#endif
