// Every primitive in tests/op_list.hpp binds itself (detail::bind) when a transformation is
// active, with an impl that recomputes its output from the same inputs. This is the test that
// fails when a new op forgets its primitive record: jit and vmap would not see it.
#include "detail/primitive.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "op_list.hpp"

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

TEST(Primitive, NothingIsBoundWithoutATransformation) {
  namespace jnp = loom::numpy;
  RecordingSink sink;
  detail::current_capture() = &sink;  // installed, but no transformation is active
  (void)jnp::add(jnp::exp(loom::testing::op_list_detail::wave64({3}, 0.0)), 1.0);
  detail::current_capture() = nullptr;
  EXPECT_TRUE(sink.seen.empty());
}

}  // namespace
