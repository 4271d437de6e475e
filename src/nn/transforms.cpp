// nn::scan and nn::vmap's machinery (loom/nn/transforms.hpp): lift.py's pack (variable and rng
// groups, an inner scope per iteration with the outer path, publishing) run as an eager loop.
#include "loom/nn/transforms.hpp"

#include <set>

#include "loom/core/filters.hpp"
#include "nn/lift.hpp"

namespace loom::nn::detail {

namespace {

const Tree* descend(const Tree& t, const std::vector<std::string>& path) {
  const Tree* cur = &t;
  for (const std::string& p : path) {
    if (!cur->is_dict() || !cur->contains(p)) return nullptr;
    cur = &cur->at(p);
  }
  return cur;
}

std::string leaf_path(const std::string& col, const std::vector<std::string>& path) {
  std::string s = col;
  for (const std::string& p : path) s += "/" + p;
  return s;
}

}  // namespace

int normalize_axis(const char* what, int axis, int ndim) {
  const int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) {
    throw Error(std::string(what) + ": axis " + std::to_string(axis) +
                " is out of range for an argument of rank " + std::to_string(ndim) +
                module_path_suffix());
  }
  return a;
}

std::optional<std::int64_t> axis_size(const char* what, const Tree& x, int axis) {
  const std::vector<Array> leaves = tree_leaves(x);
  if (leaves.empty()) return std::nullopt;
  return axis_size(what, leaves.front(), axis);
}

Tree slice_at(const Tree& x, std::int64_t i, int axis) {
  return tree_map([&](const Array& a) { return slice_at(a, i, axis); }, x);
}

Tree stack_at(const std::vector<Tree>& xs, int axis) {
  if (xs.empty()) return Tree{};
  if (xs.front().is_leaf()) {
    std::vector<Array> leaves;
    leaves.reserve(xs.size());
    for (const Tree& t : xs) {
      if (!t.is_leaf())
        throw Error("nn.scan/vmap: iterations returned trees of different structure");
      leaves.push_back(t.leaf());
    }
    return numpy::stack(leaves, axis);
  }
  Tree out;
  for (const auto& [key, unused] : xs.front().dict()) {
    std::vector<Tree> sub;
    sub.reserve(xs.size());
    for (const Tree& t : xs) {
      if (!t.is_dict() || !t.contains(key)) {
        throw Error("nn.scan/vmap: iterations returned trees of different structure (key \"" + key +
                    "\")");
      }
      sub.push_back(t.at(key));
    }
    out.dict()[key] = stack_at(sub, axis);
  }
  return out;
}

void throw_in_axes_count(const char* what, std::size_t axes, std::size_t args) {
  throw Error(std::string(what) + ": in_axes has " + std::to_string(axes) +
              " entries but the call has " + std::to_string(args) +
              " scanned/mapped arguments; give one axis (or nn::broadcast) per argument, or "
              "one for all" +
              module_path_suffix());
}

void throw_axis(const char* what, int axis, const Shape& shape) {
  throw Error(std::string(what) + ": axis " + std::to_string(axis) + " is out of range for shape " +
              shape.str() + module_path_suffix());
}

std::vector<std::optional<int>> arg_axes(const char* what, const InAxes& in_axes, std::size_t n) {
  if (!in_axes.is_list) return std::vector<std::optional<int>>(n, in_axes.all);
  if (in_axes.per_arg.size() != n) throw_in_axes_count(what, in_axes.per_arg.size(), n);
  return in_axes.per_arg;
}

std::int64_t resolve_size(const char* what, const std::vector<std::int64_t>& sizes,
                          std::optional<std::int64_t> given) {
  const std::set<std::int64_t> distinct(sizes.begin(), sizes.end());
  const bool scan = std::string(what) == "nn.scan";
  auto list = [&] {
    std::string s;
    for (std::int64_t v : distinct) s += (s.empty() ? "" : ", ") + std::to_string(v);
    return "{" + s + "}";
  };
  if (distinct.size() > 1) {
    throw Error(std::string(what) +
                (scan ? ": Inconsistent scan lengths: " : ": Inconsistent batch axis sizes: ") +
                list() + module_path_suffix());
  }
  if (!given) {
    if (distinct.empty()) {
      throw Error(std::string(what) +
                  (scan ? ": length should be specified manually (no argument is scanned)."
                        : ": axis_size should be specified manually (no argument is mapped).") +
                  module_path_suffix());
    }
    return *distinct.begin();
  }
  if (*given < 0) {
    throw Error(std::string(what) + ": " + (scan ? "length" : "axis_size") +
                " must be non-negative, got " + std::to_string(*given) + module_path_suffix());
  }
  if (!distinct.empty() && *distinct.begin() != *given) {
    throw Error(std::string(what) + ": " + (scan ? "length " : "axis_size ") +
                std::to_string(*given) + " disagrees with the arguments' axis size " +
                std::to_string(*distinct.begin()) + module_path_suffix());
  }
  return *given;
}

std::vector<LiftRun::Group> scan_groups(const ScanOptions& o) {
  // lift.scan's order: (variable_broadcast, variable_carry) + variable_axes.
  std::vector<LiftRun::Group> g{{o.variable_broadcast, LiftRun::Kind::broadcast, 0},
                                {o.variable_carry, LiftRun::Kind::carry, 0}};
  for (const auto& [filter, axis] : o.variable_axes) {
    g.push_back({filter, LiftRun::Kind::axis, axis});
  }
  return g;
}

std::vector<LiftRun::Group> vmap_groups(const VmapOptions& o) {
  std::vector<LiftRun::Group> g;
  for (const auto& [filter, axis] : o.variable_axes) {
    g.push_back({filter, axis ? LiftRun::Kind::axis : LiftRun::Kind::shared, axis.value_or(0)});
  }
  return g;
}

// ---- LiftRun ------------------------------------------------------------------------------

struct LiftRun::State {
  core::Scope* outer;
  std::vector<Group> groups;
  const char* what;
  std::vector<Tree> in;  // per group: {collection: subtree at the module's path}
  core::CollectionFilter lifted;
  core::CollectionFilter inner_mutable;
  // rng streams reaching the body: base key, split or not
  std::vector<std::tuple<std::string, random::Key, bool>> streams;
  std::vector<random::Key> split_keys;  // per stream (valid when split)
  std::int64_t size = -1;
  RngCounterTree counters0, counters1, counters_out;
  bool have_counters_out = false;
  // the running iteration
  std::unique_ptr<Tree> variables;
  std::unique_ptr<core::Scope> root;
  core::Scope* inner = nullptr;
  // results
  std::vector<Tree> broadcast;             // per group, current broadcast / carry values
  std::vector<std::vector<Tree>> stacked;  // per group, per iteration
  std::vector<Tree> shared_out;
  std::vector<bool> shared_seen;
};

LiftRun::LiftRun(core::Scope& outer, std::vector<Group> groups, const SplitRngs& split_rngs,
                 const char* what)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.outer = &outer;
  s.groups = std::move(groups);
  s.what = what;
  std::vector<core::CollectionFilter> filters;
  for (const Group& g : s.groups) {
    filters.push_back(g.filter);
    s.lifted = core::CollectionFilter::union_of(s.lifted, g.filter);
  }
  s.in = core::group_collections(outer.variables(), filters).first;
  s.inner_mutable = core::CollectionFilter::intersection(outer.mutable_filter(), s.lifted);
  for (const auto& [stream, key] : outer.rngs()) {
    for (const auto& [filter, split] : split_rngs) {
      if (filter.contains(stream)) {
        s.streams.emplace_back(stream, key, split);
        break;
      }
    }
  }
  s.counters0 = save_rng_counters<RngCounterTree>(outer);
  s.broadcast = s.in;
  s.stacked.resize(s.groups.size());
  s.shared_out.resize(s.groups.size());
  s.shared_seen.assign(s.groups.size(), false);
}

LiftRun::~LiftRun() = default;

std::vector<std::int64_t> LiftRun::variable_axis_sizes() const {
  std::vector<std::int64_t> sizes;
  for (std::size_t g = 0; g < s_->groups.size(); ++g) {
    if (s_->groups[g].kind != Kind::axis) continue;
    for (const auto& [path, leaf] : tree_leaves_with_path(s_->in[g])) {
      const int ax = s_->groups[g].axis < 0 ? s_->groups[g].axis + leaf.ndim() : s_->groups[g].axis;
      if (ax < 0 || ax >= leaf.ndim()) {
        throw Error(std::string(s_->what) + ": variable \"" + leaf_path("", path).substr(1) +
                    "\" of shape " + leaf.shape().str() + " has no axis " +
                    std::to_string(s_->groups[g].axis) + module_path_suffix());
      }
      sizes.push_back(leaf.shape()[ax]);
    }
  }
  return sizes;
}

void LiftRun::set_size(std::int64_t n) {
  State& s = *s_;
  s.size = n;
  for (std::size_t g = 0; g < s.groups.size(); ++g) {
    if (s.groups[g].kind != Kind::axis) continue;
    for (const auto& [path, leaf] : tree_leaves_with_path(s.in[g])) {
      const int ax = normalize_axis(s.what, s.groups[g].axis, leaf.ndim());
      if (leaf.shape()[ax] != n) {
        throw Error(std::string(s.what) + ": variable \"" + leaf_path("", path).substr(1) +
                    "\" of shape " + leaf.shape().str() + " has " +
                    std::to_string(leaf.shape()[ax]) + " entries on axis " +
                    std::to_string(s.groups[g].axis) + ", but the " +
                    (std::string(s.what) == "nn.scan" ? "scan length" : "axis size") + " is " +
                    std::to_string(n) + module_path_suffix());
      }
    }
  }
  s.split_keys.clear();
  for (const auto& [stream, key, split] : s.streams) {
    s.split_keys.push_back(split && n > 0 ? random::split(key, n) : key);
  }
  s.counters1 = s.counters0;
}

bool LiftRun::shadow_pass_matters() const {
  if (!s_->streams.empty()) return true;
  for (std::size_t g = 0; g < s_->groups.size(); ++g) {
    if (s_->groups[g].kind == Kind::broadcast && !s_->groups[g].filter.empty() &&
        !core::CollectionFilter::intersection(s_->inner_mutable, s_->groups[g].filter).empty()) {
      return true;
    }
  }
  return false;
}

core::Scope& LiftRun::enter(std::int64_t i, bool shadow) {
  State& s = *s_;
  core::Scope& outer = *s.outer;
  auto vars = std::make_unique<Tree>();
  vars->dict();  // an empty dict of collections
  for (std::size_t g = 0; g < s.groups.size(); ++g) {
    const Kind kind = s.groups[g].kind;
    const Tree& src = (kind == Kind::axis || kind == Kind::shared) ? s.in[g] : s.broadcast[g];
    if (!src.is_dict()) continue;
    for (const auto& [col, sub] : src.dict()) {
      Tree value = kind == Kind::axis ? slice_at(sub, i, s.groups[g].axis) : sub;
      vars->dict()[col] = nest(outer.path(), std::move(value));
    }
  }
  core::Rngs rngs;
  for (std::size_t k = 0; k < s.streams.size(); ++k) {
    const auto& [stream, key, split] = s.streams[k];
    rngs[stream] = split ? s.split_keys[k][i] : key;
  }
  s.variables = std::move(vars);
  s.root = core::Scope::make_root(s.variables.get(), std::move(rngs), s.inner_mutable,
                                  outer.is_initializing(), outer.is_abstract());
  core::Scope* cur = s.root.get();
  for (const std::string& name : outer.path()) {
    cur = &cur->push(name, /*reuse=*/true);
    cur->parent()->rewind();
  }
  cur->set_module_type(outer.module_type());
  // lift.py hands the body the outer scope's counters: the shadow pass starts from them, the
  // real iterations all from the counts after the shadow pass (JAX traces the body once).
  load_rng_counters(*cur, shadow ? s.counters0 : s.counters1);
  s.inner = cur;
  return *cur;
}

void LiftRun::leave(std::int64_t i, bool shadow) {
  State& s = *s_;
  const Tree all = s.root->mutable_variables();
  Tree mine;
  mine.dict();
  if (all.is_dict()) {
    for (const auto& [col, sub] : all.dict()) {
      if (const Tree* at = descend(sub, s.outer->path())) mine.dict()[col] = *at;
    }
  }
  std::vector<core::CollectionFilter> filters;
  for (const Group& g : s.groups) filters.push_back(g.filter);
  std::vector<Tree> out = core::group_collections(mine, filters).first;
  const RngCounterTree counters = save_rng_counters<RngCounterTree>(*s.inner);
  for (std::size_t g = 0; g < s.groups.size(); ++g) {
    const Kind kind = s.groups[g].kind;
    if (shadow) {
      // lift.scan's constancy pass: the broadcast outputs (immutable inputs added back) feed
      // the loop; everything else it computed is dropped.
      if (kind == Kind::broadcast && out[g].is_dict()) {
        for (const auto& [col, sub] : out[g].dict()) s.broadcast[g].dict()[col] = sub;
      }
      continue;
    }
    if (kind == Kind::carry && out[g].is_dict()) {
      for (const auto& [col, sub] : out[g].dict()) s.broadcast[g].dict()[col] = sub;
    } else if (kind == Kind::axis) {
      if (s.stacked[g].empty()) s.stacked[g].resize(static_cast<std::size_t>(s.size));
      s.stacked[g][static_cast<std::size_t>(i)] = out[g];
    } else if (kind == Kind::shared && !s.shared_seen[g]) {
      s.shared_out[g] = out[g];  // equal at every index under jax.vmap; index 0's
      s.shared_seen[g] = true;
    }
    // A broadcast variable first created in the loop (no constancy pass): keep it.
    if (kind == Kind::broadcast && out[g].is_dict()) {
      for (const auto& [col, sub] : out[g].dict()) {
        if (!s.broadcast[g].is_dict() || !s.broadcast[g].contains(col)) {
          s.broadcast[g].dict()[col] = sub;
        }
      }
    }
  }
  if (shadow) {
    s.counters1 = counters;
  } else {
    s.counters_out = counters;
    s.have_counters_out = true;
  }
  s.inner = nullptr;
  s.root.reset();
  s.variables.reset();
}

void LiftRun::finish() {
  State& s = *s_;
  core::Scope& outer = *s.outer;
  auto publish = [&](const Tree& groups) {
    if (!groups.is_dict()) return;
    for (const auto& [col, sub] : groups.dict()) {
      if (!outer.is_mutable_collection(col) || !sub.is_dict()) continue;
      for (const auto& [name, value] : sub.dict()) outer.put_variable(col, name, value);
    }
  };
  for (std::size_t g = 0; g < s.groups.size(); ++g) {
    switch (s.groups[g].kind) {
      case Kind::broadcast:
      case Kind::carry:
        publish(s.broadcast[g]);
        break;
      case Kind::shared:
        publish(s.shared_out[g]);
        break;
      case Kind::axis: {
        const auto& per = s.stacked[g];
        if (per.empty() || !per.front().is_dict()) break;
        Tree stacked;
        for (const auto& [col, unused] : per.front().dict()) {
          std::vector<Tree> cols;
          for (const Tree& t : per) {
            if (!t.is_dict() || !t.contains(col)) {
              throw Error(std::string(s.what) + ": collection \"" + col +
                          "\" was not written by every iteration" + module_path_suffix());
            }
            cols.push_back(t.at(col));
          }
          stacked.dict()[col] = stack_at(cols, s.groups[g].axis);
        }
        publish(stacked);
        break;
      }
    }
  }
  load_rng_counters(outer, s.have_counters_out ? s.counters_out : s.counters1);
}

}  // namespace loom::nn::detail
