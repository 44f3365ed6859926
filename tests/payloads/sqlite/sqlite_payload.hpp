// What the SQLite payload's server-only exports (exports.cpp) share with
// payload.cpp: the database init() builds before the snapshot.
#pragma once

#include <sqlite3.h>

namespace sqlite_payload {

// The in-memory database; null before payload::init().
sqlite3* database();

}  // namespace sqlite_payload
