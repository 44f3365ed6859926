// The descriptors of the SUBCTX notes (docs/format.md, "Notes"): one encoder
// and one decoder per note type, side by side in notes.cpp, so that a field
// changed on one side is changed on the other in the same place.
//
// The writer (writer.cpp) decides which notes an image has, in what order,
// and frames them; the reader (reader.cpp) unframes them, refuses duplicates
// and a digest note that is not last, and validates what the notes say
// against each other and the segments once all of them are read.
#pragma once

#include <cstdint>
#include <string>

#include "image/bytes.hpp"
#include "image/format.hpp"

namespace subctx::image {

// How a decoder reports a bad descriptor.  A decoder checks only what it
// must while reading: a count before anything is allocated for it, a value
// before it is cast to an enum, a rule the image may not carry; the rest is
// the reader's validation.
struct NoteContext {
  const std::string& what;  // names the image: every message starts "WHAT: "
  uint64_t max_exports;     // ReadLimits::max_exports

  [[noreturn]] void bad(const std::string& msg) const;
  // After a record's fields: a failed read (a truncated descriptor, a
  // string over its limit) gives one message per note, "malformed NOTE note".
  void done(const ByteReader& r, const char* note) const;
};

struct NoteCodec {
  NoteType type;
  // Appends the descriptor of this note for info.
  void (*encode)(ByteWriter& w, const ImageInfo& info);
  // Reads the descriptor into info: the segments note and the digest note
  // fill in info.segments, which the program headers have sized.
  void (*decode)(ByteReader& r, const NoteContext& ctx, ImageInfo& info);
};

// The codec of a SUBCTX note type; null for a type this subctx does not
// know (such notes are ignored: a later version may add optional ones).
const NoteCodec* find_note_codec(uint32_t type);

}  // namespace subctx::image
