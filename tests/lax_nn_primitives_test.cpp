// The primitive records of loom::lax, loom::nn and loom::optim (tests/op_list_lax_nn.hpp):
// every case's gradient, and its grad of grad (Hessian-vector products), match central finite
// differences in float64; the composite (differentiable) VJP of each fused kernel equals its
// hand-written backward kernel; and every case binds primitives whose impl replays to the eager
// result.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "detail/composite_vjp.hpp"
#include "detail/primitive.hpp"
#include "op_list_lax_nn.hpp"
#include "test_util.hpp"

namespace loom {
namespace {

using testing::OpCase;

// A fixed, non-uniform cotangent so every output element weighs differently.
Array weights_like(const Array& y) {
  std::vector<double> v(static_cast<std::size_t>(y.size()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.5 + 0.3 * std::cos(0.9 * double(i));
  return Array(v, y.shape(), DType::float64);
}

// sum(w * op(inputs with input k replaced by x)): a scalar function of input k.
std::function<Array(const Array&)> scalarized(const OpCase& c, std::size_t k, const Array& w) {
  return [&c, k, w](const Array& x) {
    std::vector<Array> in = c.inputs;
    in[k] = x;
    return numpy::sum(c.fn(in).astype(DType::float64) * w);
  };
}

TEST(LaxNnPrimitives, EveryCaseHasAName) {
  const auto cases = testing::lax_nn_op_cases();
  EXPECT_GE(cases.size(), 30u);
  for (const OpCase& c : cases) {
    EXPECT_FALSE(c.name.empty());
    EXPECT_FALSE(c.inputs.empty()) << c.name;
  }
}

TEST(LaxNnPrimitives, GradientsMatchFiniteDifferences) {
  for (const OpCase& c : testing::lax_nn_op_cases()) {
    if (!c.differentiable) continue;
    const Array w = weights_like(c.fn(c.inputs));
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
      if (c.inputs[k].dtype() != DType::float64) continue;
      EXPECT_TRUE(testing::grad_matches_fd(scalarized(c, k, w), c.inputs[k], 1e-6))
          << c.name << " input " << k;
    }
  }
}

// The composite VJPs (run when the backward pass is differentiated) against the fast kernels.
TEST(LaxNnPrimitives, CompositeVjpEqualsKernelVjp) {
  for (const OpCase& c : testing::lax_nn_op_cases()) {
    if (!c.differentiable) continue;
    const Array w = weights_like(c.fn(c.inputs));
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
      if (c.inputs[k].dtype() != DType::float64) continue;
      const Array kernel = grad(scalarized(c, k, w))(c.inputs[k]);
      Array composite;
      {
        detail::ForceCompositeVjp force;
        composite = grad(scalarized(c, k, w))(c.inputs[k]);
      }
      EXPECT_TRUE(testing::allclose(composite, kernel, 1e-12, 1e-12)) << c.name << " input " << k;
    }
  }
}

// Grad of grad: the backward pass, recorded by the outer grad, runs the composite VJPs (and
// the bound transpose primitives of lax); its derivative H v must match finite differences of
// the first-order gradient (the fast kernels).
TEST(LaxNnPrimitives, HessianVectorProductsMatchFiniteDifferences) {
  for (const OpCase& c : testing::lax_nn_op_cases()) {
    if (!c.differentiable) continue;
    const Array w = weights_like(c.fn(c.inputs));
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
      if (c.inputs[k].dtype() != DType::float64) continue;
      const auto f = scalarized(c, k, w);
      const Array v = weights_like(c.inputs[k]) - 0.4;
      auto hv = [&f, v](const Array& x) { return numpy::sum(grad(f)(x) * v); };
      EXPECT_TRUE(testing::grad_matches_fd(hv, c.inputs[k], 1e-5)) << c.name << " input " << k;
    }
  }
}

// Mixed second derivatives d/dx_j (v . grad_k f): for bilinear ops (contract, conv) the pure
// Hessian is zero, so these are what exercise the VJPs of their backward primitives.
TEST(LaxNnPrimitives, MixedSecondDerivativesMatchFiniteDifferences) {
  for (const OpCase& c : testing::lax_nn_op_cases()) {
    if (!c.differentiable) continue;
    const Array w = weights_like(c.fn(c.inputs));
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
      for (std::size_t j = 0; j < c.inputs.size(); ++j) {
        if (j == k || c.inputs[k].dtype() != DType::float64 ||
            c.inputs[j].dtype() != DType::float64) {
          continue;
        }
        const Array v = weights_like(c.inputs[k]) - 0.4;
        auto cross = [&c, k, j, w, v](const Array& xj) {
          auto fk = [&c, k, j, &w, &xj](const Array& xk) {
            std::vector<Array> in = c.inputs;
            in[k] = xk;
            in[j] = xj;
            return numpy::sum(c.fn(in).astype(DType::float64) * w);
          };
          return numpy::sum(grad(fk)(c.inputs[k]) * v);
        };
        EXPECT_TRUE(testing::grad_matches_fd(cross, c.inputs[j], 1e-5))
            << c.name << " d/d input " << j << " of grad " << k;
      }
    }
  }
}

TEST(LaxNnPrimitives, CompositeVjpIsOffByDefault) {
  EXPECT_FALSE(detail::use_composite_vjp());
  {
    detail::ForceCompositeVjp force;
    EXPECT_TRUE(detail::use_composite_vjp());
  }
  EXPECT_FALSE(detail::use_composite_vjp());
}

// Records every bound primitive, as a jit capture would.
struct RecordingSink : detail::CaptureSink {
  struct Entry {
    std::string name;
    Array out;
    std::vector<Array> inputs;
    detail::Impl impl;
  };
  std::vector<Entry> entries;
  void on_primitive(const detail::Primitive& prim, const Array& out,
                    const std::vector<const Array*>& inputs, const detail::Impl& impl) override {
    Entry e{prim.name, out.detached(), {}, impl};
    for (const Array* a : inputs) e.inputs.push_back(a->detached());
    entries.push_back(std::move(e));
  }
};

struct CaptureScope {
  RecordingSink sink;
  detail::CaptureSink* saved = detail::current_capture();
  CaptureScope() {
    detail::current_capture() = &sink;
    ++detail::g_transform_depth;
  }
  ~CaptureScope() {
    --detail::g_transform_depth;
    detail::current_capture() = saved;
  }
};

TEST(LaxNnPrimitives, EveryCaseBindsAndItsImplsReplay) {
  for (const OpCase& c : testing::lax_nn_op_cases()) {
    const Array eager = c.fn(c.inputs);
    std::vector<RecordingSink::Entry> entries;
    Array captured;
    {
      CaptureScope scope;
      captured = c.fn(c.inputs);
      entries = scope.sink.entries;
    }
    EXPECT_TRUE(testing::allclose(captured, eager, 0, 0)) << c.name;
    ASSERT_FALSE(entries.empty()) << c.name << " bound no primitive";
    bool named = false;
    for (const auto& e : entries) named = named || e.name == c.name;
    EXPECT_TRUE(named) << c.name << " did not bind a primitive of that name";
    // The result itself comes out of a bound primitive (nothing computed behind a capture's back).
    bool result_bound = false;
    for (const auto& e : entries) {
      result_bound = result_bound || (e.out.shape() == captured.shape() &&
                                      testing::allclose(e.out, captured, 0, 0));
    }
    EXPECT_TRUE(result_bound) << "the result of " << c.name << " was not bound";
    for (const auto& e : entries) {
      // Replayed outside any capture: the impl recomputes the recorded output exactly.
      const Array replay = e.impl(e.inputs);
      EXPECT_TRUE(testing::allclose(replay, e.out, 0, 0)) << c.name << ": " << e.name;
    }
  }
}

TEST(LaxNnPrimitives, FusedOptimizerKernelIsOutOfPlaceWhileCaptured) {
  Array t = testing::wave({4}, 0.3);
  const std::vector<double> before = t.to_vector<double>();
  const Array g = testing::wave({4}, 1.1);
  std::vector<RecordingSink::Entry> entries;
  Array out;
  {
    CaptureScope scope;
    out = optim::detail::fused(
        "trace", [](auto a, auto b) { return b + decltype(a)(0.9) * a; }, std::move(t), g);
    entries = scope.sink.entries;
  }
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, std::string("trace"));
  EXPECT_EQ(entries[0].inputs[0].to_vector<double>(), before);  // the input kept its value
  const std::vector<double> gv = g.to_vector<double>(), ov = out.to_vector<double>();
  for (std::size_t i = 0; i < ov.size(); ++i) EXPECT_DOUBLE_EQ(ov[i], gv[i] + 0.9 * before[i]);
  // The impl, given inputs the caller still holds, leaves them untouched.
  const Array replay = entries[0].impl(entries[0].inputs);
  EXPECT_EQ(entries[0].inputs[0].to_vector<double>(), before);
  EXPECT_TRUE(testing::allclose(replay, out, 0, 0));
}

}  // namespace
}  // namespace loom
