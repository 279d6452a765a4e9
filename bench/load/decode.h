/* atrium-load: a server message before protocol.c reads its lines: inflated (--deflate on:
 * permessage-deflate) and turned into JSON lines (--encoding msgpack), as far as the reading
 * needs (decode.c). */
#ifndef ATRIUM_LOAD_DECODE_H
#define ATRIUM_LOAD_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

/* A whole server message: TEXT (else binary), COMPRESSED (RSV1 on its first frame). */
void on_server_message(struct conn *c, bool text, bool compressed, const char *p, size_t n);

/* msgpack_json.cpp: the MessagePack values of a binary message as JSON lines, one per value,
 * in a buffer of its own (valid until the next call); NULL if it is not MessagePack. */
const char *msgpack_to_json_lines(const char *p, size_t n, size_t *out_len);

#endif
