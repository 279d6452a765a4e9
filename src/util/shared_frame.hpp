// Serialize once, send many: one encoded JSON line shared by every member it goes to.
// The bytes sit after kFrameHeadroom spare bytes so a transport can put a frame header
// in front without copying (libwebsockets needs LWS_PRE; net/ checks it fits).
// Reference counts are not atomic: frames live on the engine's one thread.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace atrium {

inline constexpr std::size_t kFrameHeadroom = 16;

class SharedFrame {
 public:
  SharedFrame() noexcept = default;
  explicit SharedFrame(std::string_view bytes) : buf_(allocate(bytes.size())) {
    std::memcpy(buf_->data + kFrameHeadroom, bytes.data(), bytes.size());
  }
  SharedFrame(const SharedFrame& o) noexcept : buf_(o.buf_) { if (buf_) ++buf_->refs; }
  SharedFrame(SharedFrame&& o) noexcept : buf_(o.buf_) { o.buf_ = nullptr; }
  SharedFrame& operator=(SharedFrame o) noexcept { std::swap(buf_, o.buf_); return *this; }
  ~SharedFrame() { release(); }

  explicit operator bool() const noexcept { return buf_ != nullptr; }
  std::size_t size() const noexcept { return buf_ ? buf_->size : 0; }
  const char* data() const noexcept { return buf_ ? buf_->data + kFrameHeadroom : nullptr; }
  // Writable payload pointer with kFrameHeadroom bytes before it (for transports only).
  unsigned char* payload() const noexcept {
    return buf_ ? reinterpret_cast<unsigned char*>(buf_->data + kFrameHeadroom) : nullptr;
  }
  std::string_view view() const noexcept { return {data(), size()}; }
  unsigned use_count() const noexcept { return buf_ ? buf_->refs : 0; }
  // How many bytes before payload() hold a transport header already written there (0:
  // none yet). A transport frames a shared frame once, on its first send, and every later
  // send of the same bytes reuses it (net/ws_session.cpp).
  std::size_t framed() const noexcept { return buf_ ? buf_->framed : 0; }
  void set_framed(std::size_t header_bytes) const noexcept {
    if (buf_ && header_bytes <= kFrameHeadroom) buf_->framed = static_cast<unsigned char>(header_bytes);
  }
  // The same frame in another encoding (a MessagePack connection's: net/ws_session.cpp),
  // made by the first connection that needs it and kept with these bytes for every other
  // one; freed with them. Empty until set.
  SharedFrame alternate() const noexcept { return buf_ ? held(buf_->alt) : SharedFrame(); }
  void set_alternate(const SharedFrame& alt) const noexcept {
    if (buf_ && alt.buf_ && !alt.buf_->alt && !buf_->leaf) attach(buf_->alt, alt.buf_);
  }
  // These bytes compressed (permessage-deflate: net/ws_session.cpp), made once by the first
  // connection that sends them compressed and kept like the alternate. Empty until set, and
  // for good once set_incompressible() said compressing them gains nothing.
  SharedFrame compressed() const noexcept { return buf_ ? held(buf_->zip) : SharedFrame(); }
  // A compressed form is a leaf: it never gets an alternate or a compressed form of its own,
  // so no chain of references can come back to where it started (set_alternate only takes
  // a frame with no alternate), and destroy() goes no deeper than an alternate's form.
  void set_compressed(const SharedFrame& zip) const noexcept {
    if (!buf_ || !zip.buf_ || zip.buf_->alt || zip.buf_->zip || buf_->leaf) return;
    attach(buf_->zip, zip.buf_);
    if (buf_->zip == zip.buf_) zip.buf_->leaf = true;
  }
  bool incompressible() const noexcept { return buf_ && buf_->incompressible; }
  void set_incompressible() const noexcept {
    if (buf_) buf_->incompressible = true;
  }

 private:
  struct Buf {
    unsigned refs;
    unsigned char framed;  // see framed()
    bool incompressible;   // see compressed()
    bool leaf;             // this is a compressed form (set_compressed)
    Buf* alt;              // see alternate(); holds a reference
    Buf* zip;              // see compressed(); holds a reference
    std::size_t size;
    char data[1];
  };
  static Buf* allocate(std::size_t n) {
    void* p = std::malloc(offsetof(Buf, data) + kFrameHeadroom + n + 1);
    if (!p) throw std::bad_alloc();
    Buf* b = static_cast<Buf*>(p);
    b->refs = 1;
    b->framed = 0;
    b->incompressible = false;
    b->leaf = false;
    b->alt = nullptr;
    b->zip = nullptr;
    b->size = n;
    b->data[kFrameHeadroom + n] = '\0';
    return b;
  }
  // A new reference to `b` (none for null).
  static SharedFrame held(Buf* b) noexcept {
    SharedFrame out;
    out.buf_ = b;
    if (b) ++b->refs;
    return out;
  }
  // Fills an empty slot of this buffer with a reference to another one (not itself).
  void attach(Buf*& slot, Buf* other) const noexcept {
    if (slot || other == buf_) return;
    slot = other;
    ++other->refs;
  }
  void release() noexcept {
    if (buf_ && --buf_->refs == 0) destroy(buf_);
    buf_ = nullptr;
  }
  // Frees a buffer and lets go of its alternate and compressed form (shared_frame.cpp: out of line, which also
  // keeps GCC 12's -Wuse-after-free from misreading the two frees once inlined).
  static void destroy(Buf* b) noexcept;
  Buf* buf_ = nullptr;
};

}  // namespace atrium
