// nn::tabulate (flax.linen.tabulate): a table of every module call of an init run with its
// path, type, input and output shapes, and its own variables per collection (count and bytes),
// then the totals.
//
//   std::cout << nn::tabulate(model, loom::random::key(0), x);
//   //  path      | module | inputs         | outputs        | params
//   //  /         | MLP    | float32[1,784] | float32[1,10]  |
//   //  /Dense_0  | Dense  | float32[1,784] | float32[1,128] | 100,480 (401.9 KB)
//   //  ...
//   //  Total Parameters: 101,770 (407.1 KB)
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "loom/nn/module.hpp"

namespace loom::nn {

namespace detail {
/// Formats the records and variables of an init run as the table above.
std::string format_table(const std::vector<CallRecord>& records, const Tree& variables);
/// Runs `run` with the call recorder on; restores it afterwards.
struct RecorderGuard {
  explicit RecorderGuard(std::vector<CallRecord>* r) : previous(recorder()) { set_recorder(r); }
  ~RecorderGuard() { set_recorder(previous); }
  std::vector<CallRecord>* previous;
};
}  // namespace detail

/// The table of `model`'s calls under init(rngs, args...).
template <typename M, typename... Args>
std::string tabulate(const M& model, const Rngs& rngs, Args&&... args) {
  std::vector<detail::CallRecord> records;
  Tree variables;
  {
    detail::RecorderGuard guard(&records);
    variables = model.init(rngs, std::forward<Args>(args)...);
  }
  return detail::format_table(records, variables);
}
template <typename M, typename... Args>
std::string tabulate(const M& model, const random::Key& key, Args&&... args) {
  return tabulate(model, Rngs{{"params", key}}, std::forward<Args>(args)...);
}

/// Counts and bytes of the leaves of a tree: {"params": 16 (64 B)} per collection.
struct VariableCount {
  std::int64_t count = 0;
  std::int64_t bytes = 0;
};
VariableCount count_variables(const Tree& tree);

}  // namespace loom::nn
