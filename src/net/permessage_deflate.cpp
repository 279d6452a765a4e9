#include "net/permessage_deflate.hpp"

#include <algorithm>
#include <vector>

namespace atrium::net {

namespace {

constexpr int kWindowBits = 15;  // 32 KB, what a client may always assume
constexpr int kLevel = 1;
constexpr unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};  // RFC 7692 7.2.1

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits at `sep` outside double quotes.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') quoted = !quoted;
    else if (s[i] == sep && !quoted) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(trim(s.substr(start)));
  return out;
}

// RFC 7692 7.1.2: 8 to 15, digits only, no leading zero (a quoted form is allowed).
bool window_bits(std::string_view v, int& bits) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 2 || v.front() == '0') return false;
  bits = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
    bits = bits * 10 + (c - '0');
  }
  return bits >= 8 && bits <= 15;
}

// One offer's parameters (everything after the name).
bool params_acceptable(const std::vector<std::string_view>& parts) {
  bool seen[4] = {false, false, false, false};
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string_view param = parts[i];
    const std::size_t eq = param.find('=');
    const std::string_view name = trim(param.substr(0, eq));
    const bool has_value = eq != std::string_view::npos;
    const std::string_view value = has_value ? trim(param.substr(eq + 1)) : std::string_view();
    int which = -1;
    int bits = 0;
    if (name == "server_no_context_takeover") {
      if (has_value) return false;
      which = 0;
    } else if (name == "client_no_context_takeover") {
      if (has_value) return false;
      which = 1;
    } else if (name == "server_max_window_bits") {
      // The one compressor serves every member with a 32 KB window: a client that can
      // only take less gets uncompressed messages instead.
      if (!has_value || !window_bits(value, bits) || bits < kWindowBits) return false;
      which = 2;
    } else if (name == "client_max_window_bits") {
      // With or without a value: the inflater takes any window up to 32 KB.
      if (has_value && !window_bits(value, bits)) return false;
      which = 3;
    } else {
      return false;  // RFC 7692 5: an offer with an unknown parameter is declined
    }
    if (seen[which]) return false;
    seen[which] = true;
  }
  return true;
}

}  // namespace

bool deflate_offer_acceptable(std::string_view header, std::size_t index) {
  std::size_t seen = 0;
  for (const std::string_view extension : split(header, ',')) {
    const std::vector<std::string_view> parts = split(extension, ';');
    if (parts[0] != "permessage-deflate") continue;
    if (seen++ == index) return params_acceptable(parts);
  }
  return false;
}

MessageDeflater::MessageDeflater() {
  ready_ = deflateInit2(&z_, kLevel, Z_DEFLATED, -kWindowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK;
}

MessageDeflater::~MessageDeflater() {
  if (ready_) deflateEnd(&z_);
}

bool MessageDeflater::compress(std::string_view in, std::string& out) {
  if (!ready_ || deflateReset(&z_) != Z_OK) return false;
  // deflateBound() covers a finished stream; a sync flush adds at most an empty stored block.
  out.resize(deflateBound(&z_, static_cast<uLong>(in.size())) + 16);
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z_.avail_in = static_cast<uInt>(in.size());
  z_.next_out = reinterpret_cast<Bytef*>(out.data());
  z_.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z_, Z_SYNC_FLUSH);
  if (rc != Z_OK || z_.avail_in != 0 || z_.avail_out == 0) return false;
  std::size_t n = out.size() - z_.avail_out;
  // A sync flush always ends in the empty stored block's 00 00 ff ff: the receiver puts it back.
  if (n < 4 || std::string_view(out.data() + n - 4, 4) != std::string_view(reinterpret_cast<const char*>(kTail), 4))
    return false;
  out.resize(n - 4);
  return true;
}

MessageInflater::MessageInflater() { ready_ = inflateInit2(&z_, -kWindowBits) == Z_OK; }

MessageInflater::~MessageInflater() {
  if (ready_) inflateEnd(&z_);
}

MessageInflater::Result MessageInflater::inflate(std::string_view in, std::size_t cap, std::string& out) {
  out.clear();
  if (!ready_ || inflateReset(&z_) != Z_OK) return Result::corrupt;
  z_.avail_in = 0;  // not reset by inflateReset: the last message may have stopped midway
  z_.next_in = nullptr;
  // The output grows by doubling from a guess, up to one byte past the cap (which is how
  // too much shows).
  std::size_t produced = 0;
  out.resize(std::min(cap + 1, std::max<std::size_t>(256, in.size() * 4)));
  const std::string_view pieces[2] = {in, std::string_view(reinterpret_cast<const char*>(kTail), 4)};
  std::size_t next_piece = 0;
  for (;;) {
    if (z_.avail_in == 0 && next_piece < 2) {
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(pieces[next_piece].data()));
      z_.avail_in = static_cast<uInt>(pieces[next_piece].size());
      ++next_piece;
    }
    if (produced == out.size()) out.resize(std::min(cap + 1, out.size() * 2));
    z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    z_.avail_out = static_cast<uInt>(out.size() - produced);
    const int rc = ::inflate(&z_, Z_SYNC_FLUSH);
    produced = out.size() - z_.avail_out;
    if (produced > cap) return Result::too_large;
    if (rc == Z_STREAM_END) break;  // a message may end with a final block; the rest is ignored
    if (rc != Z_OK && rc != Z_BUF_ERROR) return Result::corrupt;
    // Room left over means zlib gave all it had for the input so far.
    if (z_.avail_out != 0) {
      if (z_.avail_in != 0) return Result::corrupt;  // stuck: cannot happen with valid data
      if (next_piece == 2) break;                    // the tail is in: the message is whole
    }
  }
  out.resize(produced);
  return Result::ok;
}

}  // namespace atrium::net
