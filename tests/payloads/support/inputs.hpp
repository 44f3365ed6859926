// The inputs of a payload: tests/payloads/<name>/inputs.txt holds entries
// separated by lines consisting of "%%" (entries may span lines: SQL,
// Python).  Outputs are printed as "### <index>\n<output>\n" by the native
// runner and the client alike, and parsed back by the tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace payload {

// Entries of an inputs file (empty entries dropped); throws on an unreadable file.
std::vector<std::string> read_inputs(const std::string& path);
std::vector<std::string> split_inputs(std::string_view text);

std::string frame_output(size_t index, std::string_view output);
// The outputs of a framed stream, in order; throws on a malformed stream.
std::vector<std::string> parse_outputs(std::string_view framed);

}  // namespace payload
