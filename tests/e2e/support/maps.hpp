// This process's /proc/self/maps, as the tests compare it.
#pragma once

#include <string>
#include <vector>

#include "support/images.hpp"

namespace e2e {

std::string read_self_maps();

// The lines of maps that overlap any of ranges (lines containing `except`
// left out when it is not empty).
std::vector<std::string> lines_overlapping(const std::string& maps, const std::vector<Range>& ranges,
                                           const std::string& except = "");

// The maps with the [heap] line's end address dropped: malloc may grow the
// heap between two reads.
std::string comparable_maps(const std::string& maps);

// The line of maps that contains `needle`, or "".
std::string line_containing(const std::string& maps, const std::string& needle);

std::string join(const std::vector<std::string>& lines);

}  // namespace e2e
