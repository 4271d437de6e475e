// lax.pad: low/high padding (negative crops) and interior padding, one kernel that scatters the
// operand into a padding-filled result and, for the VJP, the same walk gathering it back.
#include <algorithm>
#include <string>
#include <vector>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/lax.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"

namespace loom::lax {
namespace {

// Operand indices [start, end) along one dim land at out index low + i * step.
struct DimMap {
  std::int64_t start = 0, end = 0, low = 0, step = 1;
};

std::string config_str(const std::vector<PadConfig>& config) {
  std::string s = "(";
  for (std::size_t i = 0; i < config.size(); ++i) {
    if (i) s += ", ";
    s += "(" + std::to_string(config[i].low) + ", " + std::to_string(config[i].high) + ", " +
         std::to_string(config[i].interior) + ")";
  }
  return s + (config.size() == 1 ? ",)" : ")");
}

// Row-major element strides of a shape.
std::vector<std::int64_t> strides_of(const Shape& s) {
  std::vector<std::int64_t> st(std::size_t(s.size()), 1);
  for (int d = s.size() - 2; d >= 0; --d) st[std::size_t(d)] = st[std::size_t(d + 1)] * s[d + 1];
  return st;
}

// Moves every in-bounds operand element between operand (op) and padded (out) storage:
// to_padded: out[map(i)] = op[i]; otherwise op[i] = out[map(i)].
template <typename T, bool kToPadded, typename OpPtr, typename OutPtr>
void walk(OpPtr op, OutPtr out, const std::vector<DimMap>& m, const std::vector<std::int64_t>& so,
          const std::vector<std::int64_t>& sp, int d, std::int64_t oa, std::int64_t ob) {
  const int r = int(m.size());
  const DimMap& dm = m[std::size_t(d)];
  if (d == r - 1) {
    const std::int64_t base = ob + dm.low;
    if constexpr (kToPadded) {
      if (dm.step == 1) {
        std::copy(op + oa + dm.start, op + oa + dm.end, out + base + dm.start);
      } else {
        for (std::int64_t i = dm.start; i < dm.end; ++i) out[base + i * dm.step] = op[oa + i];
      }
    } else {
      for (std::int64_t i = dm.start; i < dm.end; ++i) op[oa + i] = out[base + i * dm.step];
    }
    return;
  }
  for (std::int64_t i = dm.start; i < dm.end; ++i) {
    walk<T, kToPadded>(op, out, m, so, sp, d + 1, oa + i * so[std::size_t(d)],
                       ob + (dm.low + i * dm.step) * sp[std::size_t(d)]);
  }
}

template <typename T, bool kToPadded, typename OpPtr, typename OutPtr>
void transfer(OpPtr op, OutPtr out, const Shape& op_shape, const Shape& out_shape,
              const std::vector<DimMap>& m) {
  if (op_shape.size() == 0) {
    if constexpr (kToPadded) {
      out[0] = op[0];
    } else {
      op[0] = out[0];
    }
    return;
  }
  for (const DimMap& dm : m) {
    if (dm.start >= dm.end) return;  // nothing of the operand survives
  }
  walk<T, kToPadded>(op, out, m, strides_of(op_shape), strides_of(out_shape), 0, 0, 0);
}

// The transpose of pad (its VJP in the operand): gathers the operand's positions of a padded
// array g back into operand shape `s`. It is itself a primitive whose VJP is pad with zeros, so
// pad is differentiable to any order.
Array pad_transpose(const Array& g, const Shape& s, const Shape& out_shape,
                    const std::vector<DimMap>& maps, const std::vector<PadConfig>& config) {
  Array dx = Array::empty(s, g.dtype());
  loom::detail::dispatch(g.dtype(), [&]<typename T>() {
    T* pd = dx.mutable_data<T>();
    std::fill(pd, pd + dx.size(), T(0));  // cropped elements get no gradient
    transfer<T, false>(pd, g.data<T>(), s, out_shape, maps);
  });
  static constexpr loom::detail::Primitive kPadTranspose{.name = "pad_transpose",
                                                         .forward = loom::detail::Forward::linear};
  if (loom::detail::transforming()) {
    loom::detail::bind(
        kPadTranspose, dx, {&g},
        [s, out_shape, maps, config](const std::vector<Array>& in) {
          return pad_transpose(in[0], s, out_shape, maps, config);
        },
        [config](const Array& u, const Array&) { return std::vector<Array>{pad(u, 0.0, config)}; });
  }
  return dx;
}

}  // namespace

Array pad(const Array& operand, const Array& padding_value, const std::vector<PadConfig>& config) {
  loom::detail::check_valid(operand, "lax.pad");
  loom::detail::check_valid(padding_value, "lax.pad");
  const Shape& s = operand.shape();
  const std::string where = " (operand " + std::string(dtype_name(operand.dtype())) + s.str() +
                            ", padding_config " + config_str(config) + ")";
  if (padding_value.ndim() != 0) {
    throw Error("lax.pad: padding_value must be a scalar, got shape " +
                padding_value.shape().str() + where);
  }
  if (padding_value.dtype() != operand.dtype()) {
    throw Error("lax.pad: padding_value must have the operand's dtype, got " +
                std::string(dtype_name(padding_value.dtype())) + where);
  }
  if (int(config.size()) != s.size()) {
    throw Error("lax.pad: expected one (low, high, interior) per operand dimension (" +
                std::to_string(s.size()) + "), got " + std::to_string(config.size()) + where);
  }
  Shape out_shape;
  std::vector<DimMap> maps(config.size());
  for (int d = 0; d < s.size(); ++d) {
    const PadConfig& c = config[std::size_t(d)];
    const std::int64_t n = s[d];
    if (c.interior < 0) {
      throw Error("lax.pad: interior padding must be non-negative, got " +
                  std::to_string(c.interior) + " in dimension " + std::to_string(d) + where);
    }
    constexpr std::int64_t kLimit = std::int64_t{1} << 48;
    if (c.interior > kLimit || c.low > kLimit || c.high > kLimit || c.low < -kLimit ||
        c.high < -kLimit) {
      throw Error("lax.pad: padding too large in dimension " + std::to_string(d) + where);
    }
    // (n - 1) * step can still leave int64 for a long dimension: checked arithmetic.
    const std::int64_t step = c.interior + 1;
    std::int64_t dilated = 0, size = 0;
    if (n > 0 && (__builtin_mul_overflow(n - 1, step, &dilated) ||
                  __builtin_add_overflow(dilated, std::int64_t{1}, &dilated))) {
      throw Error("lax.pad: the padded size of dimension " + std::to_string(d) +
                  " overflows int64" + where);
    }
    if (__builtin_add_overflow(c.low + c.high, dilated, &size)) {
      throw Error("lax.pad: the padded size of dimension " + std::to_string(d) +
                  " overflows int64" + where);
    }
    if (size < 0) {
      throw Error("lax.pad: dimension " + std::to_string(d) + " would have negative size " +
                  std::to_string(size) + where);
    }
    out_shape.push_back(size);
    DimMap& m = maps[std::size_t(d)];
    m.low = c.low;
    m.step = step;
    // Operand i lands at low + i * step; keep those in [0, size).
    m.start = c.low >= 0 ? 0 : (-c.low + step - 1) / step;
    m.end = size == 0 || n == 0 ? 0 : std::min(n, (size - 1 - c.low) / step + 1);
    if (size - 1 - c.low < 0) m.end = 0;
    m.start = std::min(m.start, n);
  }
  Array out = Array::empty(out_shape, operand.dtype());
  loom::detail::dispatch(operand.dtype(), [&]<typename T>() {
    T* po = out.mutable_data<T>();
    std::fill(po, po + out.size(), padding_value.data<T>()[0]);
    transfer<T, true>(operand.data<T>(), po, s, out_shape, maps);
  });
  static constexpr loom::detail::Primitive kPad{.name = "lax_pad",
                                                .forward = loom::detail::Forward::linear};
  if (loom::detail::transforming()) {
    loom::detail::bind(
        kPad, out, {&operand, &padding_value},
        [config](const std::vector<Array>& in) { return pad(in[0], in[1], config); },
        [s, out_shape, maps, config](const Array& g, const Array&) {
          Array dx = pad_transpose(g, s, out_shape, maps, config);
          // The padding value fills every position no operand element took.
          Array dv = numpy::sum(g) - numpy::sum(dx);
          return std::vector<Array>{dx, dv};
        },
        // The batch is one more unpadded leading axis. A per-example padding value: pad with
        // zeros, then take each example's value wherever a padded mask marks padding (a select,
        // so the operand's elements pass through exactly).
        [config](const std::vector<Array>& in, const std::vector<bool>& batched) {
          std::vector<PadConfig> c{PadConfig{}};
          c.insert(c.end(), config.begin(), config.end());
          if (!batched[1]) return pad(in[0], in[1], c);
          const std::int64_t size = in[1].shape()[0];
          Array x = in[0];
          if (!batched[0]) {
            Shape s = x.shape();
            s.insert(0, size);
            x = numpy::broadcast_to(numpy::expand_dims(x, {0}), s);
          }
          const Array filled = pad(x, numpy::zeros(Shape{}, x.dtype()), c);
          const Array is_pad =
              pad(numpy::zeros(x.shape(), DType::bool_), numpy::ones(Shape{}, DType::bool_), c);
          std::vector<std::int64_t> vs(std::size_t(filled.ndim()), 1);
          vs[0] = size;
          return numpy::where(is_pad, numpy::reshape(in[1], vs), filled);
        });
  }
  return out;
}

Array pad(const Array& operand, double padding_value, const std::vector<PadConfig>& config) {
  loom::detail::check_valid(operand, "lax.pad");
  return pad(operand, numpy::full(Shape{}, padding_value, operand.dtype()), config);
}

}  // namespace loom::lax
