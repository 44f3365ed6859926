// The SQLite payload's callbacks (issue 16, exports.cpp): SQL functions of
// the image whose work this client does -- a scalar function, a collation
// and an aggregate -- per backend.  Their results equal SQLite's own
// upper(), ORDER BY and group_concat(); a client error is an SQL error; an
// unbound import or a callback's exception ends the call and the default
// fault policy brings the snapshot's database back; a callback may query
// the same database (re-entry).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "payload_test.hpp"

namespace {

using Upper = const char*(const char*);
using Compare = int64_t(const char*, const char*);
using GroupStep = int64_t(void*, const char*);
using GroupFinal = const char*(void*);
using UpperNames = const char*(int64_t);

// ASCII only, as SQLite's built-in upper() (without ICU).
std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

// "header\nrow\nrow" -> "row\nrow": the rows of a one-column result of run.
std::string rows_of(const std::string& out) {
  const size_t nl = out.find('\n');
  return nl == std::string::npos ? "" : out.substr(nl + 1);
}

class SqliteCallbacks : public payload::testing::MappedImageTest {
 protected:

  // Every import bound: the client's upper-case, an order by length then
  // bytes, and a '|'-joined aggregate kept per group key.  Returned strings
  // live in the fixture until the next callback; SQLite copies them first.
  void bind_defaults() override {
    sc_.bind<Upper>("host_upper", [this](const char* s) {
      ++upper_calls_;
      upper_ = ascii_upper(s);
      return upper_.c_str();
    });
    sc_.bind<Compare>("host_compare", [this](const char* a, const char* b) -> int64_t {
      ++compare_calls_;
      const std::string x = a, y = b;
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      return x.compare(y);
    });
    sc_.bind<GroupStep>("host_group_step", [this](void* key, const char* s) -> int64_t {
      std::string& joined = groups_[key];
      joined += (joined.empty() ? "" : "|") + std::string(s);
      return 0;
    });
    sc_.bind<GroupFinal>("host_group_final", [this](void* key) {
      final_ = groups_[key];
      groups_.erase(key);
      return final_.c_str();
    });
  }

  std::string sql(const std::string& text) const { return sc_.call<const char*(const char*)>("run", text.c_str()); }
  std::string upper_names(int64_t n) const { return sc_.call<UpperNames>("upper_names", n); }

  int upper_calls_ = 0;
  int compare_calls_ = 0;
  std::string upper_, final_;
  std::map<void*, std::string> groups_;
};

TEST_P(SqliteCallbacks, AScalarFunctionOfTheClientEqualsSqlitesUpper) {
  const std::string expected =
      rows_of(sql("SELECT upper(first_name || ' ' || last_name) FROM customers ORDER BY id LIMIT 5"));
  ASSERT_EQ(std::count(expected.begin(), expected.end(), '\n'), 4) << expected;
  EXPECT_EQ(upper_names(5), expected);
  EXPECT_EQ(upper_calls_, 5);
  // One callback a row, 20,000 rows, each equal to SQLite's own result.
  EXPECT_EQ(sql("SELECT count(*) FROM customers WHERE host_upper(first_name) = upper(first_name)"), "count(*)\n20000");
  EXPECT_EQ(upper_calls_, 20005);
  // The client's bytes come back whole (UTF-8 untouched, as upper() does); NULL stays NULL unasked.
  EXPECT_EQ(sql("SELECT host_upper('Łucja and José') AS u, host_upper(NULL) IS NULL AS n"), "u\tn\nŁUCJA AND JOSé\t1");
  EXPECT_EQ(upper_calls_, 20006);
}

TEST_P(SqliteCallbacks, ACollationOfTheClientOrdersRows) {
  const std::string by_host = sql("SELECT name FROM categories ORDER BY name COLLATE HOST");
  EXPECT_EQ(by_host, sql("SELECT name FROM categories ORDER BY length(name), name"));
  EXPECT_EQ(rows_of(by_host).rfind("All\nHome\nAudio\nTents\nTools\nOffice\n", 0), 0u) << by_host;
  EXPECT_GT(compare_calls_, 15) << "sorting 16 names compares them";
  EXPECT_EQ(sql("SELECT 'Desk' = 'desk' COLLATE HOST AS same, 'b' < 'ab' COLLATE HOST AS shorter"),
            "same\tshorter\n0\t1");
}

TEST_P(SqliteCallbacks, AnAggregateOfTheClientEqualsGroupConcat) {
  const char* cities = "(SELECT DISTINCT country, city FROM customers ORDER BY country, city)";
  const std::string ours =
      sql(std::string("SELECT country, host_group(city) AS g FROM ") + cities + " GROUP BY country");
  const std::string theirs =
      sql(std::string("SELECT country, group_concat(city, '|') AS g FROM ") + cities + " GROUP BY country");
  EXPECT_EQ(ours, theirs);
  EXPECT_NE(ours.find("DE\tBerlin|Hamburg|Munich\n"), std::string::npos) << ours;
  EXPECT_TRUE(groups_.empty()) << "every group's final came";
  EXPECT_EQ(sql("SELECT host_group(name) IS NULL AS empty FROM categories WHERE id < 0"), "empty\n1");
}

TEST_P(SqliteCallbacks, ClientErrorsAreSqlErrorsAndTheDatabaseGoesOn) {
  sc_.bind<Upper>("host_upper", [](const char*) -> const char* { return nullptr; });
  EXPECT_EQ(sql("SELECT host_upper(name) FROM categories"), "error: host_upper: the client returned no string");
  EXPECT_EQ(upper_names(3), "error: host_upper: the client returned no string");
  sc_.bind<GroupStep>("host_group_step", [](void*, const char*) -> int64_t { return 1; });
  EXPECT_EQ(sql("SELECT host_group(name) FROM categories"), "error: host_group: the client refused a value");
  EXPECT_EQ(sql("SELECT count(*) FROM categories"), "count(*)\n16");
}

TEST_P(SqliteCallbacks, RebindingTakesEffectOnTheNextCall) {
  const std::string first = rows_of(sql("SELECT upper(first_name || ' ' || last_name) FROM customers WHERE id = 1"));
  EXPECT_EQ(upper_names(1), first);
  sc_.bind<Upper>("host_upper", [](const char*) { return "x"; });
  EXPECT_EQ(upper_names(3), "x\nx\nx");
}

// The failing call ends with the subcontext reset (the default policy):
// a write made before it is gone, and the next call works.
TEST_P(SqliteCallbacks, AnUnboundImportFailsTheCallNamingItAndTheClientGoesOn) {
  EXPECT_EQ(sql("DELETE FROM reviews WHERE id > 10"), "changes: 29990");
  sc_.unbind("host_upper");
  try {
    upper_names(3);
    FAIL() << "an unbound import returned";
  } catch (const subctx::SubcontextFault& e) {
    EXPECT_EQ(e.code(), subctx::Errc::Fault);
    EXPECT_EQ(e.import_name(), "host_upper");
    EXPECT_EQ(e.export_name(), "upper_names");
    EXPECT_TRUE(e.reset_done());
    const std::string what = e.what();
    EXPECT_NE(what.find("import \"host_upper\" (str(str))"), std::string::npos) << what;
    EXPECT_NE(what.find("has not bound"), std::string::npos) << what;
  }
  EXPECT_EQ(sql("SELECT count(*) FROM reviews"), "count(*)\n30000");
  bind_defaults();
  const std::string names = upper_names(3);
  EXPECT_EQ(std::count(names.begin(), names.end(), '\n'), 2) << names;
}

TEST_P(SqliteCallbacks, ACallbacksExceptionReachesTheCallerAndTheSnapshotComesBack) {
  EXPECT_EQ(sql("CREATE TABLE scratch (x)"), "changes: 0");
  sc_.bind<Upper>("host_upper", [this](const char* s) -> const char* {
    if (++upper_calls_ == 3) throw std::runtime_error(std::string("client refuses ") + s);
    upper_ = s;
    return upper_.c_str();
  });
  EXPECT_THROW(
      {
        try {
          upper_names(10);
        } catch (const std::runtime_error& e) {
          EXPECT_EQ(std::string(e.what()).rfind("client refuses ", 0), 0u) << e.what();
          throw;
        }
      },
      std::runtime_error);
  EXPECT_EQ(upper_calls_, 3);
  EXPECT_EQ(sc_.memory().faults, 1u);
  EXPECT_EQ(sql("SELECT count(*) FROM scratch"), "error: no such table: scratch");
  EXPECT_EQ(sql("PRAGMA integrity_check"), "integrity_check\nok");
}

// host_upper's callback asks the same database (a nested call of "run"
// while SQLite is inside the outer statement's step).
TEST_P(SqliteCallbacks, ACallbackQueriesTheSameDatabase) {
  sc_.bind<Upper>("host_upper", [this](const char* s) {
    upper_ = rows_of(sql("SELECT upper('" + std::string(s) + "') || ':' || count(*) FROM categories"));
    return upper_.c_str();
  });
  EXPECT_EQ(sql("SELECT host_upper(name) FROM categories WHERE id <= 3"),
            "host_upper(name)\nALL:16\nHOME:16\nOUTDOOR:16");
}

INSTANTIATE_TEST_SUITE_P(Backends, SqliteCallbacks, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
