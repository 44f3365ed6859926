// The SQLite payload: a real client process's outputs equal a fresh native
// process's for all 288 statements (and backend); in process, the database
// built before the snapshot is there, writes inside the subcontext work and
// stay private to this client, the image file is never modified, and a
// reset brings the snapshot's database back.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <subctx/subctx.hpp>

#include "inputs.hpp"
#include "payload_test.hpp"

namespace {

using payload::testing::image;

PAYLOAD_COMPARISON_TESTS(SqlitePayload);

std::string sql(const subctx::Subcontext& sc, const std::string& text) {
  return sc.call<const char*(const char*)>("run", text.c_str());
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SqliteInProcess : public ::testing::Test {
 protected:
  void SetUp() override { sc_ = subctx::Matchmaker::instance().request_map(image()); }
  void TearDown() override {
    if (sc_.valid()) subctx::Matchmaker::instance().unmap(sc_);
  }
  subctx::Subcontext sc_;
};

TEST_F(SqliteInProcess, TheDatabaseWasBuiltBeforeTheSnapshot) {
  EXPECT_EQ(sql(sc_, "SELECT count(*) FROM orders"), "count(*)\n100000");
  const std::string rows = sql(sc_,
                               "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM products) + "
                               "(SELECT count(*) FROM orders) + (SELECT count(*) FROM order_items) + "
                               "(SELECT count(*) FROM reviews) AS n");
  ASSERT_EQ(rows.rfind("n\n", 0), 0u) << rows;
  EXPECT_GE(std::stoll(rows.substr(2)), 100000) << "the issue asks for at least 100 000 rows";
  EXPECT_EQ(sql(sc_, "PRAGMA integrity_check"), "integrity_check\nok");
}

TEST_F(SqliteInProcess, SqlErrorsAreResultsAndTheDatabaseGoesOn) {
  EXPECT_EQ(sql(sc_, "SELECT * FROM no_such_table"), "error: no such table: no_such_table");
  EXPECT_EQ(sql(sc_, "INSERT INTO reviews (id, rating) VALUES (1, 3)"), "error: UNIQUE constraint failed: reviews.id");
  EXPECT_EQ(sql(sc_, "INSERT INTO reviews (rating) VALUES (9)"),
            "error: CHECK constraint failed: rating BETWEEN 1 AND 5");
  EXPECT_EQ(sql(sc_, "SELEC 1"), "error: near \"SELEC\": syntax error");
  EXPECT_EQ(sql(sc_, "SELECT 6 * 7 AS answer"), "answer\n42");
}

TEST_F(SqliteInProcess, WritesWorkStayPrivateToTheClientAndLeaveTheImageUnchanged) {
  const std::string before = file_bytes(image());
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(sql(sc_, "UPDATE products SET price = 0.5 WHERE id <= 100"), "changes: 100");
  EXPECT_EQ(sql(sc_, "INSERT INTO categories (id, name, parent_id) VALUES (99, 'Private', 1)"), "changes: 1");
  const std::string deleted = sql(sc_, "DELETE FROM order_items WHERE order_id <= 1000");
  ASSERT_EQ(deleted.rfind("changes: ", 0), 0u) << deleted;
  EXPECT_GT(std::stoi(deleted.substr(9)), 1000) << "one to four items per order";
  EXPECT_EQ(sql(sc_, "CREATE TABLE mine AS SELECT id FROM customers WHERE id <= 50000"), "changes: 0");
  EXPECT_EQ(sql(sc_, "SELECT count(*) FROM mine"), "count(*)\n20000");
  EXPECT_EQ(sql(sc_, "SELECT count(*) FROM products WHERE price = 0.5"), "count(*)\n100");

  // A second client process sees the snapshot's database, not our writes.
  const std::string inputs = payload::testing::temp_dir() + "/second.txt";
  std::ofstream(inputs) << "SELECT count(*) FROM products WHERE price = 0.5\n%%\n"
                           "SELECT name FROM categories WHERE id = 99\n%%\n"
                           "SELECT count(*) FROM order_items WHERE order_id <= 1000\n%%\n"
                           "SELECT count(*) FROM mine\n";
  e2e::ProcessResult r = payload::testing::run_client("mprotect", {PAYLOAD_CLIENT, image(), inputs});
  ASSERT_TRUE(r.ok()) << r.describe();
  const std::vector<std::string> second = payload::parse_outputs(r.out);
  ASSERT_EQ(second.size(), 4u) << r.out;
  EXPECT_EQ(second[0], "count(*)\n0");
  EXPECT_EQ(second[1], "name");
  EXPECT_NE(second[2], "count(*)\n0") << "the first 1000 orders' items are still there for another client";
  EXPECT_EQ(second[3], "error: no such table: mine");

  // Ours are still there; the image file did not change by one byte.
  EXPECT_EQ(sql(sc_, "SELECT name FROM categories WHERE id = 99"), "name\nPrivate");
  EXPECT_EQ(sql(sc_, "SELECT count(*) FROM order_items WHERE order_id <= 1000"), "count(*)\n0");
  EXPECT_TRUE(file_bytes(image()) == before) << "a client's writes reached the image file";
}

TEST_F(SqliteInProcess, ResetBringsTheSnapshotsDatabaseBack) {
  const std::string original = sql(sc_, "SELECT count(*), sum(rating) FROM reviews");
  EXPECT_EQ(sql(sc_, "DELETE FROM products WHERE id > 10"), "error: FOREIGN KEY constraint failed");
  EXPECT_EQ(sql(sc_, "DELETE FROM reviews WHERE id > 10"), "changes: 29990");
  EXPECT_EQ(sql(sc_, "CREATE TABLE scratch (x)"), "changes: 0");
  EXPECT_EQ(sql(sc_, "SELECT count(*) FROM reviews"), "count(*)\n10");
  const subctx::MemoryInfo dirty = sc_.memory();
  EXPECT_GT(dirty.dirty_pages, 0u);
  sc_.reset();
  EXPECT_EQ(sql(sc_, "SELECT count(*), sum(rating) FROM reviews"), original);
  EXPECT_EQ(sql(sc_, "SELECT count(*) FROM scratch"), "error: no such table: scratch");
  EXPECT_EQ(sql(sc_, "PRAGMA integrity_check"), "integrity_check\nok");
}

// A query that builds a large temporary b-tree (an ORDER BY over every item
// with no index): SQLite's page cache grows inside the subcontext by
// megabytes, and a reset gives them back.
TEST_F(SqliteInProcess, LargeSortsGrowMemoryInsideAndResetGivesItBack) {
  EXPECT_EQ(sql(sc_, "SELECT 1 AS one"), "one\n1");
  const subctx::MemoryInfo before = sc_.memory();
  const std::string out = sql(sc_,
                              "SELECT count(*) FROM (SELECT quantity * unit_price AS v, id FROM order_items "
                              "ORDER BY v DESC, id LIMIT 200000)");
  EXPECT_EQ(out, "count(*)\n200000");
  const subctx::MemoryInfo grown = sc_.memory();
  auto pages = [](const subctx::MemoryInfo& m) { return m.dirty_pages + m.mapped_bytes / 4096; };
  EXPECT_GT(pages(grown), pages(before) + 100) << "a 200 000-row sorter takes hundreds of pages";
  sc_.reset();
  const subctx::MemoryInfo after = sc_.memory();
  EXPECT_LE(after.dirty_pages, before.dirty_pages);
  EXPECT_LE(after.mapped_bytes, before.mapped_bytes);
}

}  // namespace
