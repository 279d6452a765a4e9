// The one Lua VM a target that converts through Lua keeps for its whole run (made once:
// a VM per input would be most of the time), with caps far above any input's size.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "script/vm.hpp"

namespace atrium::fuzz {

inline script::Vm& shared_vm(const char* target) {
  static script::Vm* v = [target] {
    auto* made = new script::Vm(256u << 20, 256u << 20);
    if (!made->ok()) {
      std::fprintf(stderr, "%s: no lua_State (LuaJIT refused the allocator)\n", target);
      std::abort();
    }
    return made;
  }();
  return *v;
}

}  // namespace atrium::fuzz
