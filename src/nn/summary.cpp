// nn::tabulate's table, after flax/linen/summary.py (plain text instead of a rich table).
#include "loom/nn/summary.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace loom::nn {

VariableCount count_variables(const Tree& tree) {
  VariableCount c;
  for (const auto& leaf : tree_leaves(tree)) {
    c.count += leaf.size();
    c.bytes += static_cast<std::int64_t>(leaf.nbytes());
  }
  return c;
}

namespace detail {
namespace {
// Flax's summary: "1,234" and "(4.9 KB)".
std::string with_commas(std::int64_t n) {
  std::string s = std::to_string(n), out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}
std::string bytes_text(std::int64_t b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}
std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n && i < parts.size(); ++i) s += (i ? "/" : "") + parts[i];
  return s;
}

const Tree* subtree(const Tree& collection, const std::vector<std::string>& path) {
  const Tree* t = &collection;
  for (const auto& p : path) {
    if (!t->is_dict() || !t->contains(p)) return nullptr;
    t = &t->at(p);
  }
  return t;
}

// The variables directly under `path` that belong to no other module path (Flax's
// _get_module_variables): "name: float32[3,4]" lines and their count.
void own_variables(const Tree& node, const std::vector<std::string>& path,
                   const std::set<std::string>& module_paths, const std::string& prefix,
                   std::vector<std::string>& lines, VariableCount& count) {
  for (const auto& [name, sub] : node.dict()) {
    std::vector<std::string> child = path;
    child.push_back(name);
    if (sub.is_leaf()) {
      lines.push_back(prefix + name + ": " + describe(sub.leaf()));
      count.count += sub.leaf().size();
      count.bytes += static_cast<std::int64_t>(sub.leaf().nbytes());
    } else if (module_paths.count(join(child, child.size())) == 0) {
      own_variables(sub, child, module_paths, prefix + name + "/", lines, count);
    }
  }
}
}  // namespace

std::string format_table(const std::string& title, const std::vector<CallRecord>& records,
                         const Tree& variables, const TabulateOptions& options) {
  std::vector<std::string> collections;
  if (variables.is_dict()) {
    for (const auto& [col, unused] : variables.dict()) collections.push_back(col);
  }
  std::set<std::string> module_paths;
  for (const auto& r : records) module_paths.insert(join(split_path(r.path), 1000));

  using Cell = std::vector<std::string>;  // the lines of one cell
  std::vector<std::vector<Cell>> rows;
  std::vector<Cell> header = {{"path"}, {"module"}, {"inputs"}, {"outputs"}};
  for (const auto& c : collections) header.push_back({c});
  std::map<std::string, VariableCount> totals;
  std::set<std::string> visited;
  for (const auto& r : records) {
    const std::vector<std::string> parts = split_path(r.path);
    const std::string path = join(parts, parts.size());
    const int depth = static_cast<int>(parts.size());
    const bool repeated = !visited.insert(path).second;
    if (repeated && !options.show_repeated) continue;
    if (!repeated && options.depth && depth > *options.depth) continue;
    const bool hidden_method = r.method == "__call__" || r.method == "<lambda>";
    std::vector<Cell> row = {
        {path}, {r.type + (hidden_method ? "" : " (" + r.method + ")")}, {r.inputs}, {r.outputs}};
    for (const auto& c : collections) {
      Cell cell;
      VariableCount shown, counted;
      const Tree* t = repeated ? nullptr : subtree(variables.at(c), parts);
      if (t != nullptr && t->is_dict()) {
        own_variables(*t, parts, module_paths, "", cell, shown);
        counted = shown;
        if (options.depth && depth == *options.depth) counted = count_variables(*t);
      }
      if (counted.count > 0) {
        if (!cell.empty()) cell.push_back("");
        cell.push_back(with_commas(counted.count) + " (" + bytes_text(counted.bytes) + ")");
        totals[c].count += counted.count;
        totals[c].bytes += counted.bytes;
      }
      row.push_back(cell);
    }
    rows.push_back(row);
  }
  std::vector<Cell> footer = {{""}, {""}, {""}, {"Total"}};
  for (const auto& c : collections) {
    footer.push_back({with_commas(totals[c].count) + " (" + bytes_text(totals[c].bytes) + ")"});
  }

  std::vector<std::size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<Cell>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      for (const auto& line : row[i]) width[i] = std::max(width[i], line.size());
    }
  };
  measure(header);
  measure(footer);
  for (const auto& row : rows) measure(row);
  std::size_t total_width = 0;
  for (auto w : width) total_width += w + 3;
  const std::string rule = std::string(total_width, '-') + "\n";
  std::string out = title + "\n";
  auto emit = [&](const std::vector<Cell>& row) {
    std::size_t height = 1;
    for (const auto& cell : row) height = std::max(height, cell.size());
    for (std::size_t k = 0; k < height; ++k) {
      std::string s;
      for (std::size_t i = 0; i < row.size(); ++i) {
        const std::string text = k < row[i].size() ? row[i][k] : std::string();
        s += (i ? " | " : " ") + text + std::string(width[i] - text.size(), ' ');
      }
      while (!s.empty() && s.back() == ' ') s.pop_back();
      out += s + "\n";
    }
  };
  emit(header);
  for (const auto& row : rows) {
    out += rule;
    emit(row);
  }
  out += rule;
  emit(footer);
  VariableCount all;
  for (const auto& [c, v] : totals) {
    all.count += v.count;
    all.bytes += v.bytes;
  }
  out += "\nTotal Parameters: " + with_commas(all.count) + " (" + bytes_text(all.bytes) + ")\n";
  return out;
}

}  // namespace detail
}  // namespace loom::nn
