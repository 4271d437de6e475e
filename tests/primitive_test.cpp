// Every primitive in tests/op_list.hpp binds itself (detail::bind) when a transformation is
// active, with an impl that recomputes its output from the same inputs. This is the test that
// fails when a new op forgets its primitive record: jit and vmap would not see it.
#include "detail/primitive.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "op_list.hpp"
#include "test_util.hpp"

namespace {

using loom::Array;
using loom::DType;
namespace detail = loom::detail;

// A test-only capture: records every bound primitive, its output and its impl.
class RecordingSink : public detail::CaptureSink {
 public:
  struct Seen {
    std::string name;
    detail::Batching batching;
    Array out;
    std::vector<Array> inputs;
    detail::Impl impl;
  };

  void on_primitive(const detail::Primitive& prim, const Array& out,
                    const std::vector<const Array*>& inputs, const detail::Impl& impl) override {
    Seen s{.name = prim.name, .batching = prim.batching, .out = out, .inputs = {}, .impl = impl};
    for (const Array* a : inputs) s.inputs.push_back(*a);
    seen.push_back(std::move(s));
  }

  std::vector<Seen> seen;
};

// Installs the sink as the innermost capture for its lifetime.
class ScopedCapture {
 public:
  explicit ScopedCapture(RecordingSink* sink) : previous_(detail::current_capture()) {
    detail::current_capture() = sink;
    ++detail::g_transform_depth;
  }
  ~ScopedCapture() {
    --detail::g_transform_depth;
    detail::current_capture() = previous_;
  }
  ScopedCapture(const ScopedCapture&) = delete;
  ScopedCapture& operator=(const ScopedCapture&) = delete;

 private:
  detail::CaptureSink* previous_;
};

bool same_bits(const Array& a, const Array& b) {
  return a.valid() && b.valid() && a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

TEST(Primitive, EveryListedOpBindsItsPrimitiveWithAReplayingImpl) {
  const auto cases = loom::testing::numpy_op_cases();
  ASSERT_GT(cases.size(), 60u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Array eager = c.fn(c.inputs);
    RecordingSink sink;
    Array traced;
    {
      ScopedCapture capture(&sink);
      traced = c.fn(c.inputs);
    }
    EXPECT_TRUE(same_bits(eager, traced)) << "the op computes differently under a capture";
    // The primitive named by the case is bound, and its impl, replayed on the recorded inputs
    // (with no capture active), reproduces the recorded output bit for bit.
    bool found = false;
    for (const auto& s : sink.seen) {
      if (s.name != c.name) continue;
      found = true;
      const Array replay = s.impl(s.inputs);
      EXPECT_TRUE(same_bits(replay, s.out)) << "impl of " << s.name << " does not reproduce it";
    }
    EXPECT_TRUE(found) << "no primitive named '" << c.name << "' was bound";
    // The case's result itself is the output of a bound primitive (nothing computed behind the
    // capture's back after the last bind).
    bool result_bound = false;
    for (const auto& s : sink.seen) result_bound = result_bound || same_bits(s.out, traced);
    EXPECT_TRUE(result_bound) << "the result of " << c.name << " was not bound";
  }
}

TEST(Primitive, ImplsRecomputeFromNewInputs) {
  // An impl captures parameters, not inputs: replayed on other values it gives the op on them.
  namespace jnp = loom::numpy;
  RecordingSink sink;
  const Array x = loom::testing::op_list_detail::wave64({2, 3}, 0.1);
  {
    ScopedCapture capture(&sink);
    (void)jnp::sum(jnp::exp(x), 1);
  }
  ASSERT_EQ(sink.seen.size(), 2u);
  EXPECT_EQ(sink.seen[0].name, std::string("exp"));
  EXPECT_EQ(sink.seen[0].batching, detail::Batching::elementwise);
  EXPECT_EQ(sink.seen[1].name, std::string("sum"));
  EXPECT_EQ(sink.seen[1].batching, detail::Batching::loop);
  const Array y = loom::testing::op_list_detail::wave64({2, 3}, 2.0);
  EXPECT_TRUE(same_bits(sink.seen[0].impl({y}), jnp::exp(y)));
  EXPECT_TRUE(same_bits(sink.seen[1].impl({y}), jnp::sum(y, 1)));
}

TEST(Primitive, SecondOrderFlowsThroughTheNumpyVjps) {
  // grad of (grad f . sin) against central finite differences of the first-order gradient: the
  // VJPs of the reductions (composite under a higher-order trace), of slice/pad/concatenate/take/
  // take_along_axis (bound transpose primitives) and of the elementwise ops (residuals with
  // history) differentiate again.
  namespace jnp = loom::numpy;
  const Array x = loom::testing::op_list_detail::wave64({2, 3}, 0.4, 0.8);
  const Array idx(std::vector<int>{0, 2, 2, 4}, loom::Shape{4}, DType::int32);
  const Array idx2(std::vector<int>{2, 0, 1, 1}, loom::Shape{2, 2}, DType::int32);
  auto f = [&](const Array& v) {
    return jnp::sum(jnp::logsumexp(v, 1) * jnp::max(v * v, 1)) + jnp::sum(jnp::var(v, 0)) +
           jnp::sum(jnp::std(v, 1)) + jnp::sum(jnp::min(v * v * v, 0)) + jnp::sum(jnp::prod(v, 1)) +
           jnp::sum(jnp::square(jnp::take(jnp::pad(v, {{1, 0}, {0, 2}}, 0.0), idx, 1))) +
           jnp::sum(jnp::square(jnp::concatenate({v, v * v}, 1))) +
           jnp::sum(jnp::square(jnp::take_along_axis(v, idx2, 1))) +
           jnp::sum(jnp::square(jnp::slice(v, {jnp::Slice{}, jnp::Slice{0, 3, 2}}))) +
           jnp::sum(jnp::where(v > 0.0, jnp::exp(v), jnp::sin(v)) * jnp::mean(jnp::tanh(v), 0)) +
           jnp::sum(jnp::power(jnp::abs(v) + 1.0, v) / (jnp::sqrt(v * v + 1.0)));
  };
  auto gf = [&](const Array& v) { return jnp::sum(loom::grad(f)(v) * jnp::sin(v)); };
  const std::vector<double> h = loom::grad(gf)(x).to_vector<double>();
  const std::vector<double> fd = loom::testing::finite_difference_grad(gf, x, 1e-5);
  ASSERT_EQ(h.size(), fd.size());
  for (std::size_t i = 0; i < h.size(); ++i) EXPECT_NEAR(h[i], fd[i], 1e-6 * (1 + std::abs(fd[i])));
}

TEST(Primitive, NothingIsBoundWithoutATransformation) {
  namespace jnp = loom::numpy;
  RecordingSink sink;
  detail::current_capture() = &sink;  // installed, but no transformation is active
  (void)jnp::add(jnp::exp(loom::testing::op_list_detail::wave64({3}, 0.0)), 1.0);
  detail::current_capture() = nullptr;
  EXPECT_TRUE(sink.seen.empty());
}

}  // namespace
