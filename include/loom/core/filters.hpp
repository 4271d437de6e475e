// flax.core.filters: CollectionFilter, which variable collections an init/apply may change,
// with Flax's union/intersection/difference, and group_collections.
//
//   core::CollectionFilter none;                          // False: nothing is mutable
//   core::CollectionFilter bs = "batch_stats";            // one collection
//   auto most = core::CollectionFilter::deny({"intermediates"});   // flax.core.DenyList
//   auto both = core::CollectionFilter::union_of(bs, "cache");
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "loom/tree.hpp"

namespace loom::core {

/// Flax's CollectionFilter: which variable collections are mutable.
///   CollectionFilter none;                          // False: nothing is mutable
///   CollectionFilter all = true;                    // True: everything
///   CollectionFilter bs = "batch_stats";            // one collection
///   CollectionFilter two = {"batch_stats", "intermediates"};
///   auto most = CollectionFilter::deny({"intermediates"});   // flax.core.DenyList
class CollectionFilter {
 public:
  CollectionFilter() = default;
  CollectionFilter(bool all) : kind_(all ? Kind::all : Kind::none) {}                 // NOLINT
  CollectionFilter(const char* name) : kind_(Kind::list), names_{name} {}             // NOLINT
  CollectionFilter(std::string name) : kind_(Kind::list), names_{std::move(name)} {}  // NOLINT
  CollectionFilter(std::initializer_list<std::string> names) : kind_(Kind::list), names_(names) {}
  CollectionFilter(std::vector<std::string> names)  // NOLINT
      : kind_(Kind::list), names_(std::move(names)) {}
  /// Everything except `names` (flax.core.DenyList).
  static CollectionFilter deny(std::vector<std::string> names);

  bool contains(const std::string& collection) const;
  /// True when no collection can pass (Flax's is_filter_empty).
  bool empty() const;
  std::string str() const;

  /// flax.core.filters: the collections either filter lets through (filter_union), both let
  /// through (filter_intersection), or `a` lets through and `b` does not (filter_difference).
  /// Exact for every filter kind (finite lists and deny lists are closed under these).
  ///   auto f = CollectionFilter::union_of("batch_stats", "cache");
  ///   auto g = CollectionFilter::difference(true, "params");   // DenyList(["params"])
  static CollectionFilter union_of(const CollectionFilter& a, const CollectionFilter& b);
  static CollectionFilter intersection(const CollectionFilter& a, const CollectionFilter& b);
  static CollectionFilter difference(const CollectionFilter& a, const CollectionFilter& b);
  /// Every collection except those this filter lets through.
  CollectionFilter complement() const;

  /// The same kind and names (as Flax compares filter values; {"a", "b"} != {"b", "a"}).
  friend bool operator==(const CollectionFilter&, const CollectionFilter&) = default;

 private:
  enum class Kind : std::uint8_t { none, all, list, deny };
  Kind kind_ = Kind::none;
  std::vector<std::string> names_;
};

/// flax.core.filters's group_collections: splits `variables` into one group per filter, each
/// collection going to the first filter that lets it through; the last group holds the rest.
///   auto [groups, rest] = core::group_collections(variables, {"params", true});
std::pair<std::vector<Tree>, Tree> group_collections(const Tree& variables,
                                                     const std::vector<CollectionFilter>& filters);

}  // namespace loom::core
