// libFuzzer target for loom's checkpoint reader: msgpack_restore and a target-driven from_bytes
// over arbitrary bytes. Any outcome but a loom::Error or a result is a bug (ASan reports
// overflows, leaks and unbounded allocations; -rss_limit_mb / -malloc_limit_mb catch the rest).
//   make fuzz FUZZ_SECONDS=300
#include <cstddef>
#include <cstdint>
#include <span>

#include "loom/serialization.hpp"

namespace ser = loom::serialization;

namespace {
const loom::Tree& target() {
  static const loom::Tree t = {
      {"step", loom::Array::scalar<std::int32_t>(0)},
      {"params",
       {{"Conv_0",
         {{"kernel", loom::Array::empty({3, 3, 1, 2}, loom::DType::float32)},
          {"bias", loom::Array::empty({2}, loom::DType::float32)}}}}},
      {"opt_state", {{"0", loom::Tree()}, {"1", loom::Tree()}}}};
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  try {
    const loom::Tree t = ser::msgpack_restore(bytes);
    // Whatever decodes must encode and decode back to the same bytes' meaning.
    const ser::Bytes again = ser::msgpack_serialize(t);
    if (ser::msgpack_serialize(ser::msgpack_restore(again)) != again) __builtin_trap();
  } catch (const loom::Error&) {
  }
  try {
    (void)ser::from_bytes(target(), bytes);
  } catch (const loom::Error&) {
  }
  return 0;
}
