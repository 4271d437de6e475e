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
}  // namespace

std::string format_table(const std::vector<CallRecord>& records, const Tree& variables) {
  std::vector<std::string> collections;
  if (variables.is_dict()) {
    for (const auto& [col, unused] : variables.dict()) collections.push_back(col);
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"path", "module", "inputs", "outputs"};
  for (const auto& c : collections) header.push_back(c);
  rows.push_back(header);
  std::map<std::string, VariableCount> totals;
  std::set<std::string> seen;  // a module called twice lists its variables once
  for (const auto& r : records) {
    std::vector<std::string> row = {r.path, r.type, r.inputs, r.outputs};
    for (const auto& c : collections) {
      // This module's own variables: the leaves directly under its path.
      const Tree* t = &variables.at(c);
      for (const auto& p : split_path(r.path)) {
        t = (t != nullptr && t->contains(p)) ? &t->at(p) : nullptr;
      }
      VariableCount own;
      if (t != nullptr && t->is_dict()) {
        for (const auto& [name, sub] : t->dict()) {
          if (sub.is_leaf()) {
            own.count += sub.leaf().size();
            own.bytes += static_cast<std::int64_t>(sub.leaf().nbytes());
          }
        }
      }
      const bool first = seen.insert(c + "|" + r.path).second;
      if (own.count > 0 && first) {
        row.push_back(with_commas(own.count) + " (" + bytes_text(own.bytes) + ")");
        totals[c].count += own.count;
        totals[c].bytes += own.bytes;
      } else {
        row.push_back("");
      }
    }
    rows.push_back(row);
  }
  std::vector<std::string> total_row = {"", "", "", "Total"};
  for (const auto& c : collections) {
    total_row.push_back(with_commas(totals[c].count) + " (" + bytes_text(totals[c].bytes) + ")");
  }
  rows.push_back(total_row);
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    std::string s;
    for (std::size_t i = 0; i < row.size(); ++i) {
      s += (i ? " | " : " ") + row[i] + std::string(width[i] - row[i].size(), ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out += s + "\n";
  };
  std::size_t total_width = 0;
  for (auto w : width) total_width += w + 3;
  line(rows.front());
  out += std::string(total_width, '-') + "\n";
  for (std::size_t i = 1; i + 1 < rows.size(); ++i) line(rows[i]);
  out += std::string(total_width, '-') + "\n";
  line(rows.back());
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
