// Private to loom::random and loom::nn::initializers: raw-word helpers behind the public API.
//
//   auto [k0, k1] = loom::random::detail::single_key(key, "normal");
//   loom::random::detail::bits32(k0, k1, n, out, loom::random::current_mode());
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "detail/primitive.hpp"
#include "loom/random.hpp"

namespace loom::random::detail {

/// Binds a random primitive (no VJP: random bits are not differentiated) whose impl re-runs
/// `f(inputs)` in the threefry mode in effect now; input 0 is the key data.
template <typename F>
void bind_random(const loom::detail::Primitive& prim, Array& out,
                 std::initializer_list<const Array*> inputs, F&& f) {
  if (!loom::detail::transforming()) return;
  loom::detail::bind(
      prim, out, inputs,
      [mode = current_mode(), f = std::forward<F>(f)](const std::vector<Array>& in) {
        ModeGuard guard(mode);
        return f(in);
      },
      nullptr);
}

/// The inputs an impl re-runs on (input 0 is the key data).
using In = std::vector<Array>;

/// "random.<op>", the prefix of every error message.
inline std::string op_name(const char* op) {
  return std::string("random.") + op;
}

/// axis in [-ndim, ndim) as a non-negative index; a loom::Error naming `op` and `shape` otherwise.
int canonical_axis(int axis, int ndim, const char* op, const Shape& shape);

/// Gumbel(0, 1) samples (float32 or float64) bound as the random_gumbel primitive; categorical
/// and choice draw from it with their own op name in errors.
Array gumbel_impl(const Key& key, const Shape& shape, DType dtype, const char* op);

/// uint32[2] key data.
Array make_key_data(std::uint32_t k0, std::uint32_t k1);
/// The two words of a single key; a loom::Error naming `op` for empty keys and key batches.
std::pair<std::uint32_t, std::uint32_t> single_key(const Key& key, const char* op);
/// Throws a loom::Error naming `op` when a dimension is negative.
void check_shape(const Shape& shape, const char* op);

/// n 32-bit / 64-bit random words of random_bits(key, n) in the given layout.
void bits32(std::uint32_t k0, std::uint32_t k1, std::int64_t n, std::uint32_t* out,
            ThreefryMode mode);
void bits64(std::uint32_t k0, std::uint32_t k1, std::int64_t n, std::uint64_t* out,
            ThreefryMode mode);
/// Generates the n words of random_bits(key, 32, (n,)) chunk by chunk (in parallel) and hands each
/// chunk to body(bits, offset, count) while it is still in cache.
void for_bits32_chunks(
    std::uint32_t k0, std::uint32_t k1, std::int64_t n, ThreefryMode mode,
    const std::function<void(const std::uint32_t*, std::int64_t, std::int64_t)>& body);
/// split(key, num) as word pairs; fold_in(key, data).
std::vector<std::pair<std::uint32_t, std::uint32_t>> split_words(std::uint32_t k0, std::uint32_t k1,
                                                                 std::int64_t num,
                                                                 ThreefryMode mode);
std::pair<std::uint32_t, std::uint32_t> fold_in_words(std::uint32_t k0, std::uint32_t k1,
                                                      std::uint32_t data);

/// Samplers with a trailing multiplication by `scale` (initializers: `normal(...) * stddev`),
/// rounded exactly as JAX rounds the separate multiply.
Array normal_scaled(const Key& key, const Shape& shape, DType dtype, double scale, const char* op);
Array truncated_normal_scaled(const Key& key, double lower, double upper, const Shape& shape,
                              DType dtype, double scale, const char* op);
Array uniform_scaled(const Key& key, const Shape& shape, DType dtype, double minval, double maxval,
                     double scale, const char* op);

}  // namespace loom::random::detail
