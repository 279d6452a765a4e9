#include "script/vm.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "script/hook_call.hpp"
#include "script/lua_json.hpp"

namespace atrium::script {

namespace {

// Opens only what room scripts may see, with the JIT engine off: room code runs in the
// interpreter, where count hooks fire (LuaJIT never runs hooks inside compiled traces:
// docs/rooms.md "The engine and LuaJIT"). io, os, debug, package, ffi and jit stay closed.
// The one code that runs compiled is the engine's shadow walk, which calls no room code
// (state/shadow.cpp set_up_jit).
void open_safe_libs(lua_State* L) {
  const struct { const char* name; lua_CFunction open; } libs[] = {
      {"", luaopen_base}, {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
      {LUA_MATHLIBNAME, luaopen_math}, {LUA_BITLIBNAME, luaopen_bit},
  };
  for (const auto& lib : libs) {
    lua_pushcfunction(L, lib.open);
    lua_pushstring(L, lib.name);
    lua_call(L, 1, 0);
  }
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
}

// The string metatable is shared by every string in the VM: hide it, so a script cannot
// reach it with getmetatable("") and change what other room types see.
void lock_string_metatable(lua_State* L) {
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "__metatable");
    lua_pushboolean(L, 0);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

// The array marker (lua_json.hpp) is one metatable for every room's arrays: a room that
// reached it could give it an __index or __newindex and change what other rooms' arrays do.
// Hidden like the string metatable: getmetatable(atrium.array()) is false, and an array's
// metatable cannot be replaced from Lua. The engine's own Lua asks core.is_array instead.
void lock_array_marker(lua_State* L) {
  script::push_array_marker(L);
  lua_pushliteral(L, "__metatable");
  lua_pushboolean(L, 0);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

}  // namespace

namespace {

// Each block starts with this header; 16 bytes keep malloc's alignment for the payload.
struct alignas(16) BlockHeader {
  std::uint32_t owner;
  std::uint32_t generation;
};
static_assert(sizeof(BlockHeader) == 16);

}  // namespace

Vm* Vm::of(lua_State* L) noexcept {
  void* ud = nullptr;
  return lua_getallocf(L, &ud) == &Vm::allocate ? static_cast<Vm*>(ud) : nullptr;
}

void* Vm::allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept {
  return static_cast<Vm*>(ud)->reallocate(ptr, osize, nsize);
}

void* Vm::reallocate(void* ptr, std::size_t osize, std::size_t nsize) noexcept {
  if (!ptr) osize = 0;
  BlockHeader* block = ptr ? static_cast<BlockHeader*>(ptr) - 1 : nullptr;
  // The block stays charged to whoever allocated it; a new block to the current owner.
  Owner owner = block ? block->owner : current_;
  std::uint32_t generation = block ? block->generation : slots_[owner].generation;
  Slot* slot = owner < slots_.size() && slots_[owner].generation == generation ? &slots_[owner] : nullptr;
  const bool charged = slot != nullptr;  // osize is counted in *slot

  if (nsize == 0) {
    std::free(block);
    used_ -= osize;
    if (charged) slot->bytes -= osize;
    return nullptr;
  }
  if (!slot) {  // a destroyed room's block that lives on: the engine's from now on
    owner = 0;
    generation = slots_[0].generation;
    slot = &slots_[0];
  }
  if (nsize > osize) {  // growth is checked; shrinking always succeeds so the GC can progress
    const std::size_t grow = nsize - osize;
    if (used_ + grow > cap_) return nullptr;
    if ((owner != 0 || current_ != 0) && used_ + grow > cap_ - reserve_) {  // the reserve
      vm_cap_hit_ = true;
      return nullptr;
    }
    if (owner != 0 && slot->bytes + grow > room_cap_) {
      owner_cap_hit_ = true;
      return nullptr;
    }
    // Someone else's block growing while a room's code runs (LuaJIT's string buffer):
    // it must fit in what that room has left.
    if (current_ != 0 && owner != current_ && slots_[current_].bytes + grow > room_cap_) {
      owner_cap_hit_ = true;
      return nullptr;
    }
  }
  void* p = std::realloc(block, sizeof(BlockHeader) + nsize);
  if (!p) return nullptr;
  BlockHeader* h = static_cast<BlockHeader*>(p);
  h->owner = owner;
  h->generation = generation;
  used_ = used_ - osize + nsize;
  slot->bytes = slot->bytes - (charged ? osize : 0) + nsize;
  return h + 1;
}

namespace {

// An error with no protected call to catch it. The engine runs every entry that touches
// Lua protected (engine.cpp guarded), so this is a bug; it is said before LuaJIT exits.
int on_panic(lua_State* L) {
  const char* msg = lua_tostring(L, -1);
  std::fprintf(stderr, "error script panic reason=\"%s\" (an engine bug: a Lua error outside any "
                       "protected call)\n", msg ? msg : "?");
  std::fflush(stderr);
  return 0;
}

std::size_t reserve_for(std::size_t cap) {
  return std::clamp<std::size_t>(cap / 8, 256u << 10, 8u << 20);
}

}  // namespace

Vm::Vm(std::size_t memory_cap, std::size_t room_cap)
    : cap_(memory_cap), room_cap_(room_cap), reserve_(reserve_for(memory_cap)) {
  slots_.push_back(Slot{0, 0, true});
  L_ = lua_newstate(&Vm::allocate, this);
  if (!L_) return;  // a non-GC64 LuaJIT on x64 refuses custom allocators: see ok()
  lua_atpanic(L_, on_panic);
  open_safe_libs(L_);
  lock_string_metatable(L_);
  init_lua_json(L_);
  prepare_hook_calls(L_);
  prepare_protected_calls(L_);
  lock_array_marker(L_);
}

Owner Vm::new_owner() {
  if (!free_slots_.empty()) {
    const Owner o = free_slots_.back();
    free_slots_.pop_back();
    slots_[o].live = true;
    slots_[o].bytes = 0;
    return o;
  }
  slots_.push_back(Slot{0, 0, true});
  return static_cast<Owner>(slots_.size() - 1);
}

void Vm::release_owner(Owner o) {
  if (o == 0 || o >= slots_.size() || !slots_[o].live) return;
  released_ += slots_[o].bytes;  // garbage once its references are dropped
  ++slots_[o].generation;  // later frees of its blocks no longer match this slot
  slots_[o].live = false;
  slots_[o].bytes = 0;
  free_slots_.push_back(o);
}

void Vm::collect() noexcept {
  lua_gc(L_, LUA_GCCOLLECT, 0);
  live_after_collect_ = used_;
  released_ = 0;
}

bool Vm::wants_collection() const noexcept {
  if (in_reserve()) return true;
  const std::size_t usable = cap_ - reserve_;
  if (used_ < usable / 2) return false;  // LuaJIT's own pacing collects before the cap
  const std::size_t grown = used_ > live_after_collect_ ? used_ - live_after_collect_ : 0;
  return grown + released_ >= usable / 8;
}

bool Vm::charge(Owner o, std::size_t bytes) noexcept {
  if (o == 0 || o >= slots_.size() || !slots_[o].live) return true;
  if (slots_[o].bytes + bytes > room_cap_) return false;
  slots_[o].bytes += bytes;
  return true;
}

void Vm::uncharge(Owner o, std::size_t bytes) noexcept {
  if (o == 0 || o >= slots_.size() || !slots_[o].live) return;
  slots_[o].bytes -= std::min(bytes, slots_[o].bytes);
}

std::size_t Vm::owner_bytes(Owner o) const noexcept {
  return o < slots_.size() ? slots_[o].bytes : 0;
}

Vm::~Vm() {
  if (L_) lua_close(L_);
}

namespace {

const char kProtectedKey = 0;  // registry key of the entry point: this byte's address

struct ProtectedBody {
  void (*fn)(void*);
  void* arg;
};

int run_protected_body(lua_State* L) {
  const auto* body = static_cast<const ProtectedBody*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  body->fn(body->arg);
  return 0;
}

}  // namespace

void prepare_protected_calls(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kProtectedKey));
  lua_pushcfunction(L, run_protected_body);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

Status protected_call_raw(lua_State* L, void (*fn)(void*), void* arg) noexcept {
  const int top = lua_gettop(L);
  ProtectedBody body{fn, arg};
  // Two pushes that allocate nothing (the stack keeps LUA_MINSTACK free slots).
  lua_pushlightuserdata(L, const_cast<char*>(&kProtectedKey));
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, &body);
  const int rc = lua_pcall(L, 1, 0, 0);
  if (rc == 0) return {};
  std::string msg = rc == LUA_ERRMEM ? "not enough memory" : lua_isstring(L, -1) ? lua_tostring(L, -1) : "a Lua error";
  lua_settop(L, top);
  return make_error(rc == LUA_ERRMEM ? ErrorCode::budget_exceeded : ErrorCode::internal, std::move(msg));
}

Status run_engine_file(lua_State* L, const std::string& path, int nargs) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    lua_pop(L, nargs);
    return make_error(ErrorCode::internal, "cannot read " + path);
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string src = text.str();
  // "=": named as is, and not a file of a room script ("@"), which is what the error
  // handler looks for to say where a room's error was raised (hook_call.cpp).
  const std::string chunk = "=" + path;
  if (luaL_loadbuffer(L, src.data(), src.size(), chunk.c_str()) != 0) {
    std::string msg = lua_tostring(L, -1);
    lua_pop(L, 1 + nargs);
    return make_error(ErrorCode::internal, msg);
  }
  lua_insert(L, -(nargs + 1));
  if (lua_pcall(L, nargs, 1, 0) != 0) {
    std::string msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "error in engine Lua";
    lua_pop(L, 1);
    return make_error(ErrorCode::internal, msg);
  }
  return {};
}

}  // namespace atrium::script
