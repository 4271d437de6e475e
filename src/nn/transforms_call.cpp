// nn::remat and nn::jit (see loom/nn/transforms_call.hpp): when the lifted call runs unlifted,
// and the rng streams they lift (flax/core/lift.py pack: the inner scope gets the outer rngs and
// shares the outer scope's rng counters).
#include "loom/nn/transforms_call.hpp"

#include "loom/random.hpp"
#include "nn/lift.hpp"

namespace loom::nn::detail {

struct CounterTree {
  std::map<std::string, std::uint64_t> counters;
  std::map<std::string, CounterTree> children;
};

namespace {

// Only subtrees that count something matter: an untouched child adds nothing to the key.
bool encode(const CounterTree& t, std::string& out) {
  std::string mine;
  for (const auto& [stream, n] : t.counters) {
    if (n != 0) mine += stream + "=" + std::to_string(n) + ",";
  }
  for (const auto& [name, sub] : t.children) {
    std::string child;
    if (encode(sub, child)) mine += name + "{" + child + "}";
  }
  out += mine;
  return !mine.empty();
}

}  // namespace

bool run_unlifted(const core::Scope& scope) {
  if (scope.is_initializing()) return true;
  // A mutable collection (batch_stats while training, intermediates being sown) is written
  // through the scope, which a pure function of the variables cannot do.
  const Tree variables = scope.variables();
  for (const auto& [collection, unused] : variables.dict()) {
    if (scope.is_mutable_collection(collection)) return true;
  }
  return false;
}

LiftedRngs lifted_rngs(core::Scope& scope) {
  LiftedRngs r;
  r.path = scope.path();
  r.module_type = scope.module_type();
  auto counters = std::make_shared<CounterTree>(save_rng_counters<CounterTree>(scope));
  for (const std::string& p : r.path) r.signature += "/" + p;
  r.signature += ":" + r.module_type + ":";
  for (const auto& [stream, key] : scope.rngs()) r.signature += stream + ";";
  r.signature += ":";
  encode(*counters, r.signature);
  r.counters = std::move(counters);
  return r;
}

Tree rng_keys(const core::Scope& scope) {
  Tree keys;
  keys.dict();
  for (const auto& [stream, key] : scope.rngs()) keys.dict()[stream] = Tree(key.data());
  return keys;
}

void store_counters(core::Scope& scope, const CounterTree& counters) {
  load_rng_counters(scope, counters);
}

InnerScope::InnerScope(const Tree& variables, const Tree& keys, const LiftedRngs& rngs)
    : variables_(std::make_unique<Tree>()) {
  variables_->dict();  // an empty dict of collections
  if (variables.is_dict()) {
    for (const auto& [col, sub] : variables.dict()) variables_->dict()[col] = nest(rngs.path, sub);
  }
  core::Rngs streams;
  for (const auto& [stream, key] : keys.dict()) streams[stream] = random::Key(key.leaf());
  root_ = core::Scope::make_root(variables_.get(), std::move(streams), core::CollectionFilter(),
                                 /*initializing=*/false);
  core::Scope* cur = root_.get();
  for (const std::string& name : rngs.path) {
    cur = &cur->push(name, /*reuse=*/true);
    cur->parent()->rewind();
  }
  cur->set_module_type(rngs.module_type);
  load_rng_counters(*cur, *rngs.counters);
  scope_ = cur;
}

InnerScope::~InnerScope() = default;

std::shared_ptr<const CounterTree> InnerScope::counters() const {
  return std::make_shared<CounterTree>(save_rng_counters<CounterTree>(*scope_));
}

void CountersAfter::put(const std::string& signature, std::shared_ptr<const CounterTree> counters) {
  std::lock_guard<std::mutex> lock(mu_);
  by_signature_[signature] = std::move(counters);
}

std::shared_ptr<const CounterTree> CountersAfter::get(const std::string& signature) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_signature_.find(signature);
  if (it == by_signature_.end()) {
    throw Error("nn.jit: no rng counts recorded for this trace (" + signature + ")");
  }
  return it->second;
}

}  // namespace loom::nn::detail
