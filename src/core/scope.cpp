// loom::core::Scope: the variables, rngs and names of one module, as flax/core/scope.py.
#include "loom/core/scope.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "core/sha1.hpp"
#include "loom/numpy/creation.hpp"

namespace loom::core {

namespace detail {
struct RootState {
  const Tree* frozen = nullptr;  // the caller's variables: immutable collections are read here
  Tree owned;                    // bind's own copy of the variables
  Tree mutable_vars;             // the mutable collections (copied in at the start)
  CollectionFilter filter;
  Rngs rngs;
  bool initializing = false;
  bool abstract = false;
  std::shared_ptr<const int> alive = std::make_shared<const int>(0);  // see Scope::liveness
};
}  // namespace detail

Tree copy(const Tree& variables, const Tree& add_or_replace) {
  if (!variables.is_dict() || !add_or_replace.is_dict()) {
    throw Error("core::copy: both arguments must be dicts of collections");
  }
  Tree out = variables;
  for (const auto& [col, sub] : add_or_replace.dict()) out.dict()[col] = sub;
  return out;
}

bool operator==(const DeclarationSite& a, const DeclarationSite& b) {
  if (a.line != b.line || a.column != b.column) return false;
  if (a.file == b.file) return true;
  return a.file != nullptr && b.file != nullptr && std::strcmp(a.file, b.file) == 0;
}

// ---- Variable ------------------------------------------------------------------------------

Array Variable::value() const {
  const Tree& t = scope_->get_variable(collection_, name_);
  if (!t.is_leaf()) {
    throw Error("Variable.value: \"" + name_ + "\" in collection \"" + collection_ + "\" of \"" +
                scope_->path_text() + "\" holds a tree, not an array; use tree()");
  }
  return t.leaf();
}
Tree Variable::tree() const {
  return scope_->get_variable(collection_, name_);
}
void Variable::set_value(Tree value) const {
  scope_->put_variable(collection_, name_, std::move(value));
}
bool Variable::is_mutable() const {
  return scope_->is_mutable_collection(collection_);
}

// ---- Scope ---------------------------------------------------------------------------------

Scope::Scope(detail::RootState* root, Scope* parent, std::string name)
    : root_(root), parent_(parent), name_(std::move(name)) {
  if (parent_ != nullptr) {
    path_ = parent_->path_;
    path_.push_back(name_);
  }
}

Scope::~Scope() = default;

std::unique_ptr<Scope> Scope::make_root(const Tree* variables, Rngs rngs,
                                        CollectionFilter mutable_collections, bool initializing,
                                        bool abstract) {
  for (const auto& [stream, key] : rngs) {
    if (!key.valid() || !key.shape().empty()) {
      throw InvalidRngError(
          "rngs should be a dictionary mapping strings to `jax.PRNGKey`. (stream \"" + stream +
          "\" holds " +
          (key.valid() ? "a batch of keys of shape " + key.shape().str()
                       : std::string("an empty key")) +
          ")");
    }
  }
  auto state = std::make_unique<detail::RootState>();
  state->frozen = variables;
  state->filter = std::move(mutable_collections);
  state->rngs = std::move(rngs);
  state->initializing = initializing;
  state->abstract = abstract;
  if (variables != nullptr && variables->is_dict()) {
    for (const auto& [col, sub] : variables->dict()) {
      if (state->filter.contains(col)) state->mutable_vars.dict()[col] = sub;
    }
  }
  std::unique_ptr<Scope> root(new Scope(state.get(), nullptr, ""));
  root->owned_root_ = std::move(state);
  return root;
}

void Scope::own_variables() {
  if (root_->frozen != nullptr && root_->frozen != &root_->owned) {
    root_->owned = *root_->frozen;
    root_->frozen = &root_->owned;
  }
}

std::weak_ptr<const void> Scope::liveness() const {
  return root_->alive;
}

const Rngs& Scope::rngs() const {
  return root_->rngs;
}
std::vector<std::string> Scope::child_names() const {
  std::vector<std::string> names;
  names.reserve(children_.size());
  for (const auto& [name, unused] : children_) names.push_back(name);
  return names;
}
const CollectionFilter& Scope::mutable_filter() const {
  return root_->filter;
}

std::string Scope::path_text() const {
  std::string s;
  for (const auto& p : path_) s += "/" + p;
  return s.empty() ? "/" : s;
}

std::string Scope::where() const {
  return " (module \"" + path_text() + "\")";
}

Scope& Scope::push(const std::string& name, bool reuse) {
  if (!reuse || reservations_.count(name) == 0) reserve(name, std::nullopt, "submodule");
  auto& child = children_[name];
  if (!child) child.reset(new Scope(root_, this, name));
  return *child;
}

std::string Scope::default_name(const std::string& prefix) const {
  for (int i = 0;; ++i) {
    std::string name = prefix + std::to_string(i);
    if (reservations_.count(name) == 0) return name;
  }
}

void Scope::rewind() {
  reservations_.clear();
  autoname_.clear();
}

bool Scope::name_reserved(const std::string& name,
                          const std::optional<std::string>& collection) const {
  auto it = reservations_.find(name);
  if (it == reservations_.end()) return false;
  // The same name may serve two variables in different collections (Flax's rule).
  for (const auto& c : it->second) {
    if (!c || !collection || *c == *collection) return true;
  }
  return false;
}

void Scope::reserve(const std::string& name, const std::optional<std::string>& collection,
                    const char* kind) {
  if (name_reserved(name, collection)) {
    const std::string module =
        !module_type_.empty() ? module_type_ : (name_.empty() ? std::string("None") : name_);
    throw NameInUseError(std::string("Could not create ") + kind + " \"" + name + "\" in Module " +
                         module + ": Name in use." + where());
  }
  reservations_[name].push_back(collection);
}

Scope* Scope::find_child(const std::string& name) const {
  auto it = children_.find(name);
  return it == children_.end() ? nullptr : it->second.get();
}

bool Scope::reserved_for_submodule(const std::string& name) const {
  auto it = reservations_.find(name);
  if (it == reservations_.end()) return false;
  return std::find(it->second.begin(), it->second.end(), std::nullopt) != it->second.end();
}

bool Scope::has_collection(const std::string& collection) const {
  const Tree* base = is_mutable_collection(collection) ? &root_->mutable_vars : root_->frozen;
  return base != nullptr && base->contains(collection);
}

int Scope::next_autoname_index(const std::string& type_name) {
  return autoname_[type_name]++;
}

bool Scope::is_mutable_collection(const std::string& collection) const {
  return root_->filter.contains(collection);
}

bool Scope::is_collection_empty(const std::string& collection) const {
  const Tree* base = is_mutable_collection(collection) ? &root_->mutable_vars : root_->frozen;
  if (base == nullptr || !base->is_dict()) return true;
  auto it = base->dict().find(collection);
  return it == base->dict().end() || it->second.is_leaf() || it->second.dict().empty();
}

const Tree* Scope::collection_subtree(const std::string& collection) const {
  const Tree* t = is_mutable_collection(collection) ? &root_->mutable_vars : root_->frozen;
  if (t == nullptr || !t->is_dict()) return nullptr;
  auto it = t->dict().find(collection);
  if (it == t->dict().end()) return nullptr;
  t = &it->second;
  for (const auto& p : path_) {
    if (!t->is_dict()) return nullptr;
    auto jt = t->dict().find(p);
    if (jt == t->dict().end()) return nullptr;
    t = &jt->second;
  }
  return t->is_dict() ? t : nullptr;
}

Tree& Scope::mutable_collection_subtree(const std::string& collection) {
  Tree* t = &root_->mutable_vars.dict()[collection];
  for (const auto& p : path_) {
    if (!t->is_dict()) {
      throw Error("Scope: cannot store variables under \"" + path_text() + "\" in collection \"" +
                  collection + "\": the tree holds an array on that path");
    }
    t = &t->dict()[p];
  }
  return *t;
}

const Tree* Scope::find_variable(const std::string& collection, const std::string& name) const {
  const Tree* sub = collection_subtree(collection);
  if (sub == nullptr) return nullptr;
  auto it = sub->dict().find(name);
  return it == sub->dict().end() ? nullptr : &it->second;
}

bool Scope::has_variable(const std::string& collection, const std::string& name) const {
  return find_variable(collection, name) != nullptr;
}

const Tree& Scope::get_variable(const std::string& collection, const std::string& name) const {
  if (const Tree* v = find_variable(collection, name)) return *v;
  if (is_collection_empty(collection)) {
    throw ScopeCollectionNotFound("Tried to access \"" + name + "\" from collection \"" +
                                  collection + "\" in \"" + path_text() +
                                  "\" but the collection is empty.");
  }
  throw ScopeVariableNotFoundError("No Variable named \"" + name + "\" for collection \"" +
                                   collection + "\" exists in \"" + path_text() + "\".");
}

void Scope::put_variable(const std::string& collection, const std::string& name, Tree value) {
  if (!is_mutable_collection(collection)) {
    throw ModifyScopeVariableError("Cannot update variable \"" + name + "\" in \"" + path_text() +
                                   "\" because collection \"" + collection + "\" is immutable.");
  }
  Tree& sub = mutable_collection_subtree(collection);
  if (!sub.is_dict()) {
    throw Error("Scope: \"" + path_text() + "\" holds an array in collection \"" + collection +
                "\", not a dict of variables");
  }
  sub.dict()[name] = std::move(value);
}

Variable Scope::variable(const std::string& collection, const std::string& name,
                         const std::function<Tree()>& init) {
  reserve(name, collection, "variable");
  if (!has_variable(collection, name)) {
    if (!is_mutable_collection(collection) || !init) {
      get_variable(collection, name);  // throws the right "not found" error
    }
    put_variable(collection, name, init());
  }
  return Variable(this, collection, name);
}

namespace {
// Flax's errors for a param that apply() cannot find (an empty collection vs a missing name).
[[noreturn]] void throw_param_not_found(const std::string& name, const std::string& path,
                                        bool collection_empty) {
  if (collection_empty) {
    throw ScopeCollectionNotFound("Tried to access \"" + name +
                                  "\" from collection \"params\" in \"" + path +
                                  "\" but the collection is empty.");
  }
  throw ScopeParamNotFoundError("Could not find parameter named \"" + name + "\" in scope \"" +
                                path + "\".");
}
}  // namespace

Array Scope::param(const std::string& name, const Initializer& init, const Shape& shape,
                   DType dtype) {
  reserve(name, "params", "param");
  if (const Tree* v = find_variable("params", name)) {
    if (!v->is_leaf() || v->leaf().shape() != shape) {
      const std::string got = v->is_leaf() ? v->leaf().shape().str() : std::string("<a dict>");
      throw ScopeParamShapeError("For parameter \"" + name + "\" in \"" + path_text() +
                                 "\", the given initializer is expected to generate shape " +
                                 shape.str() +
                                 ", but the existing parameter it received has shape " + got + ".");
    }
    return v->leaf();
  }
  if (!is_mutable_collection("params")) {
    throw_param_not_found(name, path_text(), is_collection_empty("params"));
  }
  const random::Key key = make_rng("params");
  Array value;
  if (root_->abstract) {
    value = Array::untouched_zeros(shape, dtype);  // no initializer, no physical memory
  } else {
    if (!init) throw Error("Scope.param(\"" + name + "\"): the initializer is empty" + where());
    value = init(key, shape, dtype);
    // Layers rely on a param having the shape and dtype they asked for (fused kernels index it).
    if (!value.valid() || value.shape() != shape || value.dtype() != dtype) {
      throw Error("Scope.param(\"" + name + "\"): the initializer returned " +
                  (value.valid() ? std::string(dtype_name(value.dtype())) + value.shape().str()
                                 : std::string("an empty array")) +
                  " where " + dtype_name(dtype) + shape.str() + " was asked for" + where());
    }
  }
  put_variable("params", name, value);
  return value;
}

Tree Scope::param(const std::string& name, const std::function<Tree(const random::Key&)>& init) {
  if (!init) throw Error("Scope.param(\"" + name + "\"): the initializer is empty" + where());
  reserve(name, "params", "param");
  if (const Tree* v = find_variable("params", name)) return *v;
  if (!is_mutable_collection("params")) {
    throw_param_not_found(name, path_text(), is_collection_empty("params"));
  }
  Tree value = init(make_rng("params"));
  put_variable("params", name, value);
  return value;
}

Tree Scope::variables() const {
  Tree out;
  auto add_from = [&](const Tree* base) {
    if (base == nullptr || !base->is_dict()) return;
    for (const auto& [col, unused] : base->dict()) {
      if (out.contains(col)) continue;
      if (const Tree* sub = collection_subtree(col)) out.dict()[col] = *sub;
    }
  };
  add_from(&root_->mutable_vars);
  add_from(root_->frozen);
  return out;
}

Tree Scope::mutable_variables() const {
  Tree out;
  for (const auto& [col, sub] : root_->mutable_vars.dict()) {
    if (root_->filter.contains(col)) out.dict()[col] = sub;
  }
  return out;
}

bool Scope::has_rng(const std::string& stream) const {
  return root_->rngs.count(stream) > 0;
}

random::Key Scope::make_rng(const std::string& stream) {
  std::string s = stream;
  if (!has_rng(s)) {
    if (!has_rng("params")) {
      throw InvalidRngError((name_.empty() ? std::string("None") : name_) + " needs PRNG for \"" +
                            stream + "\"" + where());
    }
    s = "params";
  }
  const std::uint64_t count = ++rng_counters_[s];
  return random::fold_in(root_->rngs.at(s), core::detail::flax_rng_hash(path_, count));
}

bool Scope::is_initializing() const {
  return root_->initializing;
}
bool Scope::is_abstract() const {
  return root_->abstract;
}

// ---- free functions ------------------------------------------------------------------------

void check_variables(const Tree& variables) {
  bool ok = variables.is_dict();
  if (ok) {
    for (const auto& [col, sub] : variables.dict()) ok = ok && sub.is_dict();
  }
  if (!ok) {
    throw ApplyScopeInvalidVariablesTypeError(
        "The first argument passed to an apply function should be a dictionary of collections. "
        "Each collection should be a dictionary with string keys.");
  }
  if (variables.contains("params") && variables.at("params").contains("params")) {
    throw ApplyScopeInvalidVariablesStructureError(
        "Expect the `variables` (first argument) passed to apply() to be a dict with the "
        "structure {\"params\": ...}, but got a dict with an extra params layer, i.e.  "
        "{\"params\": {\"params\": ... } }. You should instead pass in your dict's [\"params\"].");
  }
}

std::unique_ptr<Scope> bind(const Tree& variables, Rngs rngs,
                            CollectionFilter mutable_collections) {
  check_variables(variables);
  auto root = Scope::make_root(&variables, std::move(rngs), std::move(mutable_collections), false);
  root->own_variables();
  return root;
}

}  // namespace loom::core
