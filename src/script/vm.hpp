// The engine's lua_State: capped allocator, the safe standard libraries, interpreter only.
// One per engine, driven by the engine's one thread.
//
// Memory attribution: every block the allocator hands out carries, in a 16-byte header,
// the owner that was current when it was allocated (a room, or 0 for the engine). A
// block's bytes count against its owner until it is freed, whoever frees it, so memory a
// room allocated and still retains is charged to that room, and the room that runs away
// is the one whose allocations fail. Owner slots are reused with a generation number, so
// a late free of a destroyed room's garbage never credits the room now in its slot.
//
// The reserve: rooms may fill the heap only up to memory_cap less a reserve; the rest is
// the engine's (owner 0), so that whatever the rooms did, the engine can still build a
// ctx, answer the request and roll a transaction back. LuaJIT has no emergency
// collection: when the engine dips into the reserve, in_reserve() says so and the engine
// collects at the end of the operation.
//
// A block that grows while a room's code runs counts against that room's budget too,
// whoever owns it: LuaJIT's shared string buffer (string.rep, table.concat, format) is
// the engine's block, and grew to hundreds of MiB under a 16 MiB room cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "util/result.hpp"

struct lua_State;

#include "script/hook_call.hpp"

namespace atrium::script {

using Owner = std::uint32_t;  // 0: the engine itself

class Vm {
 public:
  // memory_cap: the whole Lua heap; room_cap: what one owner may hold. Check ok():
  // a LuaJIT that refuses custom allocators (non-GC64 on x64) gives no state.
  Vm(std::size_t memory_cap, std::size_t room_cap);
  // The Vm whose state L is, or nullptr for a state made some other way.
  static Vm* of(lua_State* L) noexcept;
  HookContext& hook_context() noexcept { return hook_context_; }
  bool ok() const noexcept { return L_ != nullptr; }
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
  // True when the last failed allocation hit the current owner's cap / the rooms' part
  // of the VM (memory_cap less the reserve).
  bool owner_cap_hit() const noexcept { return owner_cap_hit_; }
  bool vm_cap_hit() const noexcept { return vm_cap_hit_; }
  void clear_cap_hit() noexcept { owner_cap_hit_ = vm_cap_hit_ = false; }
  std::size_t reserve() const noexcept { return reserve_; }
  bool in_reserve() const noexcept { return used_ + reserve_ > cap_; }
  // A full collection, and what was live after it: the engine's one way to collect.
  void collect() noexcept;
  // Whether a full collection is due before the next operation. LuaJIT starts a cycle
  // only when the heap reaches twice what was live after the last one (its pause of
  // 200%): with 16 MiB live under a 24 MiB cap that is never, and the garbage of rooms
  // destroyed since would sit until an allocation failed. So the engine collects when the
  // heap is past half of what rooms may use and the garbage that may be in it (growth
  // since the last collection, plus what released owners held) is an eighth of that:
  // a collection costs one walk of the heap per eighth of it allocated or released.
  bool wants_collection() const noexcept;
  // Engine costs that are not Lua memory but grow with what a room does (its timers'
  // entries): counted against the owner's cap. False (nothing charged) when over it.
  bool charge(Owner o, std::size_t bytes) noexcept;
  void uncharge(Owner o, std::size_t bytes) noexcept;

 private:
  struct Slot {
    std::uint32_t generation = 0;
    std::size_t bytes = 0;
    bool live = false;
  };
  static void* allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept;
  void* reallocate(void* ptr, std::size_t osize, std::size_t nsize) noexcept;

  lua_State* L_ = nullptr;
  HookContext hook_context_;         // call_hook's, for this state (script/hook_call.hpp)
  std::size_t used_ = 0;
  std::size_t live_after_collect_ = 0;    // used_ after the last collect()
  std::size_t released_ = 0;              // what released owners held, since then
  std::size_t cap_;
  std::size_t room_cap_;
  std::size_t reserve_;
  Owner current_ = 0;
  bool owner_cap_hit_ = false;
  bool vm_cap_hit_ = false;
  std::vector<Slot> slots_;               // slots_[0] is the engine
  std::vector<Owner> free_slots_;
};

// Makes `owner` the current owner while it lives: whatever happens in between (a Lua
// error unwinding through), the previous owner is current again after.
class OwnerScope {
 public:
  OwnerScope(Vm& vm, Owner owner) noexcept : vm_(vm), prev_(vm.set_owner(owner)) {}
  ~OwnerScope() { vm_.set_owner(prev_); }
  OwnerScope(const OwnerScope&) = delete;
  OwnerScope& operator=(const OwnerScope&) = delete;

 private:
  Vm& vm_;
  Owner prev_;
};

// Runs body(arg) protected: a Lua error that engine code raises while it runs (out of
// memory in a push, say) ends it there and comes back as an error Status, instead of
// unwinding whatever called this. The body gets a stack of its own, and the caller's is
// as it was afterwards. For the engine's own Lua touches only: room code goes through
// call_hook. Needs prepare_protected_calls (the Vm does it).
Status protected_call_raw(lua_State* L, void (*body)(void*), void* arg) noexcept;
template <class F>
Status protected_call(lua_State* L, F&& body) noexcept {
  return protected_call_raw(L, [](void* f) { (*static_cast<std::remove_reference_t<F>*>(f))(); }, &body);
}
// Makes protected_call's entry point once per VM, so a call allocates nothing outside
// its protection.  [-0, +0, m]
void prepare_protected_calls(lua_State* L);

// Runs the Lua file `path` (trusted engine code: lua/atrium/*.lua) with the given number
// of arguments already on the stack and leaves its first result.  [-nargs, +1, -]
Status run_engine_file(lua_State* L, const std::string& path, int nargs);

}  // namespace atrium::script
