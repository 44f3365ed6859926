// The SUBCTX_* environment variables: one reader, one rule (docs/policy.md,
// "The environment").
//
//  * Every SUBCTX_* variable is read through value() and so secure_getenv():
//    in an AT_SECURE process (setuid, setgid, file capabilities) they are
//    all ignored, as if unset: the environment is the invoker's, not the
//    program's.
//  * A set variable must hold one of its values.  A malformed one (empty
//    included) is not ignored and not replaced by a default: the readers add
//    "NAME=value is not ...; use ..." to an error text, and every map fails
//    with InvalidArgument saying so (request_map), until the variable is
//    fixed or unset and the Matchmaker installed again.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

namespace subctx::env {

// getauxval(AT_SECURE): the process was started setuid, setgid or with
// capabilities.
bool secure_process();

// The variable's value; nullptr when unset, and always in an AT_SECURE
// process.
const char* value(const char* name);

// NAME as a decimal number from min to max (digits only) into *out; unset
// leaves *out.  A malformed value adds to *errors and leaves *out.
void read_number(const char* name, uint64_t min, uint64_t max, uint64_t* out, std::string* errors);

// NAME as one of words into *index (its position); unset leaves *index.
// meaning says what the value is ("a fault policy") in the error.
void read_word(const char* name, std::initializer_list<const char*> words, const char* meaning, int* index,
               std::string* errors);

}  // namespace subctx::env
