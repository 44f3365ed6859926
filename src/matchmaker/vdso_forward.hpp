// Replaces the server's vDSO: the server's libc holds pointers into its old
// vDSO (clock_gettime, gettimeofday, time, getcpu), which is not in the
// image.  At the old address we map a page set whose function entries jump
// to the client's vDSO function of the same name, matched by symbol name.
#pragma once

#include <string>

#include "common/vdso.hpp"
#include "image/format.hpp"
#include "sys/mapping.hpp"

namespace subctx::matchmaker {

// Writes the forwarding stubs into buf (size = v.size, zero-filled by the
// caller).  Functions the client vDSO lacks get ud2.  Returns false with
// *why when a stub does not fit before the next symbol.
bool build_vdso_forwarder(const image::VdsoRecord& v, const HostVdso& host, uint8_t* buf, std::string* why);

}  // namespace subctx::matchmaker
