// The one libwebsockets callback and its protocol table. Every reason is one call into the
// connection's WsSession or HttpExchange; no exception leaves this file.
//
// One callback serves HTTP and WebSocket for every protocol: a client that offers no
// subprotocol is bound to protocols[0], one that offers "atrium.v1" to protocols[1], and
// both speak the same JSON (docs/protocol.md "Transport"); one that offers
// "atrium.v1.msgpack" to protocols[2], and speaks the same objects in MessagePack.
//
// permessage-deflate (permessage_deflate.hpp) is negotiated here, around lws: see
// "permessage-deflate" below.
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "net/http_exchange.hpp"
#include "net/permessage_deflate.hpp"
#include "net/rooms_watch.hpp"
#include "net/sse_session.hpp"
#include "net/server_state.hpp"
#include "net/ws_session.hpp"

namespace atrium::net {

namespace {

// lws zeroes this per connection; the C++ objects live behind the pointers.
struct Pss {
  WsSession* ws;
  HttpExchange* http;
  SseSession* sse;    // GET /ws/events: the HTTP fallback's event stream
  // The handshake's permessage-deflate offers seen so far, and where it stands: taken
  // (lws will name the extension in its answer), then agreed (the answer says it our way).
  unsigned char deflate_offers;
  enum : unsigned char { kDeflateNo, kDeflateTaken, kDeflateAgreed } deflate;
};

// What lws reads per RECEIVE, allocated per connection for its whole life: kept small so
// that an idle member stays cheap (lws' default is 4 KiB); longer messages reassemble
// (ws_session.cpp). lws also reads the socket no more than this per turn of the loop, so
// a message longer than it costs a read and a turn per chunk: 256 bytes hold a typical
// call or chat line in one (at 128, a 170-byte emit took two), and an idle joined
// connection costs 1,921 bytes, within the 2 KiB budget (bench/README.md, "Idle memory"
// under "Figures of the latest run").
constexpr std::size_t kRxChunk = 256;
// lws caps each send() at tx_packet_size, or at rx_buffer_size when that is 0: a small
// rx_buffer_size would chop every write into 512-byte syscalls.
constexpr std::size_t kTxPacket = kMaxWriteBytes + 1024;

// The longest Sec-WebSocket-Extensions value lws reads without failing the handshake.
constexpr int kMaxExtensionsHeader = 255;

Server::State& state_of(lws* wsi) {
  return *static_cast<Server::State*>(lws_context_user(lws_get_context(wsi)));
}

// Whose WebSocket endpoint a GET's path is: Atrium's (/ws), the guest protocol's (e.g.
// Pusher's /app/KEY), or nobody's.
enum class WsEndpoint { none, atrium, guest };

WsEndpoint ws_endpoint(lws* wsi, std::string_view* path_out = nullptr) {
  char* uri = nullptr;
  int len = 0;
  if (lws_http_get_uri_and_method(wsi, &uri, &len) != LWSHUMETH_GET || !uri) return WsEndpoint::none;
  const std::string_view path(uri, static_cast<std::size_t>(len));
  if (path_out) *path_out = path;
  if (path == "/ws") return WsEndpoint::atrium;
  const GuestProtocol* guest = state_of(wsi).config.guest.get();
  return guest && guest->claims_websocket(path) ? WsEndpoint::guest : WsEndpoint::none;
}

int confirm_upgrade(lws* wsi, const char* upgrade) {
  if (!upgrade || std::string_view(upgrade) != "websocket") return 0;
  std::string_view path;
  const WsEndpoint endpoint = ws_endpoint(wsi, &path);
  if (endpoint == WsEndpoint::none)
    return refuse_upgrade(wsi, ErrorCode::not_found, "the WebSocket endpoint is /ws", 404);
  Server::State& state = state_of(wsi);
  if (state.stopping)
    return refuse_upgrade(wsi, ErrorCode::internal, "server shutting down", 503);
  // lws 4.1.6 drops the connection, answering nothing, once its reading of this header
  // passes byte 255 (docs/design.md 4.4): such an upgrade is refused with a reason instead.
  if (lws_hdr_total_length(wsi, WSI_TOKEN_EXTENSIONS) > kMaxExtensionsHeader)
    return refuse_upgrade(wsi, ErrorCode::bad_request,
                          "Sec-WebSocket-Extensions is longer than 255 bytes", 400);
  if (endpoint == WsEndpoint::guest)
    return state.admission.decide_guest(wsi, path, state.config, state.stats);
  return state.admission.decide(wsi, state.engine, state.config, state.stats);
}

// permessage-deflate, negotiated around lws (docs/design.md 4.4). lws' own extension stays
// unused; but lws reads a frame with RSV1 set (a compressed message) only on a connection
// with an active extension, and it activates one only through its own negotiation. So the
// vhost lists an extension of ours by that name (deflate_extensions()) that changes
// nothing lws reads or writes: WsSession inflates and compresses, and writes its frames
// raw, past every extension. What lws negotiates is then corrected in two steps:
//  - confirm_extension: lws asks about each offer of the extension; we take the first one
//    we can honour (permessage_deflate.cpp says which), on /ws only, and only on a
//    connection of its own (not a stream inside HTTP/2, which lws frames).
//  - deflate_answer: lws has written "Sec-WebSocket-Extensions: permessage-deflate" and
//    nothing more (our extension lists no options for it to echo), last before the headers
//    handed to us. That line is replaced with kDeflateAgreed: neither side takes context
//    over, which a client must honour even if it did not offer it (RFC 7692 7.1.1).
//    If the line is not exactly there (another libwebsockets), the handshake fails and
//    says why, rather than agreeing on something WsSession does not do.
int passthrough_extension(lws_context*, const lws_extension*, lws*, lws_extension_callback_reasons reason,
                          void*, void* in, std::size_t) {
  static const lws_ext_options kNoOptions[] = {{nullptr, EXTARG_NONE}};
  if (reason == LWS_EXT_CB_CONSTRUCT) *static_cast<const lws_ext_options**>(in) = kNoOptions;
  return 0;  // payloads pass unchanged (lws' PMDR_UNKNOWN: what it does with no extension)
}

const lws_extension kDeflateExtensions[] = {
    {"permessage-deflate", passthrough_extension, nullptr},
    {nullptr, nullptr, nullptr},
};

// 0 takes this offer, 1 declines it.
int confirm_extension(lws* wsi, Pss& pss, const char* name) {
  if (!name || std::string_view(name) != "permessage-deflate") return 1;
  const std::size_t index = pss.deflate_offers++;
  if (pss.deflate != Pss::kDeflateNo || !state_of(wsi).config.deflate) return 1;
  if (ws_endpoint(wsi) != WsEndpoint::atrium || lws_get_network_wsi(wsi) != wsi) return 1;
  const int n = lws_hdr_total_length(wsi, WSI_TOKEN_EXTENSIONS);
  if (n <= 0) return 1;
  std::string header(static_cast<std::size_t>(n) + 1, '\0');
  if (lws_hdr_copy(wsi, header.data(), n + 1, WSI_TOKEN_EXTENSIONS) < 0) return 1;
  header.resize(static_cast<std::size_t>(n));
  if (!deflate_offer_acceptable(header, index)) return 1;
  pss.deflate = Pss::kDeflateTaken;
  return 0;
}

int deflate_answer(lws* wsi, Pss& pss, lws_process_html_args& args) {
  static constexpr std::string_view kLwsLine = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
  const std::string ours = "Sec-WebSocket-Extensions: " + std::string(kDeflateAgreed) + "\r\n";
  char* line = args.p - kLwsLine.size();
  const int grows = static_cast<int>(ours.size() - kLwsLine.size());
  if (std::string_view(line, kLwsLine.size()) != kLwsLine || args.max_len < grows) {
    state_of(wsi).log(engine::LogLevel::error,
                      "net deflate_handshake_unexpected (this libwebsockets answers permessage-deflate "
                      "differently from 4.1.6: the upgrade fails; run with --deflate off)");
    return 1;
  }
  std::memcpy(line, ours.data(), ours.size());
  args.p = line + ours.size();
  args.max_len -= grows;
  pss.deflate = Pss::kDeflateAgreed;
  return 0;
}

int established(lws* wsi, Pss& pss) {
  Server::State& state = state_of(wsi);
  auto session = std::make_unique<WsSession>(state, wsi);
  const int rc = session->on_established(state.admission.take(wsi), pss.deflate == Pss::kDeflateAgreed);
  pss.ws = session.release();
  return rc;
}

int closed(lws* wsi, Pss& pss) {
  std::unique_ptr<WsSession> session(pss.ws);
  pss.ws = nullptr;
  if (session) {
    session->on_closed();
    state_of(wsi).admission.release(session->ip());
  }
  return 0;
}

// Carries out what the exchange asked for. Every finished exchange closes its connection
// (http_exchange.cpp says why), so lws_http_transaction_completed() is never called.
int http_next(Pss& pss, HttpExchange::Next next) {
  if (next == HttpExchange::Next::wait) return 0;
  delete pss.http;
  pss.http = nullptr;
  return next == HttpExchange::Next::serving_file ? 0 : -1;
}

// GET /ws/events opens an event stream of the HTTP fallback (sse_session.hpp): the same
// admission as a WebSocket upgrade to /ws (origin, per-address count, token, the gate,
// ?join=), whose refusal is answered here.
int event_stream(lws* wsi, Pss& pss) {
  Server::State& state = state_of(wsi);
  if (state.stopping) return refuse_upgrade(wsi, ErrorCode::internal, "server shutting down", 503);
  if (const int refused = state.admission.decide(wsi, state.engine, state.config, state.stats)) return refused;
  pss.sse = new SseSession(state, wsi);
  pss.sse->start(state.admission.take(wsi));
  return 0;
}

bool is_event_stream(lws* wsi) {
  char* uri = nullptr;
  int len = 0;
  return lws_http_get_uri_and_method(wsi, &uri, &len) == LWSHUMETH_GET && uri &&
         std::string_view(uri, static_cast<std::size_t>(len)) == "/ws/events";
}

int sse_closed(lws* wsi, Pss& pss) {
  std::unique_ptr<SseSession> session(pss.sse);
  pss.sse = nullptr;
  session->on_closed();
  state_of(wsi).admission.release(session->ip());
  return 0;
}

int http_request(lws* wsi, Pss& pss) {
  if (is_event_stream(wsi)) return event_stream(wsi, pss);
  delete pss.http;
  pss.http = new HttpExchange(state_of(wsi), wsi);
  return http_next(pss, pss.http->on_request());
}

int dispatch(lws* wsi, lws_callback_reasons reason, Pss* pss, void* in, std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
      return confirm_extension(wsi, *pss, static_cast<const char*>(in));
    case LWS_CALLBACK_ADD_HEADERS:
      if (pss->deflate == Pss::kDeflateTaken && !pss->ws)
        return deflate_answer(wsi, *pss, *static_cast<lws_process_html_args*>(in));
      return lws_callback_http_dummy(wsi, reason, pss, in, len);
    case LWS_CALLBACK_ESTABLISHED: return established(wsi, *pss);
    case LWS_CALLBACK_RECEIVE: return pss->ws ? pss->ws->on_receive(in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE: return pss->ws ? pss->ws->on_writeable() : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      if (pss->ws) pss->ws->on_peer_close(in, len);
      return 0;  // lws echoes the close frame
    case LWS_CALLBACK_CLOSED: return closed(wsi, *pss);

    case LWS_CALLBACK_HTTP: return http_request(wsi, *pss);
    case LWS_CALLBACK_HTTP_BODY:
      return pss->http ? http_next(*pss, pss->http->on_body(in, len)) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
      return pss->http ? http_next(*pss, pss->http->on_body_complete()) : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
      if (pss->sse) return pss->sse->on_writeable();
      return pss->http ? http_next(*pss, pss->http->on_writeable()) : 0;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION: return -1;  // sent: close, as for every response
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      if (pss->sse) sse_closed(wsi, *pss);
      delete pss->http;
      pss->http = nullptr;
      return 0;
    default: return lws_callback_http_dummy(wsi, reason, pss, in, len);
  }
}

int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  auto* pss = static_cast<Pss*>(user);
  try {
    // These need no pss (the first two come before lws has allocated it).
    if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE)
      return confirm_upgrade(wsi, static_cast<const char*>(in));
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
      return ws_endpoint(wsi) != WsEndpoint::none && !state_of(wsi).stopping ? 0 : 1;
    if (reason == LWS_CALLBACK_WSI_DESTROY) {  // an upgrade admitted but never established
      state_of(wsi).admission.forget(wsi);
      return 0;
    }
    if (reason == LWS_CALLBACK_RAW_RX_FILE) {  // the only adopted fd: rooms/ inotify
      on_watch_readable(state_of(wsi));
      return 0;
    }
    if (!pss) return lws_callback_http_dummy(wsi, reason, user, in, len);  // context-level
    return dispatch(wsi, reason, pss, in, len);
  } catch (const std::exception& e) {
    state_of(wsi).log(engine::LogLevel::error, "net callback_failed reason=" +
                                                   std::to_string(static_cast<int>(reason)) +
                                                   " what=" + e.what());
  } catch (...) {
    state_of(wsi).log(engine::LogLevel::error, "net callback_failed reason=" +
                                                   std::to_string(static_cast<int>(reason)));
  }
  if (reason == LWS_CALLBACK_CLOSED || reason == LWS_CALLBACK_CLOSED_HTTP) return 0;
  return -1;  // this connection only
}

const lws_protocols kProtocols[] = {
    {"atrium-http", callback, sizeof(Pss), kRxChunk, 0, nullptr, kTxPacket},
    {"atrium.v1", callback, sizeof(Pss), kRxChunk, 0, nullptr, kTxPacket},
    {"atrium.v1.msgpack", callback, sizeof(Pss), kRxChunk, 0, nullptr, kTxPacket},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

const lws_protocols* protocol_table() { return kProtocols; }

const lws_extension* deflate_extensions() { return kDeflateExtensions; }

}  // namespace atrium::net
