// Private to loom::random and loom::nn::initializers: the vectorized threefry hash and the
// float32 transforms, each compiled for baseline x86-64 and for AVX2+FMA, picked at run time.
//
//   const auto& k = loom::random::detail::kernels();
//   k.bits32_partitionable(k0, k1, /*start=*/0, n, out);
#pragma once

#include <cstdint>

namespace loom::random::detail {

inline constexpr std::uint32_t kThreefryParity = 0x1BD11BDA;

struct KernelTable {
  const char* name;  // "avx2+fma" or "baseline"
  void (*hash_pairs)(std::uint32_t k0, std::uint32_t k1, const std::uint32_t* x0,
                     const std::uint32_t* x1, std::uint32_t* y0, std::uint32_t* y1, std::int64_t n);
  void (*bits32_partitionable)(std::uint32_t k0, std::uint32_t k1, std::uint64_t start,
                               std::int64_t n, std::uint32_t* out);
  void (*bits64_partitionable)(std::uint32_t k0, std::uint32_t k1, std::uint64_t start,
                               std::int64_t n, std::uint64_t* out);
  void (*keys_partitionable)(std::uint32_t k0, std::uint32_t k1, std::uint64_t start,
                             std::int64_t n, std::uint32_t* out);
  void (*pairs_original)(std::uint32_t k0, std::uint32_t k1, std::uint32_t half, std::int64_t j0,
                         std::int64_t j1, std::uint32_t* out0, std::uint32_t* out1);
  void (*uniform_f32)(const std::uint32_t* bits, float* out, std::int64_t n, float minval,
                      float span, float scale);
  void (*erfinv_f32)(const std::uint32_t* bits, float* out, std::int64_t n, float lo, float span,
                     float clip_lo, float clip_hi, float scale);
  void (*gumbel_f32)(const std::uint32_t* bits, float* out, std::int64_t n);
  float (*log_f32)(float x);
  float (*log1p_f32)(float x);
  float (*erfinv_f32_scalar)(float x);
};

/// The best table this CPU supports (AVX2+FMA when available). Both give identical results.
const KernelTable& kernels();
/// The baseline table, for tests that check both builds agree.
const KernelTable& baseline_kernels();

/// XLA:CPU's float32 erf (Eigen's rational approximation with explicit FMAs).
float xla_erf_f32(float x);

}  // namespace loom::random::detail
