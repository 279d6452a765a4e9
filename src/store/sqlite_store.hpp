// Durable rooms in SQLite (Debian's libsqlite3), WAL mode, one file: DIR/atrium.db.
#pragma once

#include <memory>
#include <string>

#include "engine/room_store.hpp"

namespace atrium::store {

enum class Durability {
  process,  // synchronous=NORMAL: a commit survives the process dying (kill -9)
  power,    // synchronous=FULL: a commit survives losing power (an fsync per commit)
};

// DIR/atrium.db, made (with DIR) when `create`; a null store when it does not exist and
// `create` is false. An unreadable or corrupt file is an error that names it.
Result<std::shared_ptr<engine::RoomStore>> open_sqlite_store(const std::string& dir, Durability durability,
                                                             bool create);

}  // namespace atrium::store
