// loom::random's shuffles: permutation (shared or independent per slice) and choice (with or
// without replacement, optionally weighted). Facts (not code) from jax/_src/random.py's _shuffle,
// permutation and choice.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/dispatch.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/random.hpp"
#include "random/kernels.hpp"
#include "random/random_internal.hpp"

namespace loom::random {
namespace detail {
namespace {

// Stable sort of each 1-D slice along `axis` by fresh 32-bit keys, `rounds` times (JAX's
// _shuffle). Returns, for an array of shape `shape`, the source index along `axis` of every
// element.
std::vector<std::int64_t> shuffle_sources(const Key& key, const Shape& shape, int axis) {
  const std::int64_t size = shape.numel();
  const std::int64_t len = shape[axis];
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (int d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  // src[(o * len + j) * inner + i] = index along axis that element came from.
  std::vector<std::int64_t> src(static_cast<std::size_t>(size));
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t j = 0; j < len; ++j)
      for (std::int64_t i = 0; i < inner; ++i)
        src[static_cast<std::size_t>((o * len + j) * inner + i)] = j;
  const double exponent = 3.0;
  const int rounds = static_cast<int>(
      std::ceil(exponent * std::log(static_cast<double>(std::max<std::int64_t>(1, size))) /
                std::log(static_cast<double>(std::numeric_limits<std::uint32_t>::max()))));
  const ThreefryMode mode = current_mode();
  auto [k0, k1] = single_key(key, "permutation");
  std::vector<std::uint32_t> sort_keys(static_cast<std::size_t>(size));
  std::vector<std::int64_t> order(static_cast<std::size_t>(len)),
      tmp(static_cast<std::size_t>(len));
  for (int r = 0; r < rounds; ++r) {
    const auto w = split_words(k0, k1, 2, mode);
    k0 = w[0].first;
    k1 = w[0].second;
    bits32(w[1].first, w[1].second, size, sort_keys.data(), mode);
    for (std::int64_t o = 0; o < outer; ++o) {
      for (std::int64_t i = 0; i < inner; ++i) {
        auto at = [&](std::int64_t j) {
          return static_cast<std::size_t>((o * len + j) * inner + i);
        };
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
          return sort_keys[at(a)] < sort_keys[at(b)];
        });
        for (std::int64_t j = 0; j < len; ++j)
          tmp[static_cast<std::size_t>(j)] = src[at(order[static_cast<std::size_t>(j)])];
        for (std::int64_t j = 0; j < len; ++j) src[at(j)] = tmp[static_cast<std::size_t>(j)];
      }
    }
  }
  return src;
}

}  // namespace
}  // namespace detail

Array permutation(const Key& key, std::int64_t n) {
  detail::single_key(key, "permutation");
  if (n < 0) throw Error("random.permutation: n must be non-negative, got " + std::to_string(n));
  const std::vector<std::int64_t> src = detail::shuffle_sources(key, Shape{n}, 0);
  Array out = Array::empty(Shape{n}, DType::int32);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    o[i] = static_cast<std::int32_t>(src[static_cast<std::size_t>(i)]);
  static constexpr loom::detail::Primitive kPermutation{.name = "random_permutation"};
  detail::bind_random(kPermutation, out, {&key.data()},
                      [n](const detail::In& in) { return permutation(Key(in[0]), n); });
  return out;
}

namespace {
// The source index along `axis` of every element of an independently shuffled array of `shape`
// (int32, that shape), for take_along_axis.
Array shuffle_indices(const Key& key, const Shape& shape, int axis) {
  const std::vector<std::int64_t> src = detail::shuffle_sources(key, shape, axis);
  Array out = Array::empty(shape, DType::int32);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  for (std::size_t i = 0; i < src.size(); ++i) o[i] = static_cast<std::int32_t>(src[i]);
  static constexpr loom::detail::Primitive kShuffle{.name = "random_shuffle"};
  detail::bind_random(kShuffle, out, {&key.data()}, [shape, axis](const detail::In& in) {
    return shuffle_indices(Key(in[0]), shape, axis);
  });
  return out;
}
}  // namespace

Array permutation(const Key& key, const Array& x, int axis, bool independent) {
  detail::single_key(key, "permutation");
  if (!x.valid()) throw Error("random.permutation: x is an empty array");
  if (x.ndim() == 0) {
    if (!is_integer(x.dtype())) {
      throw Error(std::string("random.permutation: x must be an integer or at least 1-D, got a ") +
                  dtype_name(x.dtype()) + " scalar");
    }
    return permutation(key, static_cast<std::int64_t>(x.item<double>()));
  }
  const int ax = detail::canonical_axis(axis, x.ndim(), "permutation", x.shape());
  if (!independent || x.ndim() == 1) {
    // The same permutation for every slice: shuffle the indices 0..len-1 (as JAX does for
    // ndim > 1; for 1-D x, sorting x by the keys is the same permutation).
    return numpy::take(x, permutation(key, x.shape()[ax]), ax);
  }
  return numpy::take_along_axis(x, shuffle_indices(key, x.shape(), ax), ax);
}

namespace {

// Indices into 0..n-1 for choice (shape `shape`), shared by both overloads.
std::vector<std::int64_t> choice_indices(const Key& key, std::int64_t n_inputs, const Shape& shape,
                                         bool replace, const std::optional<Array>& p) {
  const std::int64_t n_draws = shape.numel();
  std::vector<std::int64_t> ind(static_cast<std::size_t>(n_draws));
  if (!p) {
    if (replace) {
      const Array r = randint(key, shape, 0, n_inputs);
      const std::int32_t* rd = r.data<std::int32_t>();
      for (std::int64_t i = 0; i < n_draws; ++i) ind[static_cast<std::size_t>(i)] = rd[i];
    } else {
      const auto src = detail::shuffle_sources(key, Shape{n_inputs}, 0);
      std::copy(src.begin(), src.begin() + n_draws, ind.begin());
    }
    return ind;
  }
  if (!p->valid() || !is_floating(p->dtype())) {
    throw Error("random.choice: p must be a float32 or float64 array");
  }
  if (p->shape() != Shape{n_inputs}) {
    throw Error(
        "random.choice: p must be None or a 1-D vector with the same size as a.shape[axis]; "
        "p has shape " +
        p->shape().str() + " and a.shape[axis] is " + std::to_string(n_inputs));
  }
  auto run = [&]<typename T>() {
    const T* pd = p->data<T>();
    for (std::int64_t i = 0; i < n_inputs; ++i) {
      if (!(pd[i] >= T(0))) {  // JAX does not check; a negative or NaN weight would index past a
        throw Error("random.choice: p must be non-negative, got p[" + std::to_string(i) +
                    "] = " + std::to_string(static_cast<double>(pd[i])));
      }
    }
    if (replace) {
      std::vector<T> cum(static_cast<std::size_t>(n_inputs));
      T acc = 0;
      for (std::int64_t i = 0; i < n_inputs; ++i)
        cum[static_cast<std::size_t>(i)] = acc = acc + pd[i];
      const Array u = uniform(key, shape, dtype_of<T>());
      const T* ud = u.data<T>();
      for (std::int64_t i = 0; i < n_draws; ++i) {
        const T r = cum.back() * (T(1) - ud[i]);
        ind[static_cast<std::size_t>(i)] =
            std::lower_bound(cum.begin(), cum.end(), r) - cum.begin();
      }
    } else {
      const Array g = detail::gumbel_impl(key, Shape{n_inputs}, dtype_of<T>(), "choice");
      const T* gd = g.data<T>();
      std::vector<T> score(static_cast<std::size_t>(n_inputs));
      for (std::int64_t i = 0; i < n_inputs; ++i) {
        T lp;
        if constexpr (std::is_same_v<T, float>)
          lp = detail::kernels().log_f32(pd[i]);
        else
          lp = std::log(pd[i]);
        score[static_cast<std::size_t>(i)] = gd[i] + lp;
      }
      std::vector<std::int64_t> order(static_cast<std::size_t>(n_inputs));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        return score[static_cast<std::size_t>(a)] > score[static_cast<std::size_t>(b)];
      });
      std::copy(order.begin(), order.begin() + n_draws, ind.begin());
    }
  };
  if (p->dtype() == DType::float32)
    run.template operator()<float>();
  else
    run.template operator()<double>();
  return ind;
}

void check_choice(std::int64_t n_inputs, std::int64_t n_draws, bool replace) {
  if (n_inputs <= 0) {
    throw Error("random.choice: a must be greater than 0 unless no samples are taken, got " +
                std::to_string(n_inputs));
  }
  if (!replace && n_draws > n_inputs) {
    throw Error("random.choice: cannot take a larger sample (size " + std::to_string(n_draws) +
                ") than the population (size " + std::to_string(n_inputs) + ") when replace=false");
  }
}

}  // namespace

Array choice(const Key& key, std::int64_t n, Shape shape, bool replace, std::optional<Array> p) {
  detail::single_key(key, "choice");
  detail::check_shape(shape, "choice");
  const std::int64_t n_draws = shape.numel();
  Array out = Array::empty(shape, DType::int32);
  if (n_draws == 0) return out;
  check_choice(n, n_draws, replace);
  const auto ind = choice_indices(key, n, shape, replace, p);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  for (std::int64_t i = 0; i < n_draws; ++i)
    o[i] = static_cast<std::int32_t>(ind[static_cast<std::size_t>(i)]);
  static constexpr loom::detail::Primitive kChoice{.name = "random_choice"};
  if (p) {
    detail::bind_random(kChoice, out, {&key.data(), &*p},
                        [n, shape, replace](const detail::In& in) {
                          return choice(Key(in[0]), n, shape, replace, in[1]);
                        });
  } else {
    detail::bind_random(kChoice, out, {&key.data()}, [n, shape, replace](const detail::In& in) {
      return choice(Key(in[0]), n, shape, replace, std::nullopt);
    });
  }
  return out;
}

Array choice(const Key& key, const Array& a, Shape shape, bool replace, std::optional<Array> p,
             int axis) {
  detail::single_key(key, "choice");
  detail::check_shape(shape, "choice");
  if (!a.valid()) throw Error("random.choice: a is an empty array");
  if (a.ndim() == 0) {
    if (!is_integer(a.dtype())) {
      throw Error(std::string("random.choice: a must be an integer or an array, got a ") +
                  dtype_name(a.dtype()) + " scalar");
    }
    return choice(key, static_cast<std::int64_t>(a.item<double>()), shape, replace, p);
  }
  const int ax = detail::canonical_axis(axis, a.ndim(), "choice", a.shape());
  const std::int64_t n_inputs = a.shape()[ax];
  const std::int64_t n_draws = shape.numel();
  if (n_draws != 0) check_choice(n_inputs, n_draws, replace);
  return numpy::take(a, choice(key, n_inputs, shape, replace, p), ax);
}

}  // namespace loom::random
