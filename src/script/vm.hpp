// The engine's lua_State: capped allocator, the safe standard libraries, interpreter only.
// One per engine, driven by the engine's one thread.
//
// Memory attribution: every block the allocator hands out carries, in a 16-byte header,
// the owner that was current when it was allocated (a room, or 0 for the engine). A
// block's bytes count against its owner until it is freed, whoever frees it, so memory a
// room allocated and still retains is charged to that room, and the room that runs away
// is the one whose allocations fail. Owner slots are reused with a generation number, so
// a late free of a destroyed room's garbage never credits the room now in its slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/result.hpp"

struct lua_State;

namespace atrium::script {

using Owner = std::uint32_t;  // 0: the engine itself

class Vm {
 public:
  // memory_cap: the whole Lua heap; room_cap: what one owner may hold.
  Vm(std::size_t memory_cap, std::size_t room_cap);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  lua_State* L() const noexcept { return L_; }
  std::size_t bytes_in_use() const noexcept { return used_; }
  std::size_t memory_cap() const noexcept { return cap_; }

  Owner new_owner();
  void release_owner(Owner o);            // its later frees are charged to nobody
  Owner owner() const noexcept { return current_; }
  Owner set_owner(Owner o) noexcept {     // returns the previous owner
    const Owner prev = current_;
    current_ = o;
    return prev;
  }
  std::size_t owner_bytes(Owner o) const noexcept;
  // True when the last failed allocation hit the current owner's cap (not the VM's).
  bool owner_cap_hit() const noexcept { return owner_cap_hit_; }
  void clear_cap_hit() noexcept { owner_cap_hit_ = false; }

 private:
  struct Slot {
    std::uint32_t generation = 0;
    std::size_t bytes = 0;
    bool live = false;
  };
  static void* allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept;
  void* reallocate(void* ptr, std::size_t osize, std::size_t nsize) noexcept;

  lua_State* L_ = nullptr;
  std::size_t used_ = 0;
  std::size_t cap_;
  std::size_t room_cap_;
  Owner current_ = 0;
  bool owner_cap_hit_ = false;
  std::vector<Slot> slots_;               // slots_[0] is the engine
  std::vector<Owner> free_slots_;
};

// Runs the Lua file `path` (trusted engine code: lua/atrium/*.lua) with the given number
// of arguments already on the stack and leaves its first result.  [-nargs, +1, -]
Status run_engine_file(lua_State* L, const std::string& path, int nargs);

}  // namespace atrium::script
