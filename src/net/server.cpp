// The server's life: the lws context and vhost, the service loop that also drives the
// engine's timers, and the shutdown that closes every client with 1001.
//
// Loop order per pass (one write per connection per coalescing window: docs/protocol.md
// "Notes for this server", Writes):
// gather_input() sleeps out an open coalescing window; one turn of the event loop
// (event_loop.hpp: lws' poll() or libuv) reads and dispatches whatever is ready, which
// queues output; check_unread_input() looks for input lws left unread; then end_pass()
// reloads changed scripts, runs the engine's due timers and end_of_pass(), and at the
// window's end writes each connection's queue (ws_session.cpp flush_now). A turn sleeps
// until the next fd event or scheduled sul (lws 4.1 ignores any non-negative timeout given
// to lws_service()), so one sul, set at whichever of those is due first, is what wakes
// the loop for them.
//
// The coalescing window (server_state.hpp) opens at the first message read or output
// queued. While it is open the loop does not wake for each message that comes in: it
// sleeps out the window, reads everything that arrived in one turn, and the output of all
// of it leaves in the writes that end the window. Nothing waits longer than a window:
// output queued in it left at its end anyway, and input read at its end joins it. A
// window in which input came is followed by the next at once, so a loaded server wakes
// about once per window instead of once per incoming message, and each wake-up of lws'
// loop polls every socket: at 1M deliveries/s from 10k messages/s that was half the
// server's CPU, and in a room of 1,000 members sending 20 moves/s each, a fifth
// (bench/README.md "Fan-out").
// (docs/design.md 4.2)
#include "net/server_state.hpp"
#include "net/rooms_watch.hpp"
#include "net/sse_session.hpp"
#include "net/tls.hpp"
#include "net/ws_session.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atrium::net {

namespace {

constexpr auto kDrainTime = std::chrono::seconds(2);   // shutdown: wait this long for clients
constexpr std::int64_t kDrainPollMs = 50;

// lws logging is process-wide, so its sink is too.
const Server::State* g_log_state = nullptr;

// While lws_create_context() runs, lws' lines wait here (level, text). A listener that
// cannot be made is then said in one line by the caller ("address already in use: ..."),
// and lws' own "ERROR on binding fd 5 to port 8080 (-1 98)", "init server failed" and
// "Failed to create default vhost" go to the debug level instead of before it.
std::vector<std::pair<int, std::string>>* g_held_lws_lines = nullptr;

void forward_lws_line(int level, std::string_view text, bool demote) {
  const engine::LogLevel mapped = demote               ? engine::LogLevel::debug
                                  : (level & LLL_ERR)  ? engine::LogLevel::error
                                  : (level & LLL_WARN) ? engine::LogLevel::warn
                                                       : engine::LogLevel::debug;
  g_log_state->log(mapped, "lws log text=\"" + std::string(text) + "\"");
}

void emit_lws_log(int level, const char* line) {
  if (!g_log_state || !line) return;
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (g_held_lws_lines)
    g_held_lws_lines->emplace_back(level, text);
  else
    forward_lws_line(level, text, false);
}

// Creates the lws context with its lines held, then logs them: as they were when the
// context was made, at debug level when it was not (the caller says why).
lws_context* create_context_quietly(const lws_context_creation_info& info) {
  std::vector<std::pair<int, std::string>> held;
  g_held_lws_lines = &held;
  lws_context* context = lws_create_context(&info);
  g_held_lws_lines = nullptr;
  for (const auto& [level, text] : held) forward_lws_line(level, text, context == nullptr);
  return context;
}

// Why the listener could not be made. lws 4.1 reports a failed bind() only in its log,
// so the same address is bound once more here, as lws binds it (SO_REUSEADDR), for its
// errno. 0 when that cannot be tried (an interface name) or now succeeds.
// (docs/design.md 4.7)
int bind_errno(const std::string& address, int port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof *v6;
  } else {
    return 0;
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const int err = bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0 ? 0 : errno;
  close(fd);
  return err;
}

// The one line `atrium serve` prints when it cannot listen: the cause, and what to do.
std::string listen_error(const std::string& host, const std::string& address, int port) {
  const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(port);
  switch (const int err = bind_errno(address, port)) {
    case EADDRINUSE:
      return "address already in use: " + where + " (another server? try --port 0)";
    case EACCES:
      return "permission denied: " + where + " (ports below 1024 need privileges; try --port 8080)";
    case EADDRNOTAVAIL:
      return "address not available: " + where + " (no interface of this machine has it; check --host)";
    case 0:
      return "cannot listen on " + where + " (--log-level debug shows why)";
    default:
      return "cannot listen on " + where + ": " + std::strerror(err);
  }
}

// The wake-up for engine timers. lws runs a sul that is already due at the start of
// lws_service() and then polls until its next sul, which may be a heartbeat 25 s away: a
// due engine timer would wait for the next packet. Cancelling the service makes that poll
// return at once, so the loop always comes round to end_pass().
void on_wake(lws_sorted_usec_list_t* sul) {
  Server::State::Wake* wake = lws_container_of(sul, Server::State::Wake, sul);
  lws_cancel_service(wake->context);
}

// lws 4.1 sleeps for the time to its next sul in whole milliseconds, rounded down, and
// then polls without sleeping until the sul is due: a wake-up 0.9 ms away spins for 0.9 ms.
// Waking at a whole number of milliseconds plus the loop's margin sleeps through.
// (docs/design.md 4.2)

// The sooner of two delays, where -1 means never.
std::int64_t earliest(std::int64_t a, std::int64_t b) {
  return a < 0 ? b : b < 0 ? a : std::min(a, b);
}

// Loads the certificate and key again from their paths. lws 4.1's lws_tls_cert_updated()
// loads them into the vhost's SSL_CTX in place: connections that exist keep the SSL (and
// its copy of the certificate) they were made with, new ones get the new pair. It reports
// nothing, and a pair that failed halfway would leave a certificate without its key in the
// SSL_CTX, so the pair is checked first (check_tls_files), and must keep the key type:
// OpenSSL keeps one certificate per key type, and an RSA one would stay beside a new EC one.
// Since the files are read twice, lws' lines are watched as well, for a pair changed again
// in between.
void reload_tls(Server::State& s) {
  const std::string& cert = s.config.tls_cert;
  const std::string& key = s.config.tls_key;
  std::string why;
  Result<TlsCredentials> fresh = check_tls_files(cert, key);
  if (!fresh) {
    why = fresh.error().message;
  } else if (fresh->key_type != s.tls_loaded.key_type) {
    why = "the key is " + fresh->key_name + ", the one in use " + s.tls_loaded.key_name +
          " (a new key type needs a restart)";
  } else {
    std::vector<std::pair<int, std::string>> held;
    g_held_lws_lines = &held;
    lws_tls_cert_updated(s.context, cert.c_str(), key.c_str(), nullptr, 0, nullptr, 0);
    g_held_lws_lines = nullptr;
    for (const auto& [level, text] : held) {
      if ((level & LLL_ERR) && why.empty()) why = "lws: " + text;
      forward_lws_line(level, text, true);
    }
  }
  if (!why.empty()) {
    s.log(engine::LogLevel::error, "net tls_reload_failed cert=" + cert + " key=" + key +
                                       " in_use=" + s.tls_loaded.fingerprint + " why=\"" + why + "\"");
    return;
  }
  s.tls_loaded = std::move(fresh).value();
  s.log(engine::LogLevel::info, "net tls_reloaded cert=" + cert + " sha256=" +
                                    s.tls_loaded.fingerprint + " not_after=" + s.tls_loaded.not_after);
}

// About once a second: event streams silent for the heartbeat interval get a comment
// (sse_session.hpp), so that proxies keep them open.
void keep_streams_alive(Server::State& s) {
  if (s.streams.empty()) return;
  const std::int64_t now = static_cast<std::int64_t>(lws_now_usecs() / 1000);
  if (now - s.streams_checked_ms < 1000) return;
  s.streams_checked_ms = now;
  for (auto& [id, stream] : s.streams) stream->keep_alive(now);
}

// Runs the engine's part of a pass (changed scripts, timers, end_of_pass), ends the
// coalescing window when it is over, and sets the one wake-up for whichever comes next
// (no later than cap_ms when cap_ms >= 0).
void end_pass(Server::State& s, std::int64_t cap_ms = -1) {
  ++s.pass;
  ++s.stats.loop_passes;
  // A reload asked for by a signal (Server::request_tls_reload) is done here, on the loop.
  if (!s.config.tls_cert.empty() && s.tls_reload_requested.exchange(false)) reload_tls(s);
  std::int64_t ms = -1;
  try {
    ms = reload_changed_scripts(s);
    keep_streams_alive(s);
    s.engine.run_due();
    if (s.config.guest) s.config.guest->run_due();
    s.engine.end_of_pass();
    ms = earliest(ms, s.engine.ms_until_next());
    if (s.config.guest) ms = earliest(ms, s.config.guest->ms_until_next());
  } catch (const std::exception& e) {
    s.log(engine::LogLevel::error, std::string("net engine_failed what=") + e.what());
  }
  lws_usec_t now = lws_now_usecs();
  if (s.window_end_us && now >= s.window_end_us) {
    flush_waiting(s);  // writes, and closes the window
    // Input came in this window: more is likely on its way, so the next window starts
    // now rather than at the next message, which would cost a turn of the loop to learn.
    if (s.stats.frames_in != s.frames_in_at_window) {
      s.open_window();
      now = lws_now_usecs();
    }
    s.frames_in_at_window = s.stats.frames_in;
  }

  ms = earliest(ms, cap_ms);
  lws_usec_t us = ms < 0 ? -1 : static_cast<lws_usec_t>(ms) * LWS_US_PER_MS;
  if (s.window_end_us && (us < 0 || s.window_end_us - now < us)) us = s.window_end_us - now;
  s.next_due_us = us < 0 ? 0 : now + us;
  if (us < 0) {
    lws_sul_cancel(&s.wake.sul);
    return;
  }
  if (us > 0) us = (us + LWS_US_PER_MS - 1) / LWS_US_PER_MS * LWS_US_PER_MS + s.loop.wake_margin_us();
  lws_sul_schedule(s.context, 0, &s.wake.sul, on_wake, us);
}

// While a window is open, sleeps until it ends (or an engine timer is due, if sooner),
// unless something must be served at once, and makes the turn that follows serve what is
// ready without blocking.
void gather_input(Server::State& s) {
  const bool urgent = s.serve_now;
  s.serve_now = false;
  if (!s.window_end_us || urgent) return;
  const lws_usec_t left = s.next_due_us - lws_now_usecs();
  if (left > 0) {
    timespec t{static_cast<time_t>(left / LWS_US_PER_SEC),
               static_cast<long>(left % LWS_US_PER_SEC) * 1000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR && !s.stop_requested.load()) {
    }
  }
  // The wake sul is set a margin past the window (end_pass): without this the turn would
  // block until it when no socket happens to be ready.
  lws_cancel_service(s.context);
}

// lws reads at most one receive chunk (256 bytes) of a socket per turn, and parses it
// whole: a burst from one client (20 messages of 70 bytes) would come in a chunk per window
// (one took 270 ms with a 100 ms window). So after a turn in which sockets were read while
// a window is open, one poll() with no wait over just those says whether any has more
// waiting; if one does, the loop takes another turn before it sleeps. One syscall per turn
// (an ioctl per socket cost 2 us each, 2 % of the server at 1M deliveries/s).
//
// With TLS, a record longer than that chunk leaves the rest of it decrypted inside OpenSSL,
// where poll() does not see it; lws keeps a list of such connections and says so through
// lws_service_adjust_timeout() (0: something is pending, do not wait).
void check_unread_input(Server::State& s) {
  if (s.read_fds.empty()) return;
  if (!s.serve_now && s.window_end_us) {
    std::vector<pollfd>& fds = s.read_polls;
    fds.clear();
    for (const int fd : s.read_fds) fds.push_back(pollfd{fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), 0) > 0)
      s.serve_now = std::any_of(fds.begin(), fds.end(),
                                [](const pollfd& p) { return (p.revents & POLLIN) != 0; });
    if (!s.serve_now && !s.config.tls_cert.empty())
      s.serve_now = lws_service_adjust_timeout(s.context, 1, 0) == 0;
  }
  s.read_fds.clear();
}

struct ListenAddress {
  std::string iface;   // what lws gets as info.iface: a numeric address or an interface name
  bool ipv6;           // false: the vhost must have IPv6 disabled
};

// lws 4.1.6 binds an IPv4 address given to an IPv6-enabled vhost to "::", every interface
// (lws_interface_to_sa() parses it into the IPv4 layout of an IPv6 sockaddr): the default
// 127.0.0.1 would have been open to the network. So IPv4 addresses get a vhost without
// IPv6, and host names are resolved here (lws only knows addresses and interface names),
// IPv4 first as most clients try it first.
// (docs/design.md 4.7)
Result<ListenAddress> listen_address(const std::string& host) {
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return ListenAddress{host, false};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return ListenAddress{host, true};
  if (if_nametoindex(host.c_str()) != 0) return ListenAddress{host, true};  // "lo", "eth0"

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found)
    return make_error(ErrorCode::bad_request, "cannot resolve host " + host + " (check --host)");
  const addrinfo* pick = found;
  for (const addrinfo* a = found; a; a = a->ai_next)
    if (a->ai_family == AF_INET) { pick = a; break; }
  const bool v6 = pick->ai_family == AF_INET6;
  const void* addr = v6 ? static_cast<const void*>(
                              &reinterpret_cast<const sockaddr_in6*>(pick->ai_addr)->sin6_addr)
                        : static_cast<const void*>(
                              &reinterpret_cast<const sockaddr_in*>(pick->ai_addr)->sin_addr);
  char text[INET6_ADDRSTRLEN] = {};
  const bool ok = inet_ntop(pick->ai_family, addr, text, sizeof text) != nullptr;
  freeaddrinfo(found);
  if (!ok) return make_error(ErrorCode::bad_request, "cannot resolve host " + host + " (check --host)");
  return ListenAddress{text, v6};
}

std::string endpoint(const Server::State& s) {
  return "host=" + s.config.host + " port=" + std::to_string(s.port);
}

}  // namespace

Server::State::State(engine::Engine& engine_ref, ServerConfig config_in)
    : engine(engine_ref),
      config(std::move(config_in)),
      api(engine, stats, config.admin_token,
          [this](engine::LogLevel level, std::string_view line) { log(level, line); },
          config.guest.get()),
      files(config.public_dir),
      web_files(config.web_dir) {}

void Server::State::log(engine::LogLevel level, std::string_view line) const {
  if (config.on_log) {
    config.on_log(level, line);
    return;
  }
  std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
}

Result<std::unique_ptr<Server>> Server::create(engine::Engine& engine, ServerConfig config) {
  auto state = std::make_unique<State>(engine, std::move(config));
  State& s = *state;

  g_log_state = &s;
  lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE, emit_lws_log);

  // Heartbeat (docs/protocol.md "Heartbeat and reconnect"): ping after heartbeat-ms of
  // silence, hang up after twice that. lws counts whole seconds.
  static const std::uint32_t kBackoffMs[] = {1000};  // required by the struct; servers never retry
  const int ping_secs = s.config.heartbeat_ms >= 1000 ? s.config.heartbeat_ms / 1000 : 1;
  s.retry.retry_ms_table = kBackoffMs;
  s.retry.retry_ms_table_count = 1;
  s.retry.conceal_count = 1;
  s.retry.secs_since_valid_ping = static_cast<std::uint16_t>(ping_secs);
  s.retry.secs_since_valid_hangup = static_cast<std::uint16_t>(2 * ping_secs);

  Result<ListenAddress> address = listen_address(s.config.host);
  if (!address) {
    g_log_state = nullptr;
    return std::move(address).error();
  }

  // A listener that cannot be made is found before lws is asked: a context whose bind fails
  // leaks in lws 4.1.6 (72 bytes, LeakSanitizer), and the cause is known without its log.
  if (bind_errno(address->iface, s.config.port) != 0) {
    g_log_state = nullptr;
    return make_error(ErrorCode::internal, listen_error(s.config.host, address->iface, s.config.port));
  }

  // TLS (tls.hpp): the pair is checked here, so that a bad one is said in one line rather
  // than as a listener lws could not make.
  const bool tls = !s.config.tls_cert.empty() || !s.config.tls_key.empty();
  if (tls) {
    Result<TlsCredentials> creds =
        s.config.tls_cert.empty() || s.config.tls_key.empty()
            ? make_error(ErrorCode::bad_request, "--tls-cert and --tls-key go together")
            : check_tls_files(s.config.tls_cert, s.config.tls_key);
    if (!creds) {
      g_log_state = nullptr;
      return std::move(creds).error();
    }
    s.tls_loaded = std::move(creds).value();
  }

  lws_context_creation_info info{};
  info.port = s.config.port;
  info.iface = address->iface.c_str();
  info.vhost_name = "atrium";
  info.protocols = protocol_table();
  // Request headers lws keeps per handshake (4 KiB by default): a token of up to 8 KiB
  // (auth/jwt.hpp kMaxTokenBytes) in the URL or Authorization must fit, so that an
  // oversized one is answered 401 by the admission check rather than dropped by lws.
  info.max_http_header_data = 16 * 1024;
  // lws' own permessage-deflate stays off (docs/design.md 4.4: in 4.1 it keeps reading a
  // written buffer in later passes, and -1 from RECEIVE does not close the connection under
  // it). The extension listed here only lets lws read compressed frames: WsSession does the
  // compressing (callback.cpp, "permessage-deflate").
  if (s.config.deflate) info.extensions = deflate_extensions();
  // No LWS_SERVER_OPTION_VALIDATE_UTF8: lws would close a bad text frame itself, at once,
  // and a client still sending then gets a reset instead of the 1007 close frame. WsSession
  // checks UTF-8 as the text arrives and closes through its lingering close
  // (ws_session.cpp, "Closing").
  info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
  if (!address->ipv6) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  if (tls) {
    // The port speaks TLS only: without LWS_SERVER_OPTION_ALLOW_NON_SSL_ON_SSL_PORT a plain
    // HTTP or WebSocket request fails its handshake. TLS 1.2 and later (lws itself turns
    // SSLv2 and SSLv3 off). ALPN offers http/1.1 alone: lws would offer h2 first, and the
    // HTTP exchanges (http_exchange.cpp: one request per connection, "Connection: close")
    // and the WebSocket frames written whole on the connection's socket (ws_session.cpp)
    // are HTTP/1.1's.
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = s.config.tls_cert.c_str();
    info.ssl_private_key_filepath = s.config.tls_key.c_str();
    info.ssl_options_set = static_cast<long>(SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
    info.alpn = "http/1.1";
  }
  info.retry_and_idle_policy = &s.retry;
  info.user = &s;
  s.loop.configure(info);
  if (s.config.event_loop == "libuv" && std::string_view(s.loop.name()) != "libuv")
    s.log(engine::LogLevel::warn, "net event_loop_unavailable wanted=libuv using=poll");

  s.context = create_context_quietly(info);
  s.wake.context = s.context;
  if (!s.context) {
    g_log_state = nullptr;
    return make_error(ErrorCode::internal, listen_error(s.config.host, address->iface, s.config.port));
  }
  s.vhost = lws_get_vhost_by_name(s.context, "atrium");
  s.port = s.vhost ? lws_get_vhost_listen_port(s.vhost) : s.config.port;
  start_watching(s);
  if (!s.config.public_dir.empty() && !s.files.enabled())
    s.log(engine::LogLevel::warn, "net no_public_dir dir=" + s.config.public_dir);
  if (!s.config.web_dir.empty() && !s.web_files.enabled())
    s.log(engine::LogLevel::warn, "net no_web_dir dir=" + s.config.web_dir +
                                      " (the inspector and /_atrium/atrium-client.mjs are missing)");
  if (tls)
    s.log(engine::LogLevel::info, "net tls cert=" + s.config.tls_cert + " key_type=" +
                                      s.tls_loaded.key_name + " sha256=" +
                                      s.tls_loaded.fingerprint + " not_after=" +
                                      s.tls_loaded.not_after + " min=TLSv1.2 alpn=http/1.1");
  s.log(engine::LogLevel::info, "net listening " + endpoint(s) + " loop=" + s.loop.name() +
                                    (tls ? " tls=on" : "") +
                                    (s.files.enabled() ? " public=" + s.files.root() : ""));
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

Server::Server(std::unique_ptr<State> state) : state_(std::move(state)) {}

Server::~Server() {
  if (state_->context) {
    lws_sul_cancel(&state_->wake.sul);
    lws_context_destroy(state_->context);  // CLOSED for what is left: engine.disconnect
    state_->loop.finish(state_->context);
  }
  if (g_log_state == state_.get()) {
    g_log_state = nullptr;
    lws_set_log_level(LLL_ERR | LLL_WARN, nullptr);
  }
}

int Server::port() const noexcept { return state_->port; }

void Server::request_stop() noexcept {
  state_->stop_requested.store(true);
  if (state_->context) lws_cancel_service(state_->context);  // an eventfd write
}

void Server::request_tls_reload() noexcept {
  state_->tls_reload_requested.store(true);
  if (state_->context) lws_cancel_service(state_->context);  // an eventfd write
}

Status Server::serve_ready() {
  State& s = *state_;
  // lws polls until its next timer, which may be a heartbeat seconds away; a cancel first
  // makes that poll return at once, with whatever sockets are ready served.
  lws_cancel_service(s.context);
  if (!s.loop.run_once(s.context)) return make_error(ErrorCode::internal, "event loop failed");
  end_pass(s);
  return {};
}

Status Server::run() {
  State& s = *state_;
  end_pass(s);
  while (!s.stop_requested.load()) {
    gather_input(s);
    if (!s.loop.run_once(s.context))
      return make_error(ErrorCode::internal, "event loop failed");
    check_unread_input(s);
    end_pass(s);
  }

  s.stopping = true;  // refuse new WebSocket upgrades from here on
  s.log(engine::LogLevel::info,
        "net shutting_down connections=" + std::to_string(s.stats.connections));
  try {
    s.engine.shutdown();  // every client gets close 1001 through its sink
    if (s.config.guest) s.config.guest->shutdown();
  } catch (const std::exception& e) {
    s.log(engine::LogLevel::error, std::string("net engine_failed what=") + e.what());
  }
  end_pass(s, kDrainPollMs);
  const auto deadline = std::chrono::steady_clock::now() + kDrainTime;
  while (s.stats.connections > 0 && std::chrono::steady_clock::now() < deadline) {
    if (!s.loop.run_once(s.context)) break;
    check_unread_input(s);
    end_pass(s, kDrainPollMs);
  }
  s.log(engine::LogLevel::info, "net stopped connections_left=" +
                                    std::to_string(s.stats.connections));
  return {};
}

}  // namespace atrium::net
