// flax.core.filters (see loom/core/filters.hpp).
#include "loom/core/filters.hpp"

#include <algorithm>
#include <iterator>

#include "loom/error.hpp"

namespace loom::core {

// ---- CollectionFilter ----------------------------------------------------------------------

CollectionFilter CollectionFilter::deny(std::vector<std::string> names) {
  CollectionFilter f;
  f.kind_ = Kind::deny;
  f.names_ = std::move(names);
  return f;
}

bool CollectionFilter::contains(const std::string& collection) const {
  switch (kind_) {
    case Kind::none:
      return false;
    case Kind::all:
      return true;
    case Kind::list:
      return std::find(names_.begin(), names_.end(), collection) != names_.end();
    case Kind::deny:
      return std::find(names_.begin(), names_.end(), collection) == names_.end();
  }
  return false;
}

bool CollectionFilter::empty() const {
  return kind_ == Kind::none || (kind_ == Kind::list && names_.empty());
}

std::string CollectionFilter::str() const {
  auto list = [this] {
    std::string s = "[";
    for (const auto& n : names_) s += (s.size() > 1 ? ", '" : "'") + n + "'";
    return s + "]";
  };
  switch (kind_) {
    case Kind::none:
      return "False";
    case Kind::all:
      return "True";
    case Kind::list:
      return list();
    case Kind::deny:
      return "DenyList(" + list() + ")";
  }
  return "";
}

namespace {
// The algebra of filters over two kinds: a finite list (none = the empty list) and a deny list
// (all = the empty deny list).
struct SetForm {
  bool deny;
  std::vector<std::string> names;  // sorted, unique
};
std::vector<std::string> sorted_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}
std::vector<std::string> set_op(const std::vector<std::string>& a,
                                const std::vector<std::string>& b, char op) {
  std::vector<std::string> out;
  if (op == '|') std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  if (op == '&') {
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  }
  if (op == '-')
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}
}  // namespace

CollectionFilter CollectionFilter::complement() const {
  CollectionFilter out;
  switch (kind_) {
    case Kind::none:
      out.kind_ = Kind::all;
      break;
    case Kind::all:
      out.kind_ = Kind::none;
      break;
    case Kind::list:
      out = deny(names_);
      break;
    case Kind::deny:
      out = CollectionFilter(names_);
      break;
  }
  return out;
}

CollectionFilter CollectionFilter::union_of(const CollectionFilter& a, const CollectionFilter& b) {
  return intersection(a.complement(), b.complement()).complement();
}

CollectionFilter CollectionFilter::intersection(const CollectionFilter& a,
                                                const CollectionFilter& b) {
  const bool a_deny = a.kind_ == Kind::all || a.kind_ == Kind::deny;
  const bool b_deny = b.kind_ == Kind::all || b.kind_ == Kind::deny;
  const auto an = sorted_unique(
      a.kind_ == Kind::list || a.kind_ == Kind::deny ? a.names_ : std::vector<std::string>{});
  const auto bn = sorted_unique(
      b.kind_ == Kind::list || b.kind_ == Kind::deny ? b.names_ : std::vector<std::string>{});
  SetForm r{false, {}};
  if (!a_deny && !b_deny) r = {false, set_op(an, bn, '&')};
  if (!a_deny && b_deny) r = {false, set_op(an, bn, '-')};
  if (a_deny && !b_deny) r = {false, set_op(bn, an, '-')};
  if (a_deny && b_deny) r = {true, set_op(an, bn, '|')};
  if (r.names.empty()) return CollectionFilter(r.deny);
  return r.deny ? deny(std::move(r.names)) : CollectionFilter(std::move(r.names));
}

CollectionFilter CollectionFilter::difference(const CollectionFilter& a,
                                              const CollectionFilter& b) {
  return intersection(a, b.complement());
}

std::pair<std::vector<Tree>, Tree> group_collections(const Tree& variables,
                                                     const std::vector<CollectionFilter>& filters) {
  if (!variables.is_dict())
    throw Error("group_collections: variables must be a dict of collections");
  std::vector<Tree> groups(filters.size());
  Tree rest;
  for (const auto& [col, sub] : variables.dict()) {
    std::size_t i = 0;
    while (i < filters.size() && !filters[i].contains(col)) ++i;
    (i < filters.size() ? groups[i] : rest).dict()[col] = sub;
  }
  return {std::move(groups), std::move(rest)};
}

}  // namespace loom::core
