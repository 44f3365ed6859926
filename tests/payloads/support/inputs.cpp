#include "inputs.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace payload {

std::vector<std::string> split_inputs(std::string_view text) {
  std::vector<std::string> entries;
  std::string current;
  size_t pos = 0;
  auto flush = [&] {
    // Trailing newlines are not part of an entry.
    while (!current.empty() && current.back() == '\n') current.pop_back();
    if (!current.empty()) entries.push_back(current);
    current.clear();
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    if (line == "%%") {
      flush();
    } else {
      current.append(line);
      current.push_back('\n');
    }
  }
  flush();
  return entries;
}

std::vector<std::string> read_inputs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read inputs file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return split_inputs(ss.str());
}

std::string frame_output(size_t index, std::string_view output) {
  std::string s = "### " + std::to_string(index) + "\n";
  s.append(output);
  s.push_back('\n');
  return s;
}

std::vector<std::string> parse_outputs(std::string_view framed) {
  std::vector<std::string> outputs;
  size_t pos = 0;
  while (pos < framed.size()) {
    const std::string header = "### " + std::to_string(outputs.size()) + "\n";
    if (framed.substr(pos, header.size()) != header)
      throw std::runtime_error("output " + std::to_string(outputs.size()) + ": no \"" +
                               header.substr(0, header.size() - 1) + "\" header at byte " + std::to_string(pos));
    pos += header.size();
    // The output runs to the next header of the following index, or the end.
    const std::string next = "\n### " + std::to_string(outputs.size() + 1) + "\n";
    size_t end = framed.find(next, pos);
    if (end == std::string_view::npos) {
      if (framed.empty() || framed.back() != '\n')
        throw std::runtime_error("output stream does not end with a newline");
      end = framed.size() - 1;
    }
    outputs.emplace_back(framed.substr(pos, end - pos));
    pos = end + 1;
  }
  return outputs;
}

}  // namespace payload
