// libFuzzer target: JSON -> Lua -> JSON (script/lua_json.hpp). Any document json::parse
// accepts is pushed into a lua_State made as the engine makes it (a script::Vm) and read
// back with to_value: the result must equal the document. Null object members are kept
// as atrium.null (push_value's keep_null_members): without it they are left out, by design.
#include <lua.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "fuzz_common.hpp"
#include "fuzz_vm.hpp"
#include "json/codec.hpp"
#include "script/lua_json.hpp"
#include "script/vm.hpp"

using namespace atrium;

namespace {

script::Vm& vm() { return fuzz::shared_vm("fuzz_lua_json"); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  Result<json::Value> parsed = json::parse(text);
  if (!parsed) return 0;
  const json::Value& doc = parsed.value();
  script::Vm& v = vm();
  lua_State* L = v.L();

  for (const bool keep_null_members : {true, false}) {
    // Unprotected, as the engine's own pushes are: the heap is far from its cap here
    // (protected_call would give the push a stack of its own, gone when it returns).
    script::push_value(L, doc, keep_null_members);
    Result<json::Value> back = script::to_value(L, -1, "value");
    lua_settop(L, 0);
    FUZZ_CHECK(back.ok(), "to_value refused what push_value made: %s (input %s)",
               back.error().message.c_str(), fuzz::head(text).c_str());
    if (keep_null_members) {
      FUZZ_CHECK(back.value() == doc, "JSON -> Lua -> JSON changed %s into %s",
                 fuzz::head(text).c_str(), fuzz::head(json::to_json(back.value())).c_str());
    }
  }
  if (v.wants_collection()) v.collect();
  return 0;
}
