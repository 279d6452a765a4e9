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

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string_view>

#include "json/codec.hpp"
#include "state/json_pointer.hpp"

namespace atrium::state {

namespace {

// Below this many ops under one member, a patch is written as it is: the search would
// cost more than it saves.
constexpr std::size_t kMinGroupOps = 16;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// A patch beat's tree is rebuilt at every flush (20 a second per room), so nothing in it
// allocates per node: children are a linked list of indices, the prefix index is open
// addressing over node numbers, and a chosen node's op is a range of one shared string.
struct Node {
  std::size_t parent = kNone;
  std::string_view prefix;        // the escaped pointer of this node ("/players/c12")
  std::string_view token;         // its last token, escaped
  std::size_t first_child = kNone, last_child = kNone, next_sibling = kNone;
  std::size_t ops_here = 0;       // ops whose path is exactly this node
  std::size_t ops_under = 0;      // ops at or under it
  std::size_t bytes_under = 0;    // their encoded size, commas included
  std::size_t first_op = kNone;   // the first op at or under it
  bool first_adds_here = false;   // that op is an `add` of this very node
  bool chosen = false;
  std::size_t merged_begin = 0, merged_end = 0;  // chosen: its one op, in Scratch::merged
};

// What a Compactor builds, kept per thread between flushes for its memory; a patch far
// larger than usual gives it back afterwards (Scratch::trim).
struct Scratch {
  std::string encoded;                     // every op, back to back
  std::vector<std::size_t> offsets;        // op i is encoded[offsets[i], offsets[i+1])
  std::vector<Node> nodes;
  std::vector<std::size_t> slots;          // prefix -> node + 1 (0: empty), open addressing
  std::vector<std::size_t> op_node;        // the node of each op's own path
  std::string merged;                      // the chosen nodes' ops
  std::string candidate;                   // the op try_merge is writing, less its value
  std::vector<char> value;                 // and its value: try_merge's room, kept
  std::string key;
  bool busy = false;

  void clear() {
    encoded.clear();
    offsets.clear();
    nodes.clear();
    op_node.clear();
    merged.clear();
  }
  void trim() {
    constexpr std::size_t kKeptBytes = 256 * 1024;
    constexpr std::size_t kKeptNodes = 4096;
    const std::size_t bytes =
        encoded.capacity() + merged.capacity() + candidate.capacity() + value.capacity();
    if (bytes > kKeptBytes || nodes.capacity() > kKeptNodes) *this = Scratch();
  }
};

class Compactor {
 public:
  Compactor(const std::vector<Op>& ops, const json::Value& now, Scratch& scratch)
      : ops_(ops), now_(now), s_(scratch) {}

  void write(std::string& out) {
    encode_each();
    build_tree();
    if (s_.nodes[0].ops_here == 0) choose(0, &now_);  // an op on the root: nothing to merge
    emit(out);
  }

 private:
  void encode_each() {
    s_.encoded.reserve(ops_.size() * 64);
    s_.offsets.reserve(ops_.size() + 1);
    for (const Op& op : ops_) {
      s_.offsets.push_back(s_.encoded.size());
      write_op(op, s_.encoded);
    }
    s_.offsets.push_back(s_.encoded.size());
  }

  std::size_t op_bytes(std::size_t i) const { return s_.offsets[i + 1] - s_.offsets[i] + 1; }

  // The index has room for every node the ops can make (one per path token, and the
  // root) at a load of at most a half, so it is sized once per patch and never grows.
  void size_index() {
    std::size_t tokens = 1;
    for (const Op& op : ops_)
      tokens += static_cast<std::size_t>(std::count(op.path.begin(), op.path.end(), '/'));
    std::size_t cap = 64;
    while (cap < tokens * 2) cap *= 2;
    s_.slots.assign(cap, 0);
  }

  std::size_t child(std::size_t parent, std::string_view prefix, std::string_view token) {
    const std::size_t mask = s_.slots.size() - 1;
    std::size_t i = std::hash<std::string_view>{}(prefix) & mask;
    for (; s_.slots[i] != 0; i = (i + 1) & mask)
      if (s_.nodes[s_.slots[i] - 1].prefix == prefix) return s_.slots[i] - 1;
    const std::size_t made = s_.nodes.size();
    s_.slots[i] = made + 1;
    Node n;
    n.parent = parent;
    n.prefix = prefix;
    n.token = token;
    s_.nodes.push_back(n);
    Node& p = s_.nodes[parent];
    if (p.last_child == kNone) {
      p.first_child = made;
    } else {
      s_.nodes[p.last_child].next_sibling = made;
    }
    p.last_child = made;
    return made;
  }

  void count(std::size_t node, std::size_t op) {
    Node& n = s_.nodes[node];
    ++n.ops_under;
    n.bytes_under += op_bytes(op);
    if (n.first_op == kNone) n.first_op = op;
  }

  void build_tree() {
    size_index();
    s_.nodes.emplace_back();  // the root: path ""
    s_.op_node.reserve(ops_.size());
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
      Node& target = s_.nodes[node];
      ++target.ops_here;
      if (target.first_op == i && ops_[i].kind == OpKind::add) target.first_adds_here = true;
      s_.op_node.push_back(node);
    }
  }

  // Tries node's children (node is an object in `now`, value `v`, no op on it or above).
  void choose(std::size_t node, const json::Value* v) {
    for (std::size_t c = s_.nodes[node].first_child; c != kNone; c = s_.nodes[c].next_sibling) {
      if (s_.nodes[c].ops_under < kMinGroupOps) continue;
      s_.key.clear();
      if (!unescape_token(s_.nodes[c].token, s_.key)) continue;  // not a pointer we write
      const json::Value* member = v->find(s_.key);
      if (!member) continue;                   // removed by the end: its ops stay as they are
      if (try_merge(c, *member)) continue;
      if (s_.nodes[c].ops_here == 0 && member->is_object()) choose(c, member);
    }
  }

  bool try_merge(std::size_t node, const json::Value& value) {
    Node& n = s_.nodes[node];
    std::string& text = s_.candidate;
    text.clear();
    text.append("{\"op\":");
    text.append(n.first_adds_here ? "\"add\"" : "\"replace\"");
    text.append(",\"path\":");
    json::write_string(n.prefix, text);  // the pointer, escaped, as write_op writes paths
    text.append(",\"value\":");
    // The op wins when it is shorter than its group's ops: text, value and '}' under
    // bytes_under less one. The value is written into a buffer with that much room at most
    // (and less at first: a large group under a small value would clear megabytes for it),
    // so a value past it costs only the bytes up to the limit.
    if (text.size() + 2 > n.bytes_under) return false;
    const std::size_t most = n.bytes_under - text.size() - 2;   // the longest value that wins
    if (most == 0) return false;
    constexpr std::size_t kFirstRoom = 4096;
    std::size_t room = std::min(most, kFirstRoom);
    char* end = nullptr;
    for (;;) {
      if (s_.value.size() < room) s_.value.resize(room);
      end = json::write_into(value, s_.value.data(), s_.value.data() + room);
      if (end) break;
      if (room == most) return false;
      room = room > most / 8 ? most : room * 8;
    }
    n.chosen = true;
    n.merged_begin = s_.merged.size();
    s_.merged.append(text);
    s_.merged.append(s_.value.data(), static_cast<std::size_t>(end - s_.value.data()));
    s_.merged.push_back('}');
    n.merged_end = s_.merged.size();
    any_chosen_ = true;
    return true;
  }

  // The node whose group op i belongs to, or kNone.
  std::size_t group_of(std::size_t op) const {
    for (std::size_t node = s_.op_node[op]; node != 0 && node != kNone;
         node = s_.nodes[node].parent) {
      if (s_.nodes[node].chosen) return node;
    }
    return kNone;
  }

  void emit(std::string& out) {
    bool first = true;
    auto sep = [&] {
      if (!first) out.push_back(',');
      first = false;
    };
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const std::size_t group = any_chosen_ ? group_of(i) : kNone;
      if (group == kNone) {
        sep();
        out.append(s_.encoded, s_.offsets[i], s_.offsets[i + 1] - s_.offsets[i]);
      } else if (s_.nodes[group].first_op == i) {
        sep();
        const Node& n = s_.nodes[group];
        out.append(s_.merged, n.merged_begin, n.merged_end - n.merged_begin);
      }
    }
  }

  const std::vector<Op>& ops_;
  const json::Value& now_;
  Scratch& s_;
  bool any_chosen_ = false;
};

}  // namespace

void write_compact_ops(const std::vector<Op>& ops, const json::Value& now, std::string& out) {
  if (ops.size() < kMinGroupOps || !now.is_object()) {
    write_ops(ops, out);
    return;
  }
  // One scratch per thread; a nested call (none today) would get its own.
  thread_local Scratch kept;
  Scratch own;
  Scratch& scratch = kept.busy ? own : kept;
  scratch.busy = true;
  struct Release {
    Scratch& s;
    ~Release() {
      s.clear();
      s.trim();
      s.busy = false;
    }
  } release{scratch};
  Compactor(ops, now, scratch).write(out);
}

}  // namespace atrium::state
