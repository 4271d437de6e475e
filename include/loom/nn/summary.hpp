// nn::tabulate (flax.linen.tabulate): a table of the module calls of an init run: path, module
// type (and method, unless call), inputs, outputs, and per collection the module's own variables
// (name: dtype[shape]) with their count and bytes, then the totals. As Flax: a module called
// again is listed once (show_repeated), `depth` folds deeper submodules into their ancestor's
// row, paths have no leading "/" (the top module's is empty), rows come in call order.
//
//   std::cout << nn::tabulate(model, loom::random::key(0), x);
//   std::cout << nn::tabulate(model, loom::random::key(0), {.depth = 1}, x);
//   // MLP Summary
//   //  path    | module | inputs        | outputs       | params
//   //  ----------------------------------------------------------------
//   //          | MLP    | float32[1,3]  | float32[1,2]  |
//   //  ----------------------------------------------------------------
//   //  Dense_0 | Dense  | float32[1,3]  | float32[1,4]  | bias: float32[4]
//   //          |        |               |               | kernel: float32[3,4]
//   //          |        |               |               |
//   //          |        |               |               | 16 (64 B)
//   //  ...
//   //  Total Parameters: 26 (104 B)
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loom/nn/module.hpp"

namespace loom::nn {

/// Flax's tabulate options.
struct TabulateOptions {
  std::optional<int> depth;    // None: every level; 0: the top module only, its row counting all
  bool show_repeated = false;  // list every call of a module called more than once
};

namespace detail {
/// Formats the records and variables of an init run as the table above.
std::string format_table(const std::string& title, const std::vector<CallRecord>& records,
                         const Tree& variables, const TabulateOptions& options);
/// Runs `run` with the call recorder on; restores it afterwards.
struct RecorderGuard {
  explicit RecorderGuard(std::vector<CallRecord>* r) : previous(recorder()) { set_recorder(r); }
  ~RecorderGuard() { set_recorder(previous); }
  std::vector<CallRecord>* previous;
};
template <typename M, typename... Args>
std::pair<std::vector<CallRecord>, Tree> record_init(const M& model, const Rngs& rngs,
                                                     Args&&... args) {
  check_module_type<M>();
  std::vector<CallRecord> records;
  Tree variables;
  {
    RecorderGuard guard(&records);
    variables = model.init(rngs, std::forward<Args>(args)...);
  }
  return {std::move(records), std::move(variables)};
}
}  // namespace detail

/// The table of `model`'s calls under init(rngs, [options,] args...).
template <typename M, typename... Args>
std::string tabulate(const M& model, const Rngs& rngs, const TabulateOptions& options,
                     Args&&... args) {
  auto [records, variables] = detail::record_init(model, rngs, std::forward<Args>(args)...);
  return detail::format_table(detail::type_name<M>() + " Summary", records, variables, options);
}
template <typename M, typename... Args>
requires(!detail::first_is_v<TabulateOptions, Args...>) std::string
    tabulate(const M& model, const Rngs& rngs, Args&&... args) {
  return tabulate(model, rngs, TabulateOptions{}, std::forward<Args>(args)...);
}
template <typename M, typename... Args>
std::string tabulate(const M& model, const random::Key& key, Args&&... args) {
  return tabulate(model, Rngs{{"params", key}}, std::forward<Args>(args)...);
}
template <typename M, typename... Args>
std::string tabulate(const M& model, const random::Key& key, const TabulateOptions& options,
                     Args&&... args) {
  return tabulate(model, Rngs{{"params", key}}, options, std::forward<Args>(args)...);
}

/// Flax's Module.module_paths: every submodule path reached by init(rngs, args...) (the top
/// module's is "", then "Dense_0", "Block_0/Dense_0", ... in call order, each once) with its
/// module type.
///   for (auto& [path, type] : nn::module_paths(model, loom::random::key(0), x)) ...
template <typename M, typename... Args>
std::vector<std::pair<std::string, std::string>> module_paths(const M& model, const Rngs& rngs,
                                                              Args&&... args) {
  auto records = detail::record_init(model, rngs, std::forward<Args>(args)...).first;
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : records) {
    std::string path = r.path == "/" ? std::string() : r.path.substr(1);
    bool seen = false;
    for (const auto& [p, unused] : out) seen = seen || p == path;
    if (!seen) out.emplace_back(std::move(path), r.type);
  }
  return out;
}
template <typename M, typename... Args>
std::vector<std::pair<std::string, std::string>> module_paths(const M& model,
                                                              const random::Key& key,
                                                              Args&&... args) {
  return module_paths(model, Rngs{{"params", key}}, std::forward<Args>(args)...);
}

/// Counts and bytes of the leaves of a tree: {"params": 16 (64 B)} per collection.
struct VariableCount {
  std::int64_t count = 0;
  std::int64_t bytes = 0;
};
VariableCount count_variables(const Tree& tree);

}  // namespace loom::nn
