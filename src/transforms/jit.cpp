// loom::jit's cache (see loom/jit.hpp): one graph per signature, traced once under the
// signature's own lock so that concurrent first calls trace f a single time.
#include "loom/jit.hpp"

#include <string>

#include "transforms/graph.hpp"

namespace loom::detail {

bool JitSignature::operator==(const JitSignature& o) const {
  if (avals != o.avals || statics.size() != o.statics.size()) return false;
  for (std::size_t i = 0; i < statics.size(); ++i) {
    const StaticKey& a = statics[i];
    const StaticKey& b = o.statics[i];
    if (a.type != b.type || a.hash != b.hash || !a.equal(a.value.get(), b.value.get()))
      return false;
  }
  return true;
}

std::size_t JitSignatureHash::operator()(const JitSignature& s) const {
  std::size_t h = std::hash<std::string>{}(s.avals);
  for (const StaticKey& k : s.statics) h = h * 1000003u ^ k.hash;
  return h;
}

std::shared_ptr<const JitEntry> JitCache::get(const JitSignature& sig,
                                              const std::function<JitEntry()>& trace,
                                              bool* hit) {
  std::shared_ptr<Slot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Slot>& s = slots_[sig];
    if (!s) s = std::make_shared<Slot>();
    slot = s;
  }
  std::lock_guard<std::mutex> lock(slot->mu);
  if (slot->entry) {
    std::lock_guard<std::mutex> count(mu_);
    ++hits_;
    *hit = true;
    return slot->entry;
  }
  // A failed trace leaves the slot empty: the next call traces again.
  slot->entry = std::make_shared<const JitEntry>(trace());
  std::lock_guard<std::mutex> count(mu_);
  ++misses_;
  *hit = false;
  return slot->entry;
}

std::size_t JitCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;  // every successful trace adds one graph; nothing is evicted
}
std::size_t JitCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}
std::size_t JitCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

void throw_jit_arg(int index, const std::string& what) {
  throw Error("jit: argument " + std::to_string(index) + " " + what);
}

std::string aval_signature(const Array& x) {
  return x.valid() ? describe_value(x) : std::string("empty");
}

std::string aval_signature(const Tree& x) {
  if (x.is_leaf()) return aval_signature(x.leaf());
  std::string s = "{";
  for (const auto& [k, v] : x.dict()) s += k + ":" + aval_signature(v) + ",";
  return s + "}";
}

}  // namespace loom::detail
