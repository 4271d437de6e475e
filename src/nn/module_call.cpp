// The running-module stack, naming of submodules, Flax's unbound-module errors, and the hooks
// behind nn::tabulate and capture_intermediates (see loom/nn/module_call.hpp).
#include "loom/nn/module_call.hpp"

#include <sstream>

#include "loom/nn/module.hpp"  // sow_impl, for capture_intermediates

namespace loom::nn::detail {

namespace {
thread_local std::vector<Frame> frames;
thread_local std::vector<CallRecord>* active_recorder = nullptr;
thread_local const CaptureIntermediates* active_capture = nullptr;

// Flax's ValueError texts for a module helper used outside init/apply/bind.
std::string unbound_message(std::string_view what) {
  if (what == "has_variable" || what == "variables" || what == "get_variable" ||
      what == "put_variable")
    return "Can't access variables on unbound modules";
  if (what == "make_rng") return "Can't use RNGs on unbound modules";
  if (what == "has_rng") return "Can't query for RNGs on unbound modules";
  if (what == "is_mutable_collection") return "Can't check mutability on unbound modules";
  if (what == "is_initializing") return "Can't check if running under init() on unbound modules";
  if (what == "sow" || what == "perturb") return "Can't store variables on unbound modules";
  if (what == "path") return "Can't access module paths on unbound modules.";
  return {};
}

std::string dims_text(const Shape& s) {
  std::string out;
  for (int i = 0; i < s.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(s[i]);
  }
  return out;
}
}  // namespace

std::string parse_type_name(std::string_view pretty) {
  // GCC: "... type_name() [with T = ns::Dense; ...]"; clang: "... type_name() [T = ns::Dense]".
  std::size_t start = pretty.find("T = ");
  if (start == std::string_view::npos) return "Module";
  start += 4;
  int depth = 0;
  std::size_t end = start;
  for (; end < pretty.size(); ++end) {
    const char c = pretty[end];
    if (c == '<' || c == '(' || c == '[' || c == '{') ++depth;
    if (c == '>' || c == ')' || c == '}') --depth;
    if (c == ']') {
      if (depth == 0) break;
      --depth;
    }
    if (c == ';' && depth == 0) break;
  }
  std::string_view full = pretty.substr(start, end - start);
  // Drop template arguments ("Block<float>" -> "Block"): Flax uses the bare class name.
  depth = 0;
  std::size_t last_sep = 0, cut = full.size();
  for (std::size_t i = 0; i < full.size(); ++i) {
    const char c = full[i];
    if (c == '<' && depth == 0 && i + 1 < full.size()) {
      // "(anonymous namespace)" and "{anonymous}" are not template arguments.
      cut = i;
      break;
    }
    if (c == '(' || c == '{') ++depth;
    if (c == ')' || c == '}') --depth;
    if (depth == 0 && c == ':' && i + 1 < full.size() && full[i + 1] == ':') last_sep = i + 2;
  }
  if (last_sep > cut) last_sep = 0;
  std::string name(full.substr(last_sep, cut - last_sep));
  while (!name.empty() && name.back() == ' ') name.pop_back();
  return name.empty() ? std::string("Module") : name;
}

FrameGuard::FrameGuard(core::Scope& scope, const void* module) {
  scope.rewind();
  frames.push_back(Frame{&scope, module});
}
FrameGuard::~FrameGuard() {
  frames.pop_back();
}

core::Scope* current_scope() {
  return frames.empty() ? nullptr : frames.back().scope;
}

core::Scope& running_scope(const void* module, const std::string& type, const char* what) {
  if (frames.empty()) {
    const std::string detail = " (" + type + "." + what + " was used outside init/apply/bind)";
    const std::string flax = unbound_message(what);
    if (!flax.empty()) throw Error(flax + detail);
    throw core::CallCompactUnboundModuleError("Can't call compact methods on unbound modules" +
                                              detail);
  }
  const Frame& f = frames.back();
  if (f.module != module) {
    throw Error(type + "." + what + ": this " + type +
                " is not the running module (the running one is at \"" + f.scope->path_text() +
                "\"); call submodules as m(x) or child(...)(x), not their methods directly");
  }
  return *f.scope;
}

core::Scope& new_auto_child(const std::string& type) {
  if (frames.empty()) {
    throw core::CallCompactUnboundModuleError("Can't call compact methods on unbound modules (a " +
                                              type + " was called outside init/apply/bind)");
  }
  core::Scope& parent = *frames.back().scope;
  const int k = parent.next_autoname_index(type);
  core::Scope& child = parent.push(type + "_" + std::to_string(k));
  child.set_module_type(type);
  return child;
}

core::Scope& named_child(core::Scope& parent, const std::string& name, const std::string& type,
                         core::DeclarationSite site) {
  if (parent.name_reserved(name, std::nullopt)) {
    // The same declaration reached again (setup style) is fine; anything else takes the name
    // twice (Flax's NameInUseError).
    core::Scope* existing = parent.find_child(name);
    if (existing == nullptr || existing->module_type() != type ||
        !parent.reserved_for_submodule(name) || !(existing->declaration() == site)) {
      const std::string module = parent.module_type().empty() ? "None" : parent.module_type();
      throw core::NameInUseError("Could not create submodule \"" + name + "\" in Module " + module +
                                 ": Name in use. (module \"" + parent.path_text() + "\")");
    }
    return *existing;
  }
  core::Scope& child = parent.push(name);
  child.set_module_type(type);
  child.set_declaration(site);
  return child;
}

void throw_dead_handle(const std::string& name, bool empty) {
  if (empty) {
    throw Error(
        "nn::Child: an empty submodule handle was called (a Child field that was never "
        "set to a child(...) handle)" +
        module_path_suffix());
  }
  throw core::InvalidScopeError("The scope \"" + name +
                                "\" is no longer valid. (a child() handle was used after the "
                                "init/apply/bind call that made it returned)");
}

std::string parse_method_name(std::string_view pretty) {
  // GCC: "... [with auto Fn = &ns::Model::encode]"; clang: "... [Fn = &ns::Model::encode]".
  std::size_t start = pretty.find("Fn = ");
  if (start == std::string_view::npos) return "method";
  start += 5;
  std::size_t end = pretty.find_first_of(";]", start);
  std::string_view full =
      pretty.substr(start, end == std::string_view::npos ? pretty.npos : end - start);
  const std::size_t sep = full.rfind("::");
  std::string name(sep == std::string_view::npos ? full : full.substr(sep + 2));
  while (!name.empty() && (name.front() == '&' || name.front() == ' ')) name.erase(0, 1);
  return name.empty() ? std::string("method") : name;
}

const CaptureIntermediates* capture() {
  return active_capture;
}
CaptureGuard::CaptureGuard(const CaptureIntermediates& c) : previous(active_capture) {
  active_capture = &c;
}
CaptureGuard::~CaptureGuard() {
  active_capture = previous;
}
void capture_output(core::Scope& scope, const std::string& method, const Tree& out) {
  sow_impl(scope, "intermediates", method, out, nullptr, nullptr);
}

std::string module_path_suffix() {
  return frames.empty() ? std::string() : " (module \"" + frames.back().scope->path_text() + "\")";
}

std::vector<CallRecord>* recorder() {
  return active_recorder;
}
void set_recorder(std::vector<CallRecord>* r) {
  active_recorder = r;
}

std::size_t begin_record(const core::Scope& scope, std::string method, std::string inputs) {
  active_recorder->push_back(CallRecord{scope.path_text(), scope.module_type(), std::move(method),
                                        std::move(inputs), std::string()});
  return active_recorder->size() - 1;
}
void end_record(std::size_t index, std::string outputs) {
  if (active_recorder != nullptr && index < active_recorder->size()) {
    (*active_recorder)[index].outputs = std::move(outputs);
  }
}

std::string describe(const Array& x) {
  if (!x.valid()) return "<empty>";
  return std::string(dtype_name(x.dtype())) + "[" + dims_text(x.shape()) + "]";
}
std::string describe(const Tree& t) {
  if (t.is_leaf()) return describe(t.leaf());
  std::string s;
  for (const auto& leaf : tree_leaves(t)) s += (s.empty() ? "" : ", ") + describe(leaf);
  return "(" + s + ")";
}

}  // namespace loom::nn::detail
