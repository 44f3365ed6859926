#include "sys/segments.hpp"

#include <sys/sysmacros.h>

#include <algorithm>

#include "sys/proc_maps.hpp"

namespace subctx::sys {

Segments::Segments(std::vector<Mapping> maps, std::vector<bool> from_file, dev_t dev, ino_t ino)
    : maps_(std::move(maps)), from_file_(std::move(from_file)), dev_(dev), ino_(ino) {
  from_file_.resize(maps_.size(), false);
}

Segments& Segments::operator=(Segments&& o) noexcept {
  if (this != &o) {
    unmap_unless_intact();
    maps_ = std::move(o.maps_);
    from_file_ = std::move(o.from_file_);
    dev_ = o.dev_;
    ino_ = o.ino_;
    o.maps_.clear();
    o.from_file_.clear();
  }
  return *this;
}

Segments::Ranges Segments::ranges_to_unmap(bool intact, const Ranges& extra) const {
  Ranges out(extra);
  const bool any_view = std::find(from_file_.begin(), from_file_.end(), true) != from_file_.end();
  SelfMaps self;
  // Unreadable /proc/self/maps: the views as made (the old behaviour, and
  // the best guess left).
  const bool have_maps = !intact && any_view && read_self_maps(&self);
  for (size_t i = 0; i < maps_.size(); ++i) {
    const Mapping& m = maps_[i];
    if (!m) continue;
    if (!from_file_[i] || !have_maps) {
      out.emplace_back(m.begin(), m.end());
      continue;
    }
    for (const MapEntry& v : self.entries)
      if (v.overlaps(m.begin(), m.end()) && v.inode == ino_ && v.dev_major == major(dev_) && v.dev_minor == minor(dev_))
        out.emplace_back(std::max<uint64_t>(v.start, m.begin()), std::min<uint64_t>(v.end, m.end()));
  }
  std::sort(out.begin(), out.end());
  Ranges merged;
  for (const auto& r : out) {
    if (!merged.empty() && r.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, r.second);
    else merged.push_back(r);
  }
  return merged;
}

void Segments::unmap_unless_intact() noexcept {
  if (maps_.empty()) return;
  try {
    unmap(/*intact=*/false);
  } catch (...) {  // std::bad_alloc
    for (Mapping& m : maps_) m.reset();
    maps_.clear();
    from_file_.clear();
  }
}

void Segments::unmap_ranges(const Ranges& ranges) {
  for (const auto& [lo, hi] : ranges) ::munmap(reinterpret_cast<void*>(lo), hi - lo);
  for (Mapping& m : maps_) m.release();
  maps_.clear();
  from_file_.clear();
}

}  // namespace subctx::sys
