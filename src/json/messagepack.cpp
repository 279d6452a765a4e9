// json/messagepack.hpp. MSGPACK_NO_BOOST (meson.build): msgpack-cxx without its Boost parts,
// none of which this uses.
#include "json/messagepack.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

#include <msgpack.hpp>

#include "json/codec.hpp"

namespace atrium::json {

namespace {

// msgpack::packer's stream: appends to a string.
struct StringSink {
  std::string& out;
  void write(const char* p, std::size_t n) { out.append(p, n); }
};

void pack(msgpack::packer<StringSink>& p, StringSink& sink, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::null: p.pack_nil(); return;
    case Value::Kind::boolean: v.as_bool() ? p.pack_true() : p.pack_false(); return;
    case Value::Kind::number: {
      const double d = v.as_number();
      constexpr double kTwo63 = 9223372036854775808.0;
      constexpr double kTwo64 = 18446744073709551616.0;
      if (d == std::floor(d) && d >= -kTwo63 && d < kTwo63) {
        p.pack_int64(static_cast<std::int64_t>(d));   // the smallest int form that holds it
      } else if (d == kTwo64) {
        // msgpack-cxx 4.1.3's pack_float/pack_double turn whole numbers up to
        // float(UINT64_MAX) into integers, and that bound is 2^64 itself: converting it to
        // uint64_t is undefined (UBSan, found by tests/fuzz/fuzz_msgpack.cpp). This one
        // value goes out as the float64 it is: marker 0xcb, then its bits, big-endian.
        std::uint64_t bits = 0;
        std::memcpy(&bits, &d, sizeof bits);
        char buf[9] = {static_cast<char>(0xcb)};
        for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
        sink.write(buf, sizeof buf);   // the packer buffers nothing: order is kept
      } else if (static_cast<double>(static_cast<float>(d)) == d) {
        p.pack_float(static_cast<float>(d));
      } else {
        p.pack_double(d);
      }
      return;
    }
    case Value::Kind::string: {
      const std::string& s = v.as_string();
      p.pack_str(static_cast<std::uint32_t>(s.size()));
      p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
      return;
    }
    case Value::Kind::array:
      p.pack_array(static_cast<std::uint32_t>(v.items().size()));
      for (const Value& item : v.items()) pack(p, sink, item);
      return;
    case Value::Kind::object:
      p.pack_map(static_cast<std::uint32_t>(v.members().size()));
      for (const auto& [key, value] : v.members()) {
        p.pack_str(static_cast<std::uint32_t>(key.size()));
        p.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
        pack(p, sink, value);
      }
      return;
  }
}

// Writes JSON text as msgpack's parser walks one value (its visitor concept). Returning
// false stops the parse; `error` then says why.
class JsonWriter : public msgpack::null_visitor {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}
  std::string error;

  bool visit_nil() { return scalar() && (out_ += "null", true); }
  bool visit_boolean(bool v) { return scalar() && (out_ += v ? "true" : "false", true); }
  bool visit_positive_integer(std::uint64_t v) { return number(static_cast<double>(v)); }
  bool visit_negative_integer(std::int64_t v) { return number(static_cast<double>(v)); }
  bool visit_float32(float v) { return number(static_cast<double>(v)); }
  bool visit_float64(double v) { return number(v); }
  bool visit_str(const char* v, std::uint32_t size) {
    const std::string_view s(v, size);
    if (!is_valid_utf8(s)) return fail("a string is not UTF-8");
    key_ = false;
    write_string(s, out_);
    return true;
  }
  bool visit_bin(const char*, std::uint32_t) { return fail("bin data has no JSON form"); }
  bool visit_ext(const char*, std::uint32_t) { return fail("ext data has no JSON form"); }

  bool start_array(std::uint32_t) { return open('['); }
  bool start_array_item() { return separate(); }
  bool end_array_item() { return true; }
  bool end_array() { return close(']'); }
  bool start_map(std::uint32_t) { return open('{'); }
  bool start_map_key() {
    key_ = true;
    return separate();
  }
  bool end_map_key() {
    if (key_) return fail("a map key is not a string");
    out_ += ':';
    return true;
  }
  bool start_map_value() { return true; }
  bool end_map_value() { return true; }
  bool end_map() { return close('}'); }

  void parse_error(std::size_t, std::size_t at) { fail("malformed at byte " + std::to_string(at)); }
  void insufficient_bytes(std::size_t, std::size_t at) { fail("cut short at byte " + std::to_string(at)); }

 private:
  bool fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  // A non-string where a key should be stops at once: its text would not be JSON.
  bool scalar() { return !key_ || fail("a map key is not a string"); }
  bool number(double d) {
    if (!scalar()) return false;
    if (!std::isfinite(d)) return fail("a float is not finite");
    write_number(d, out_);
    return true;
  }
  bool open(char c) {
    if (!scalar()) return false;
    if (++depth_ > kMaxDepth) return fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    first_.push_back(true);
    out_ += c;
    return true;
  }
  bool separate() {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    return true;
  }
  bool close(char c) {
    --depth_;
    first_.pop_back();
    out_ += c;
    return true;
  }

  std::string& out_;
  std::vector<bool> first_;   // per open container: no member written yet
  int depth_ = 0;
  bool key_ = false;          // inside a map key, its string not seen yet
};

}  // namespace

void write_msgpack(const Value& v, std::string& out) {
  StringSink sink{out};
  msgpack::packer<StringSink> p(sink);
  pack(p, sink, v);
}

Status json_to_msgpack(std::string_view json_text, std::string& out) {
  // An engine frame wraps a state that may itself be kMaxDepth deep (a patch: frame, ops,
  // op, then the value): the frame's depth is allowed what its envelope adds.
  ParseOptions options;
  options.max_depth = kMaxDepth + 8;
  Result<Value> v = parse(json_text, options);
  if (!v) return v.error();
  write_msgpack(v.value(), out);
  return {};
}

Status msgpack_to_json(std::string_view bytes, std::vector<std::string>& out) {
  const std::size_t kept = out.size();
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    const std::size_t start = offset;
    std::string text;
    JsonWriter writer(text);
    bool ok = false;
    try {
      ok = msgpack::parse(bytes.data(), bytes.size(), offset, writer);
    } catch (const std::exception& e) {   // msgpack-cxx's own limits throw
      writer.error = e.what();
    }
    if (!ok) {
      out.resize(kept);
      return make_error(ErrorCode::bad_request, "MessagePack value at byte " + std::to_string(start) + ": " +
                                                    (writer.error.empty() ? "malformed" : writer.error));
    }
    out.push_back(std::move(text));
  }
  return {};
}

}  // namespace atrium::json
