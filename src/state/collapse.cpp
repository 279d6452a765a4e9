// How collapse_repeated_ops() finds a run (collapse.hpp says what it does): for every path,
// the index of the op that stands for its open run; an op on the same path extends the run
// unless, since the run's op, some op landed on one of the path's ancestors (it replaced
// or moved what the path means) or under the path (the run's value was changed in place,
// which the last op's value already includes, but the op under it must keep its place
// after the run's op). Both are tracked per prefix: the last op exactly at it, the last op
// strictly under it.
#include "state/collapse.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>

namespace atrium::state {

namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// Whether any token of a path can be an array index (all digits, or "-"): such a path is
// never collapsed. An item's index moves when an item before it comes or goes, which no op
// on the path's own ancestors shows (`add /list/0` moves /list/1/name to /list/2/name).
bool may_index_array(std::string_view path) {
  if (path.empty()) return true;   // the root: never collapsed
  for (std::size_t start = 1; start <= path.size();) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view token = path.substr(start, end - start);
    bool digits = !token.empty();
    for (char c : token) digits = digits && c >= '0' && c <= '9';
    if (digits || token == "-") return true;
    start = end + 1;
  }
  return false;
}

// Calls fn(prefix) for every proper prefix of path: "/a/b/c" -> "", "/a", "/a/b".
template <class Fn>
void for_each_ancestor(std::string_view path, Fn&& fn) {
  fn(std::string_view());
  for (std::size_t at = path.find('/', 1); at != std::string_view::npos; at = path.find('/', at + 1))
    fn(path.substr(0, at));
}

struct Run {
  std::size_t op;          // the op standing for the run (its latest)
  OpKind first;            // the kind of the run's first op: was the member there before?
};

}  // namespace

void collapse_repeated_ops(std::vector<Op>& ops) {
  if (ops.size() < 2) return;
  // Most intervals repeat no path: nothing to do, and a sort of their paths is all it
  // costs to know (into a vector kept per thread: a room flushes 20 times a second).
  {
    thread_local std::vector<std::string_view> paths;
    paths.clear();
    for (const Op& op : ops) paths.push_back(op.path);
    std::sort(paths.begin(), paths.end());
    const bool repeated = std::adjacent_find(paths.begin(), paths.end()) != paths.end();
    if (paths.capacity() > 4096) std::vector<std::string_view>().swap(paths);
    if (!repeated) return;
  }
  std::unordered_map<std::string_view, Run> open;
  std::unordered_map<std::string_view, std::size_t> last_at;      // the last op exactly here
  std::unordered_map<std::string_view, std::size_t> last_under;   // the last op strictly under
  std::vector<bool> dropped(ops.size(), false);
  auto latest = [](const std::unordered_map<std::string_view, std::size_t>& m, std::string_view key) {
    auto it = m.find(key);
    return it == m.end() ? kNone : it->second;
  };
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const std::string_view path = ops[k].path;
    const bool collapsible = !may_index_array(path);
    if (collapsible) {
      auto run = open.find(path);
      if (run != open.end()) {
        const std::size_t i = run->second.op;
        bool broken = latest(last_under, path) != kNone && latest(last_under, path) > i;
        for_each_ancestor(path, [&](std::string_view a) {
          const std::size_t at = latest(last_at, a);
          if (at != kNone && at > i) broken = true;
        });
        if (!broken) {
          dropped[i] = true;
          const OpKind first = run->second.first;
          if (ops[k].kind == OpKind::remove) {
            if (first == OpKind::add) {   // absent before, absent after: nothing at all
              dropped[k] = true;
              open.erase(run);
            } else {
              run->second.op = k;
            }
          } else {
            ops[k].kind = first == OpKind::add ? OpKind::add : OpKind::replace;
            run->second.op = k;
          }
        } else {
          run->second = Run{k, ops[k].kind};
        }
      } else {
        open.emplace(path, Run{k, ops[k].kind});
      }
    }
    last_at[path] = k;
    for_each_ancestor(path, [&](std::string_view a) { last_under[a] = k; });
  }
  std::size_t out = 0;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    if (dropped[k]) continue;
    if (out != k) ops[out] = std::move(ops[k]);
    ++out;
  }
  ops.resize(out);
}

}  // namespace atrium::state
