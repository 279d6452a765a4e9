// How write_compact_ops() decides (compact.hpp says what it does):
//
// 1. Each op is encoded alone, so its size is known. Its path is walked into a tree of
//    path prefixes; every node adds up the ops at and under it and their bytes.
// 2. From the top down, a node with enough ops under it is a candidate: an object member
//    that exists in `now`, with no op on any of its ancestors (such an op would reorder
//    what the member means). Its value is encoded with a byte limit, the ops' own size:
//    past it the candidate loses, so a large value behind a few ops costs little to reject.
//    A winner's subtree is not visited further; a loser's children are tried in turn.
// 3. The output is the ops in order, with each winner's group replaced by its one op at
//    the place of the group's first op. Ops of other groups never touch a winner's member
//    (they are not under it and not on its ancestors), so their order with it is free.
//
// The op is `replace`, or `add` when the group's first op added the member (it may not
// have existed before the interval; `add` on an object member sets it either way).
#include "state/compact.hpp"

#include <cstddef>
#include <string_view>
#include <unordered_map>

#include "json/codec.hpp"
#include "state/json_pointer.hpp"

namespace atrium::state {

namespace {

// Below this many ops under one member, a patch is written as it is: the search would
// cost more than it saves.
constexpr std::size_t kMinGroupOps = 16;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

struct Node {
  std::size_t parent = kNone;
  std::string_view prefix;        // the escaped pointer of this node ("/players/c12")
  std::string_view token;         // its last token, escaped
  std::vector<std::size_t> children;
  std::size_t ops_here = 0;       // ops whose path is exactly this node
  std::size_t ops_under = 0;      // ops at or under it
  std::size_t bytes_under = 0;    // their encoded size, commas included
  std::size_t first_op = kNone;   // the first op at or under it
  bool first_adds_here = false;   // that op is an `add` of this very node
  bool chosen = false;
};

// Writes v, giving up (false) once `out` would pass `limit` bytes.
bool write_within(const json::Value& v, std::string& out, std::size_t limit) {
  if (v.is_object()) {
    out.push_back('{');
    bool first = true;
    for (const auto& [key, member] : v.members()) {
      if (!first) out.push_back(',');
      first = false;
      json::write_string(key, out);
      out.push_back(':');
      if (out.size() > limit || !write_within(member, out, limit)) return false;
    }
    out.push_back('}');
  } else if (v.is_array()) {
    out.push_back('[');
    bool first = true;
    for (const json::Value& item : v.items()) {
      if (!first) out.push_back(',');
      first = false;
      if (out.size() > limit || !write_within(item, out, limit)) return false;
    }
    out.push_back(']');
  } else {
    json::write(v, out);
  }
  return out.size() <= limit;
}

class Compactor {
 public:
  Compactor(const std::vector<Op>& ops, const json::Value& now) : ops_(ops), now_(now) {}

  void write(std::string& out) {
    encode_each();
    build_tree();
    if (nodes_[0].ops_here == 0) choose(0, &now_);  // an op on the root: nothing to merge
    emit(out);
  }

 private:
  void encode_each() {
    encoded_.reserve(ops_.size() * 64);
    offsets_.reserve(ops_.size() + 1);
    for (const Op& op : ops_) {
      offsets_.push_back(encoded_.size());
      write_op(op, encoded_);
    }
    offsets_.push_back(encoded_.size());
  }

  std::size_t op_bytes(std::size_t i) const { return offsets_[i + 1] - offsets_[i] + 1; }

  std::size_t child(std::size_t parent, std::string_view prefix, std::string_view token) {
    auto [it, fresh] = index_.try_emplace(prefix, nodes_.size());
    if (fresh) {
      Node n;
      n.parent = parent;
      n.prefix = prefix;
      n.token = token;
      nodes_.push_back(n);
      nodes_[parent].children.push_back(it->second);
    }
    return it->second;
  }

  void count(std::size_t node, std::size_t op) {
    Node& n = nodes_[node];
    ++n.ops_under;
    n.bytes_under += op_bytes(op);
    if (n.first_op == kNone) n.first_op = op;
  }

  void build_tree() {
    nodes_.emplace_back();  // the root: path ""
    op_node_.reserve(ops_.size());
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const std::string_view path = ops_[i].path;
      std::size_t node = 0;
      count(0, i);
      for (std::size_t start = 0; start < path.size();) {
        std::size_t end = path.find('/', start + 1);
        if (end == std::string_view::npos) end = path.size();
        node = child(node, path.substr(0, end), path.substr(start + 1, end - start - 1));
        count(node, i);
        start = end;
      }
      Node& target = nodes_[node];
      ++target.ops_here;
      if (target.first_op == i && ops_[i].kind == OpKind::add) target.first_adds_here = true;
      op_node_.push_back(node);
    }
  }

  // Tries node's children (node is an object in `now`, value `v`, no op on it or above).
  void choose(std::size_t node, const json::Value* v) {
    for (std::size_t c : nodes_[node].children) {
      Node& n = nodes_[c];
      if (n.ops_under < kMinGroupOps) continue;
      std::string key;
      if (!unescape_token(n.token, key)) continue;  // not a pointer the engine writes
      const json::Value* member = v->find(key);
      if (!member) continue;                   // removed by the end: its ops stay as they are
      if (try_merge(c, *member)) continue;
      if (n.ops_here == 0 && member->is_object()) choose(c, member);
    }
  }

  bool try_merge(std::size_t node, const json::Value& value) {
    Node& n = nodes_[node];
    std::string& text = merged_[node];
    text.append("{\"op\":");
    text.append(n.first_adds_here ? "\"add\"" : "\"replace\"");
    text.append(",\"path\":");
    json::write_string(n.prefix, text);  // the pointer, escaped, as write_op writes paths
    text.append(",\"value\":");
    if (!write_within(value, text, n.bytes_under) || text.size() + 1 >= n.bytes_under) {
      merged_.erase(node);
      return false;
    }
    text.push_back('}');
    n.chosen = true;
    return true;
  }

  // The node whose group op i belongs to, or kNone.
  std::size_t group_of(std::size_t op) const {
    for (std::size_t node = op_node_[op]; node != 0 && node != kNone; node = nodes_[node].parent)
      if (nodes_[node].chosen) return node;
    return kNone;
  }

  void emit(std::string& out) {
    bool first = true;
    auto sep = [&] {
      if (!first) out.push_back(',');
      first = false;
    };
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const std::size_t group = merged_.empty() ? kNone : group_of(i);
      if (group == kNone) {
        sep();
        out.append(encoded_, offsets_[i], offsets_[i + 1] - offsets_[i]);
      } else if (nodes_[group].first_op == i) {
        sep();
        out.append(merged_[group]);
      }
    }
  }

  const std::vector<Op>& ops_;
  const json::Value& now_;
  std::string encoded_;                    // every op, back to back
  std::vector<std::size_t> offsets_;       // op i is encoded_[offsets_[i], offsets_[i+1])
  std::vector<Node> nodes_;
  std::unordered_map<std::string_view, std::size_t> index_;  // prefix -> node
  std::vector<std::size_t> op_node_;       // the node of each op's own path
  std::unordered_map<std::size_t, std::string> merged_;      // chosen node -> its one op
};

}  // namespace

void write_compact_ops(const std::vector<Op>& ops, const json::Value& now, std::string& out) {
  if (ops.size() < kMinGroupOps || !now.is_object()) {
    write_ops(ops, out);
    return;
  }
  Compactor(ops, now).write(out);
}

}  // namespace atrium::state
