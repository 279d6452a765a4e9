/* atrium-load: the connection table, each connection's state and buffers, and the epoll loop that
 * serves them (conn.c). */
#ifndef ATRIUM_LOAD_CONN_H
#define ATRIUM_LOAD_CONN_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conn_state {
  CS_IDLE,       /* not started */
  CS_CONNECTING, /* TCP connect in progress */
  CS_UPGRADING,  /* HTTP upgrade sent, waiting for 101 */
  CS_WELCOME,    /* upgraded, waiting for the welcome line */
  CS_CONNECTED,  /* welcomed, no join yet (rooms mode between its two memory samples) */
  CS_JOINING,    /* joins sent, waiting for every ok reply */
  CS_READY,      /* joined: takes part in the load */
  CS_DEAD,
};

struct buf {
  char *data;
  size_t len, cap;
};

struct conn {
  int fd, idx, group;
  enum conn_state state;
  bool in_flight;  /* counted against MAX_IN_FLIGHT */
  bool out_armed;  /* EPOLLOUT registered */
  bool in_message; /* inside a fragmented data message */
  bool probe;      /* state mode: times its own moves in the patches */
  bool message_binary;
  bool message_compressed; /* RSV1 on the first frame of the message being put together */
  int joins_ok;
  uint64_t due_us; /* next load message */
  uint64_t sends;  /* load messages sent: round robin in rooms mode, positions in state mode */
  struct buf in;   /* the HTTP response, then the tail of a frame cut by a read boundary */
  struct buf msg;  /* a fragmented message being put back together */
  struct buf out;  /* bytes the socket did not take yet */
  void *ssl;       /* --tls: the connection's SSL (tls.c); NULL otherwise */
  char id[24];     /* welcome.client, e.g. "c12" */
  char needle[40]; /* state probes: "/players/<id> as it appears in a patch path */
  size_t needle_len;
};

extern struct conn *conns;
extern int epfd;
extern struct sockaddr_in server_addr;
extern int in_flight, ready_count, connected_count;
extern int *group_alive;    /* ready members per group: the fan-out of a load message */
extern bool joins_deferred; /* rooms mode, first phase: stop at the welcome */
extern volatile sig_atomic_t stop_signal;
extern uint64_t rx_now; /* time of the recv being parsed: every line in it arrived then */
extern double ready_client_us; /* ready clients integrated over the window (integrate_ready) */
extern uint64_t ready_since_us;
extern char first_failure[160]; /* the first per-client diagnostic (note) */

void note(int client, const char *fmt, ...);

void buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

void integrate_ready(void);
void set_state(struct conn *c, enum conn_state s);
void settle(struct conn *c);
void conn_drop(struct conn *c, const char *why);
void release_buffers(struct conn *c);
void want_output(struct conn *c, bool on);

void advance_all(enum conn_state from, void (*step)(struct conn *), uint64_t deadline);
bool serve_until(uint64_t until);

#endif
