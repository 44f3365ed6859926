// `subctx verify IMAGE`: recomputes every digest.  read_image checks the
// header digest (and refuses a damaged header); the segment digests need a
// full read of the file, which only this command and no client does.
#include <cstdio>

#include "cli.hpp"
#include "image_file.hpp"
#include "sys/io.hpp"

namespace subctx::tool {

int run_verify(const std::vector<std::string>& args) {
  if (args.size() != 1)
    throw UsageError("verify",
                     "verify takes exactly one argument, the image path (got " + std::to_string(args.size()) + ")");
  const ImageFile f = ImageFile::open(args[0]);
  const image::ImageInfo info = f.read_header();
  const std::string mismatch = image::verify_segments(f.source(), info);
  if (!mismatch.empty()) {  // printable already: verify_segments escapes what it quotes
    std::fprintf(stderr, "subctx: %s: %s; the image was modified or damaged: write it again with its server\n",
                 sys::printable(f.path(), sys::kNoLimit).c_str(), mismatch.c_str());
    return kExitError;
  }
  std::printf("OK: %zu segments verified\n", info.segments.size());
  return kExitOk;
}

}  // namespace subctx::tool
