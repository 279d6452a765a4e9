// Where durable rooms live (docs/rooms.md "Durable rooms"): an interface, so that the engine
// knows nothing of SQLite (src/store/sqlite_store.cpp) and a store shared by several nodes
// can take its place. The engine writes as it commits; it calls commit() once per loop pass
// (group commit) and lets no frame that shows a change leave before that returned.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace atrium::engine {

// One committed change of a room: its ops (JSON arrays, RFC 6902) against the state and the
// meta as of the change before, and the seq the room's state has once they are in it.
struct StoredChange {
  std::uint64_t ver = 0;            // the room's change count, from 1
  std::uint64_t seq = 0;
  std::string state_ops, meta_ops;  // "[...]"
};

struct StoredRoom {
  std::string id, type, epoch;
  std::uint64_t seq = 0;            // of `state`
  std::uint64_t ver = 0;            // the changes folded into state and meta
  std::string state, meta;          // JSON objects
  std::vector<StoredChange> changes;  // after ver, in order (load only)
};

// A member's seat, kept so that it survives a restart: the client can resume it.
struct StoredSeat {
  std::string room;
  std::uint64_t client = 0;         // the numeric client id ("c" + it on the wire)
  std::string session;              // welcome.session, 32 hex digits
  std::string user_id;
};

struct StoredWorld {
  std::vector<StoredRoom> rooms;
  std::vector<StoredSeat> seats;
};

class RoomStore {
 public:
  virtual ~RoomStore() = default;
  // Everything stored, for a start. Fails with a message naming the file when it cannot
  // be read consistently.
  virtual Result<StoredWorld> load() = 0;
  // Writes, gathered into the write transaction that the next commit() ends.
  virtual void snapshot(const StoredRoom& room) = 0;   // replaces the room, drops its changes
  virtual void change(std::string_view room, const StoredChange& c) = 0;
  virtual void drop(std::string_view room) = 0;        // the room, its changes and seats
  virtual void seat(const StoredSeat& s) = 0;
  virtual void unseat(std::string_view room, std::uint64_t client) = 0;
  virtual bool pending() const = 0;                    // writes since the last commit
  // Makes the writes durable (as the store's durability setting says) before it returns.
  virtual Status commit() = 0;
  virtual std::string where() const = 0;               // for logs: the file
  virtual std::uint64_t bytes() const = 0;             // on disk
};

// Opens the store: with create false, only when one exists already (nothing is made for
// a server that never had a durable room); then it answers a null store.
using StoreOpener = std::function<Result<std::shared_ptr<RoomStore>>(bool create)>;

}  // namespace atrium::engine
