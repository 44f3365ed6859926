// A text table with columns as wide as their widest cell, so `subctx inspect`
// stays legible for long library paths and export names alike.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace subctx::tool {

class Table {
 public:
  enum Align { Left, Right };

  // One heading and alignment per column.
  Table(std::vector<std::string> headings, std::vector<Align> aligns) : aligns_(std::move(aligns)) {
    aligns_.resize(headings.size(), Left);
    rows_.push_back(std::move(headings));
  }

  void add(std::vector<std::string> row) {
    row.resize(aligns_.size());
    rows_.push_back(std::move(row));
  }

  // Prints every row indented by `indent` spaces; the last column is not
  // padded, so lines carry no trailing blanks.
  void print(FILE* out, int indent = 2) const {
    std::vector<size_t> width(aligns_.size(), 0);
    for (const auto& row : rows_)
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    for (const auto& row : rows_) {
      std::string line(static_cast<size_t>(indent), ' ');
      for (size_t i = 0; i < row.size(); ++i) {
        const bool last = i + 1 == row.size();
        const std::string pad(width[i] - row[i].size(), ' ');
        if (aligns_[i] == Right) line += pad + row[i];
        else line += last ? row[i] : row[i] + pad;
        if (!last) line += "  ";
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::fprintf(out, "%s\n", line.c_str());
    }
  }

 private:
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace subctx::tool
