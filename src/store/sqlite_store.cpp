// RoomStore in SQLite. One connection, used only from the engine's thread. Writes go into
// one write transaction, opened by the first write after a commit and ended by commit():
// the engine's group commit, once per loop pass. WAL mode, so a commit is one append to
// the -wal file; synchronous NORMAL (durability process) leaves the fsync to checkpoints
// and survives the process dying, FULL (power) syncs every commit.
//
// A torn or corrupt file: SQLite itself rolls a torn WAL back to its last whole commit
// when it opens the database; what is left is checked with quick_check at open, and every
// read checks its rows, so damage is an error naming the file, never a crash.
#include "store/sqlite_store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>

namespace atrium::store {

namespace {

constexpr int kSchemaVersion = 1;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS rooms (
  id TEXT PRIMARY KEY, type TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
  ver INTEGER NOT NULL, state TEXT NOT NULL, meta TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
  room TEXT NOT NULL, ver INTEGER NOT NULL, seq INTEGER NOT NULL,
  state_ops TEXT NOT NULL, meta_ops TEXT NOT NULL, PRIMARY KEY (room, ver)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seats (
  room TEXT NOT NULL, client INTEGER NOT NULL, session TEXT NOT NULL, user_id TEXT NOT NULL,
  PRIMARY KEY (room, client)) WITHOUT ROWID;
)sql";

class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }
  int prepare(sqlite3* db, const char* sql) { return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr); }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Binds the values in order and runs a statement that returns no rows.
class Writer {
 public:
  explicit Writer(sqlite3_stmt* s) : s_(s) { sqlite3_reset(s_); sqlite3_clear_bindings(s_); }
  Writer& text(std::string_view v) {
    sqlite3_bind_text(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Writer& integer(std::uint64_t v) {
    sqlite3_bind_int64(s_, ++i_, static_cast<sqlite3_int64>(v));
    return *this;
  }
  int run() {
    const int rc = sqlite3_step(s_);
    sqlite3_reset(s_);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
  }

 private:
  sqlite3_stmt* s_;
  int i_ = 0;
};

std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

class SqliteStore final : public engine::RoomStore {
 public:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override {
    if (checkpointer_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
      }
      wake_.notify_one();
      checkpointer_.join();
    }
    sqlite3_close_v2(checkpoint_db_);
    if (in_txn_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db_);
  }

  // Checkpoints (copying the log into the database file, with its fsync) run on a thread
  // of their own with a connection of their own, not inside the engine's commits: SQLite's
  // own, inline once the log holds 1,000 pages, were most of the p99 a durable room added
  // (bench/README.md "Durable rooms"). A PASSIVE checkpoint never blocks the engine; once
  // one has copied the whole log, the engine's next commit starts the log again from its
  // start. Under writes so steady that none ever catches up, a log past kMaxLogPages gets a
  // RESTART checkpoint, which makes the engine's next commit wait for it (busy_timeout):
  // the log, and a restore's scan of it, stay bounded.
  Status start_checkpoints() {
    if (sqlite3_open_v2(path_.c_str(), &checkpoint_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
      return make_error(ErrorCode::internal, path_ + ": cannot open a connection for checkpoints");
    sqlite3_busy_timeout(checkpoint_db_, 1000);
    // A connection learns the file is in WAL mode when it first reads it: until then a
    // checkpoint through it does nothing (and says -1).
    if (sqlite3_exec(checkpoint_db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK)
      return make_error(ErrorCode::internal, path_ + ": the checkpoint connection: " + sqlite3_errmsg(checkpoint_db_));
    checkpointer_ = std::thread([this] { checkpoints(); });
    return {};
  }

  Status prepare() {
    const struct {
      Statement* stmt;
      const char* sql;
    } all[] = {
        {&put_room_, "INSERT OR REPLACE INTO rooms (id, type, epoch, seq, ver, state, meta) VALUES (?,?,?,?,?,?,?)"},
        {&drop_changes_, "DELETE FROM changes WHERE room = ?"},
        {&put_change_, "INSERT OR REPLACE INTO changes (room, ver, seq, state_ops, meta_ops) VALUES (?,?,?,?,?)"},
        {&drop_room_, "DELETE FROM rooms WHERE id = ?"},
        {&drop_seats_, "DELETE FROM seats WHERE room = ?"},
        {&put_seat_, "INSERT OR REPLACE INTO seats (room, client, session, user_id) VALUES (?,?,?,?)"},
        {&drop_seat_, "DELETE FROM seats WHERE room = ? AND client = ?"},
    };
    for (const auto& s : all)
      if (s.stmt->prepare(db_, s.sql) != SQLITE_OK) return failed("preparing a statement");
    return {};
  }

  void checkpoints() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_ || commits_ >= kCommitsPerWake; });
      if (stopping_) break;
      commits_ = 0;
      lock.unlock();
      int in_log = 0, copied = 0;
      for (int round = 0; round < 4; ++round) {
        if (sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &in_log, &copied) != SQLITE_OK ||
            copied >= in_log)
          break;
      }
      if (copied < in_log && in_log > kMaxLogPages)
        sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
      lock.lock();
    }
  }

  Result<engine::StoredWorld> load() override {
    engine::StoredWorld world;
    Statement rooms, changes, seats;
    if (rooms.prepare(db_, "SELECT id, type, epoch, seq, ver, state, meta FROM rooms ORDER BY id") != SQLITE_OK ||
        changes.prepare(db_, "SELECT ver, seq, state_ops, meta_ops FROM changes WHERE room = ? ORDER BY ver") != SQLITE_OK ||
        seats.prepare(db_, "SELECT room, client, session, user_id FROM seats ORDER BY room, client") != SQLITE_OK)
      return failed("reading");
    int rc;
    while ((rc = sqlite3_step(rooms.get())) == SQLITE_ROW) {
      engine::StoredRoom r;
      r.id = column_text(rooms.get(), 0);
      r.type = column_text(rooms.get(), 1);
      r.epoch = column_text(rooms.get(), 2);
      r.seq = static_cast<std::uint64_t>(sqlite3_column_int64(rooms.get(), 3));
      r.ver = static_cast<std::uint64_t>(sqlite3_column_int64(rooms.get(), 4));
      r.state = column_text(rooms.get(), 5);
      r.meta = column_text(rooms.get(), 6);
      sqlite3_reset(changes.get());
      sqlite3_bind_text(changes.get(), 1, r.id.data(), static_cast<int>(r.id.size()), SQLITE_TRANSIENT);
      int crc;
      while ((crc = sqlite3_step(changes.get())) == SQLITE_ROW) {
        engine::StoredChange c;
        c.ver = static_cast<std::uint64_t>(sqlite3_column_int64(changes.get(), 0));
        c.seq = static_cast<std::uint64_t>(sqlite3_column_int64(changes.get(), 1));
        c.state_ops = column_text(changes.get(), 2);
        c.meta_ops = column_text(changes.get(), 3);
        if (c.ver > r.ver) r.changes.push_back(std::move(c));  // older ones are in the snapshot
      }
      if (crc != SQLITE_DONE) return failed("reading the changes of room " + r.id);
      world.rooms.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return failed("reading the rooms");
    while ((rc = sqlite3_step(seats.get())) == SQLITE_ROW) {
      engine::StoredSeat s;
      s.room = column_text(seats.get(), 0);
      s.client = static_cast<std::uint64_t>(sqlite3_column_int64(seats.get(), 1));
      s.session = column_text(seats.get(), 2);
      s.user_id = column_text(seats.get(), 3);
      world.seats.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) return failed("reading the seats");
    return world;
  }

  void snapshot(const engine::StoredRoom& r) override {
    if (!begin()) return;
    note(Writer(put_room_.get()).text(r.id).text(r.type).text(r.epoch).integer(r.seq).integer(r.ver)
             .text(r.state).text(r.meta).run(), "writing room " + r.id);
    note(Writer(drop_changes_.get()).text(r.id).run(), "writing room " + r.id);
  }

  void change(std::string_view room, const engine::StoredChange& c) override {
    if (!begin()) return;
    note(Writer(put_change_.get()).text(room).integer(c.ver).integer(c.seq).text(c.state_ops).text(c.meta_ops).run(),
         "writing a change of room " + std::string(room));
  }

  void drop(std::string_view room) override {
    if (!begin()) return;
    note(Writer(drop_room_.get()).text(room).run(), "dropping room " + std::string(room));
    note(Writer(drop_changes_.get()).text(room).run(), "dropping room " + std::string(room));
    note(Writer(drop_seats_.get()).text(room).run(), "dropping room " + std::string(room));
  }

  void seat(const engine::StoredSeat& s) override {
    if (!begin()) return;
    note(Writer(put_seat_.get()).text(s.room).integer(s.client).text(s.session).text(s.user_id).run(),
         "writing a seat in room " + s.room);
  }

  void unseat(std::string_view room, std::uint64_t client) override {
    if (!begin()) return;
    note(Writer(drop_seat_.get()).text(room).integer(client).run(), "dropping a seat in room " + std::string(room));
  }

  bool pending() const override { return in_txn_; }

  Status commit() override {
    if (!in_txn_) return first_error();
    in_txn_ = false;
    if (!error_.empty()) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return first_error();
    }
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      Status s = failed("committing");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      wake = ++commits_ == kCommitsPerWake;
    }
    if (wake) wake_.notify_one();
    return {};
  }

  std::string where() const override { return path_; }

  std::uint64_t bytes() const override {
    std::error_code ec;
    std::uint64_t n = 0;
    for (const char* suffix : {"", "-wal"}) {
      const auto size = std::filesystem::file_size(path_ + suffix, ec);
      if (!ec) n += size;
    }
    return n;
  }

 private:
  bool begin() {
    if (in_txn_) return true;
    error_.clear();
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      error_ = "beginning a transaction: " + std::string(sqlite3_errmsg(db_));
      return false;
    }
    in_txn_ = true;
    return true;
  }
  void note(int rc, const std::string& what) {
    if (rc != SQLITE_OK && error_.empty()) error_ = what + ": " + sqlite3_errmsg(db_);
  }
  Status first_error() {
    if (error_.empty()) return {};
    Status s = make_error(ErrorCode::internal, path_ + ": " + error_);
    error_.clear();
    return s;
  }
  Error failed(const std::string& what) const {
    return make_error(ErrorCode::internal, path_ + ": " + what + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  std::string path_;
  bool in_txn_ = false;
  std::string error_;  // the first failed write of the open transaction
  Statement put_room_, drop_changes_, put_change_, drop_room_, drop_seats_, put_seat_, drop_seat_;

  static constexpr std::uint64_t kCommitsPerWake = 200;  // or every 500 ms
  static constexpr int kMaxLogPages = 16384;             // 64 MiB of 4 KiB pages
  sqlite3* checkpoint_db_ = nullptr;
  std::thread checkpointer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::uint64_t commits_ = 0;       // since the checkpointer last woke
  bool stopping_ = false;
};

Status exec(sqlite3* db, const std::string& path, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) == SQLITE_OK) return {};
  std::string text = msg ? msg : sqlite3_errmsg(db);
  sqlite3_free(msg);
  return make_error(ErrorCode::internal, path + ": " + text);
}

// "ok", or what quick_check found first.
Status check(sqlite3* db, const std::string& path) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &s, nullptr) != SQLITE_OK)
    return make_error(ErrorCode::internal, path + ": not a database, or damaged: " + sqlite3_errmsg(db));
  std::string result = sqlite3_step(s) == SQLITE_ROW ? column_text(s, 0) : sqlite3_errmsg(db);
  sqlite3_finalize(s);
  if (result == "ok") return {};
  return make_error(ErrorCode::internal, path + ": damaged (" + result + ")");
}

}  // namespace

Result<std::shared_ptr<engine::RoomStore>> open_sqlite_store(const std::string& dir, Durability durability,
                                                             bool create) {
  namespace fs = std::filesystem;
  const std::string path = (fs::path(dir) / "atrium.db").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (!create) return std::shared_ptr<engine::RoomStore>();
    fs::create_directories(dir, ec);
    if (ec) return make_error(ErrorCode::internal, dir + ": cannot create the data directory: " + ec.message());
  }
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return make_error(ErrorCode::internal, path + ": cannot open: " + why);
  }
  auto store = std::make_shared<SqliteStore>(db, path);
  sqlite3_extended_result_codes(db, 1);
  Status s = exec(db, path, "PRAGMA journal_mode=WAL");
  if (s) s = exec(db, path, durability == Durability::power ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  // Checkpoints are the checkpointer's (SqliteStore::start_checkpoints), not the commits';
  // a log file grown past 64 MiB is trimmed back once it starts again.
  if (s) s = exec(db, path, "PRAGMA wal_autocheckpoint=0");
  if (s) s = exec(db, path, "PRAGMA journal_size_limit=67108864");
  if (s) sqlite3_busy_timeout(db, 5000);
  if (s) s = check(db, path);
  if (s) s = exec(db, path, kSchema);
  if (s) s = exec(db, path, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
  if (s) s = store->prepare();
  if (s) s = store->start_checkpoints();
  if (!s) return s.error();
  return std::shared_ptr<engine::RoomStore>(std::move(store));
}

}  // namespace atrium::store
