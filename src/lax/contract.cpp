// The contraction primitive (see contract.hpp) and the axis permutation; the engine that maps a
// contraction onto strided batched GEMMs is contract_gemm.cpp.
#include "lax/contract.hpp"

#include <algorithm>
#include <string>

#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "numpy/strided.hpp"

namespace loom::detail {

std::string describe(const Array& x) {
  return x.valid() ? x.shape().str() + " " + dtype_name(x.dtype()) : std::string("<empty Array>");
}

DType promote_for(const char* op, const Array& a, const Array& b) {
  try {
    return promote_types(a.dtype(), b.dtype());
  } catch (const Error& e) {
    throw Error(std::string(op) + ": cannot combine dtypes " + dtype_name(a.dtype()) + " and " +
                dtype_name(b.dtype()) + " (" + e.what() + ")");
  }
}

Array contract(const Array& a, const std::vector<int>& la, const Array& b,
               const std::vector<int>& lb, const std::vector<int>& lc, const Shape& c_shape) {
  Array out = contract_raw(a, la, b, lb, lc, c_shape);
  if (!transforming()) return out;
  static constexpr Primitive kContract{.name = "contract", .forward = Forward::bilinear};
  // An input without autodiff history (data, not parameters) needs no cotangent.
  const bool need_a = a.node() != nullptr, need_b = b.node() != nullptr;
  bind(
      kContract, out, {&a, &b},
      [la, lb, lc, c_shape](const std::vector<Array>& in) {
        return contract(in[0], la, in[1], lb, lc, c_shape);
      },
      // d/da sum_c g*c = contraction of g with b onto a's labels (and symmetrically); the
      // residuals a and b keep their history, so the VJP is itself differentiable.
      [a, b, la, lb, lc, need_a, need_b](const Array& g, const Array&) {
        const Array gc = g.dtype() == a.dtype() ? g : g.astype(a.dtype());
        return std::vector<Array>{need_a ? contract(gc, lc, b, lb, la, a.shape()) : Array(),
                                  need_b ? contract(a, la, gc, lc, lb, b.shape()) : Array()};
      },
      // The batch is one more label (jax's _dot_general_batch_rule): a batch index when both
      // sides carry it, a free index of the batched side otherwise, so one shared operand makes
      // a single bigger GEMM instead of one per example.
      [la, lb, lc, c_shape](const std::vector<Array>& in, const std::vector<bool>& batched) {
        int top = -1;
        for (const auto* l : {&la, &lb, &lc})
          for (int x : *l) top = std::max(top, x);
        const int bl = top + 1;
        auto with = [bl](bool on, const std::vector<int>& l) {
          if (!on) return l;
          std::vector<int> out{bl};
          out.insert(out.end(), l.begin(), l.end());
          return out;
        };
        const std::int64_t size = in[batched[0] ? 0 : 1].shape()[0];
        Shape cs = c_shape;
        cs.insert(0, size);
        return contract(in[0], with(batched[0], la), in[1], with(batched[1], lb), with(true, lc),
                        cs);
      });
  return out;
}

Array permute_raw(const Array& x, const std::vector<int>& perm) {
  Shape s;
  for (int p : perm) s.push_back(x.shape()[p]);
  Array out = Array::empty(s, x.dtype());
  const auto xs = numpy::strided::contiguous_strides(x.shape());
  std::vector<std::int64_t> src;
  for (int p : perm) src.push_back(xs[static_cast<std::size_t>(p)]);
  numpy::strided::strided_copy(x, 0, src, out, 0, numpy::strided::contiguous_strides(s), s);
  return out;
}

Array permute(const Array& x, const std::vector<int>& perm) {
  bool identity = true;
  for (std::size_t i = 0; i < perm.size(); ++i)
    identity = identity && perm[i] == static_cast<int>(i);
  if (identity) return x;
  Array out = permute_raw(x, perm);
  static constexpr Primitive kPermute{.name = "permute", .forward = Forward::linear};
  if (transforming()) {
    bind(
        kPermute, out, {&x}, [perm](const std::vector<Array>& in) { return permute(in[0], perm); },
        [perm](const Array& g, const Array&) {
          std::vector<int> inv(perm.size());
          for (std::size_t i = 0; i < perm.size(); ++i)
            inv[static_cast<std::size_t>(perm[i])] = static_cast<int>(i);
          return std::vector<Array>{permute(g, inv)};
        },
        [perm](const std::vector<Array>& in, const std::vector<bool>&) {
          std::vector<int> p{0};
          for (int a : perm) p.push_back(a + 1);
          return permute(in[0], p);
        });
  }
  return out;
}

}  // namespace loom::detail
