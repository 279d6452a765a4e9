// libFuzzer target: diff then apply (src/state/). The input is two JSON documents, one
// per line: A (the mirror) before the first '\n', B after it. A document that is not an
// object stands as {"v": doc} (state is an object), so it may then be 63 levels deep.
// B is pushed into a lua_State as the engine pushes state (script::Vm, arrays with the
// marker, null members as atrium.null), then state::diff(B's table, A) must give ops that
// take A to B; diff_keys over every top-level key and diff_paths over the whole state must
// do the same, and the ops must write out as a JSON array of RFC 6902 objects.
#include <lua.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "fuzz_vm.hpp"
#include "json/codec.hpp"
#include "script/lua_json.hpp"
#include "script/vm.hpp"
#include "state/diff.hpp"
#include "state/op.hpp"

using namespace atrium;

namespace {

script::Vm& vm() { return fuzz::shared_vm("fuzz_diff"); }

bool as_state(std::string_view text, json::Value& out) {
  Result<json::Value> parsed = json::parse(text);
  if (!parsed) return false;
  if (parsed->is_object()) {
    out = std::move(parsed).value();
    return true;
  }
  // Wrapped, it is one level deeper: it must still fit the State rules' depth.
  if (!json::parse(text, json::ParseOptions{json::kMaxDepth - 1})) return false;
  out = json::Value::object();
  out.set("v", std::move(parsed).value());
  return true;
}

// Applies `ops` to a copy of `a` and checks it is `b`, and that the ops write as JSON.
void check_ops(const char* how, const std::vector<state::Op>& ops, const json::Value& a,
               const json::Value& b, std::string_view input) {
  std::string text = "[";
  state::write_ops(ops, text);
  text += "]";
  // An op around a value as deep as the state is can nest two levels deeper than it.
  Result<json::Value> written = json::parse(text, json::ParseOptions{json::kMaxDepth + 2});
  FUZZ_CHECK(written.ok() && written->is_array() && written->size() == ops.size(),
             "%s: ops do not write as a JSON array: %s", how, fuzz::head(text).c_str());
  json::Value doc = a;
  Status applied = state::apply_patch(doc, ops);
  FUZZ_CHECK(applied.ok(), "%s: apply_patch refused the diff's ops: %s\n  ops: %s\n  input: %s", how,
             applied.error().message.c_str(), fuzz::head(text).c_str(), fuzz::head(input).c_str());
  FUZZ_CHECK(doc == b, "%s: apply(diff(a, b), a) != b\n  ops: %s\n  got: %s\n  input: %s", how,
             fuzz::head(text).c_str(), fuzz::head(json::to_json(doc)).c_str(),
             fuzz::head(input).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_text(data, size);
  const std::size_t nl = input.find('\n');
  if (nl == std::string_view::npos) return 0;
  json::Value a, b;
  if (!as_state(input.substr(0, nl), a) || !as_state(input.substr(nl + 1), b)) return 0;

  script::Vm& v = vm();
  lua_State* L = v.L();
  script::push_value(L, b, true);  // unprotected: the heap is far from its cap here
  const int top = lua_gettop(L);

  // The table must read back as B, or the diff below has nothing to agree with.
  Result<json::Value> back = script::to_value(L, top, "state");
  FUZZ_CHECK(back.ok() && back.value() == b, "B does not survive push_value/to_value: %s",
             fuzz::head(input).c_str());

  std::vector<state::Op> ops;
  Status diffed = state::diff(L, top, a, ops);
  FUZZ_CHECK(diffed.ok(), "diff failed: %s\n  input: %s", diffed.error().message.c_str(),
             fuzz::head(input).c_str());
  check_ops("diff", ops, a, b, input);

  std::vector<std::string> keys;
  for (const auto& [k, _] : a.members()) keys.push_back(k);
  for (const auto& [k, _] : b.members())
    if (!a.find(k)) keys.push_back(k);
  ops.clear();
  diffed = state::diff_keys(L, top, a, keys, ops);
  FUZZ_CHECK(diffed.ok(), "diff_keys failed: %s", diffed.error().message.c_str());
  check_ops("diff_keys", ops, a, b, input);

  ops.clear();
  diffed = state::diff_paths(L, top, a, {state::Path{}}, ops);
  FUZZ_CHECK(diffed.ok(), "diff_paths failed: %s", diffed.error().message.c_str());
  check_ops("diff_paths", ops, a, b, input);

  lua_settop(L, 0);
  if (v.wants_collection()) v.collect();
  return 0;
}
