// The SQLite payload: an in-memory shop database of some 500 000 rows built
// before the snapshot (customers, products, orders, order items, reviews,
// employees, an FTS5 index, views); clients run SQL text against it.
//
// Every value comes from a fixed LCG, so a native process and the image
// hold the same bytes.  run() prints rows with SQLite's own text
// conversion (sqlite3_column_text), which is deterministic too.
#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

#include "payload.hpp"
#include "sqlite_payload.hpp"

const char* const payload::kName = "sqlite";

namespace {

sqlite3* db = nullptr;

constexpr int kCustomers = 20000;
constexpr int kProducts = 2000;
constexpr int kOrders = 100000;
constexpr int kReviews = 30000;
constexpr int kEmployees = 300;
// More rows than this of one statement are counted, not printed.
constexpr int kMaxPrintedRows = 2000;

// A 64-bit LCG (Knuth's MMIX constants): the same sequence everywhere.
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : s_(seed) {}
  uint32_t next() {
    s_ = s_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(s_ >> 33);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint32_t>(n)); }
  template <size_t N>
  const char* pick(const char* const (&items)[N]) {
    return items[below(static_cast<int>(N))];
  }

 private:
  uint64_t s_;
};

const char* const kFirst[] = {"Anna",  "Ben",  "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida",   "Jonas",
                              "Karla", "Leo",  "Mia",   "Noah",  "Olga", "Paul",  "Quinn", "Rosa", "Sven",  "Tara",
                              "Uwe",   "Vera", "Walt",  "Xenia", "Yuri", "Zoe",   "Ömer",  "José", "Łucja", "Chloé"};
const char* const kLast[] = {"Smith",    "Müller", "Garcia", "Rossi",   "Novak",   "Dubois",  "Jensen",
                             "Kowalski", "Silva",  "Tanaka", "Nguyen",  "O'Brien", "Schmidt", "Moreau",
                             "Larsen",   "Berg",   "Costa",  "Fischer", "Weber",   "Young"};
struct City {
  const char* name;
  const char* country;
};
const City kCities[] = {{"Berlin", "DE"}, {"Hamburg", "DE"}, {"Munich", "DE"}, {"Paris", "FR"},  {"Lyon", "FR"},
                        {"Madrid", "ES"}, {"Seville", "ES"}, {"Rome", "IT"},   {"Milan", "IT"},  {"Vienna", "AT"},
                        {"Zurich", "CH"}, {"Oslo", "NO"},    {"Warsaw", "PL"}, {"Krakow", "PL"}, {"Lisbon", "PT"},
                        {"Porto", "PT"},  {"Tokyo", "JP"},   {"Osaka", "JP"},  {"Austin", "US"}, {"Boston", "US"},
                        {"Denver", "US"}, {"Toronto", "CA"}, {"Dublin", "IE"}, {"Prague", "CZ"}};
const char* const kTiers[] = {"bronze", "bronze", "bronze", "silver", "silver", "gold", "platinum"};
const char* const kAdjectives[] = {"Compact", "Deluxe", "Eco",     "Heavy",  "Light",  "Mini",
                                   "Pro",     "Smart",  "Classic", "Rugged", "Silent", "Turbo"};
const char* const kNouns[] = {"Lamp",    "Kettle", "Drill", "Chair",   "Desk",     "Backpack", "Router", "Speaker",
                              "Blender", "Jacket", "Tent",  "Monitor", "Keyboard", "Mug",      "Bottle", "Scale"};
const char* const kColors[] = {"red", "green", "blue", "black", "white", "silver"};
const char* const kStatus[] = {"delivered", "delivered", "delivered", "delivered", "shipped",
                               "shipped",   "pending",   "cancelled", "returned"};
const char* const kChannels[] = {"web", "web", "app", "app", "phone", "store"};
const char* const kReviewWords[] = {"great", "solid",  "cheap",  "broken", "fast",     "slow",      "quiet",
                                    "loud",  "sturdy", "flimsy", "value",  "returned", "recommend", "disappointing"};
const char* const kDepts[] = {"sales", "support", "engineering", "logistics", "finance"};

// Days since 1970-01-01 → "YYYY-MM-DD" (H. Hinnant's civil_from_days).
std::string date_of(int64_t days) {
  days += 719468;
  const int64_t era = days / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", static_cast<int>(y), static_cast<int>(m), static_cast<int>(d));
  return buf;
}
constexpr int64_t kDay2019 = 17897;  // 2019-01-01
constexpr int64_t kDay2021 = 18628;  // 2021-01-01

void exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string err = std::string("sqlite: ") + (msg ? msg : "?") + " in: " + sql;
    sqlite3_free(msg);
    throw std::runtime_error(err);
  }
}

// One prepared INSERT, reused for every row of a table.
class Inserter {
 public:
  explicit Inserter(const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
  }
  ~Inserter() { sqlite3_finalize(st_); }
  Inserter(const Inserter&) = delete;
  Inserter& operator=(const Inserter&) = delete;

  Inserter& i(int64_t v) {
    sqlite3_bind_int64(st_, ++n_, v);
    return *this;
  }
  Inserter& d(double v) {
    sqlite3_bind_double(st_, ++n_, v);
    return *this;
  }
  Inserter& t(const std::string& v) {
    sqlite3_bind_text(st_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Inserter& null() {
    sqlite3_bind_null(st_, ++n_);
    return *this;
  }
  void row() {
    if (sqlite3_step(st_) != SQLITE_DONE) throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    n_ = 0;
  }

 private:
  sqlite3_stmt* st_ = nullptr;
  int n_ = 0;
};

void create_schema() {
  exec(R"(
    CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL, parent_id INTEGER REFERENCES categories(id));
    CREATE TABLE customers (
      id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL, email TEXT UNIQUE,
      city TEXT, country TEXT, signup_date TEXT, tier TEXT, birth_year INTEGER,
      referrer_id INTEGER REFERENCES customers(id), notes TEXT);
    CREATE TABLE products (
      id INTEGER PRIMARY KEY, sku TEXT UNIQUE, name TEXT NOT NULL, category_id INTEGER REFERENCES categories(id),
      price REAL, cost REAL, stock INTEGER, attrs TEXT, discontinued INTEGER DEFAULT 0);
    CREATE TABLE orders (
      id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), order_date TEXT NOT NULL,
      ship_date TEXT, status TEXT NOT NULL, channel TEXT, discount REAL DEFAULT 0);
    CREATE TABLE order_items (
      id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
      product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL, unit_price REAL NOT NULL);
    CREATE TABLE reviews (
      id INTEGER PRIMARY KEY, product_id INTEGER REFERENCES products(id), customer_id INTEGER REFERENCES customers(id),
      rating INTEGER CHECK (rating BETWEEN 1 AND 5), review_date TEXT, body TEXT);
    CREATE TABLE employees (
      id INTEGER PRIMARY KEY, name TEXT NOT NULL, manager_id INTEGER REFERENCES employees(id),
      dept TEXT, salary INTEGER, hired TEXT);
    CREATE VIRTUAL TABLE review_fts USING fts5(body, content='reviews', content_rowid='id');
  )");
}

void fill_categories() {
  exec(R"(
    INSERT INTO categories (id, name, parent_id) VALUES
      (1, 'All', NULL), (2, 'Home', 1), (3, 'Outdoor', 1), (4, 'Electronics', 1),
      (5, 'Kitchen', 2), (6, 'Furniture', 2), (7, 'Camping', 3), (8, 'Clothing', 3),
      (9, 'Audio', 4), (10, 'Computers', 4), (11, 'Cookware', 5), (12, 'Small appliances', 5),
      (13, 'Peripherals', 10), (14, 'Tents', 7), (15, 'Office', 6), (16, 'Tools', 2);
  )");
}

void fill_customers(Lcg& g) {
  Inserter ins(
      "INSERT INTO customers (id, first_name, last_name, email, city, country, signup_date, tier, birth_year, "
      "referrer_id, notes) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  for (int id = 1; id <= kCustomers; ++id) {
    const std::string first = g.pick(kFirst), last = g.pick(kLast);
    const City& city = kCities[g.below(static_cast<int>(std::size(kCities)))];
    ins.i(id).t(first).t(last).t("user" + std::to_string(id) + "@" + (g.below(3) == 0 ? "example.org" : "mail.test"));
    ins.t(city.name).t(city.country).t(date_of(kDay2019 + g.below(730))).t(g.pick(kTiers)).i(1940 + g.below(66));
    if (id > 100 && g.below(4) == 0) ins.i(1 + g.below(id - 1));
    else ins.null();
    if (g.below(10) == 0) ins.t(std::string("VIP; prefers ") + g.pick(kChannels));
    else ins.null();
    ins.row();
  }
}

void fill_products(Lcg& g) {
  Inserter ins(
      "INSERT INTO products (id, sku, name, category_id, price, cost, stock, attrs, discontinued) "
      "VALUES (?,?,?,?,?,?,?,?,?)");
  for (int id = 1; id <= kProducts; ++id) {
    char sku[32];
    std::snprintf(sku, sizeof sku, "%c%c-%05d", 'A' + g.below(26), 'A' + g.below(26), id);
    const std::string name = std::string(g.pick(kAdjectives)) + " " + g.pick(kNouns) + " " + std::to_string(id % 97);
    const int cents = 199 + g.below(49800);
    const std::string attrs = std::string("{\"color\":\"") + g.pick(kColors) +
                              "\",\"weight_g\":" + std::to_string(50 + g.below(5000)) + ",\"tags\":[\"" +
                              g.pick(kReviewWords) + "\",\"" + g.pick(kReviewWords) + "\"]}";
    ins.i(id).t(sku).t(name).i(2 + g.below(15)).d(cents / 100.0).d((cents * (40 + g.below(40)) / 100) / 100.0);
    ins.i(g.below(500)).t(attrs).i(g.below(20) == 0 ? 1 : 0).row();
  }
}

void fill_orders(Lcg& g) {
  Inserter order(
      "INSERT INTO orders (id, customer_id, order_date, ship_date, status, channel, discount) VALUES (?,?,?,?,?,?,?)");
  Inserter item("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?,?,?,?)");
  for (int id = 1; id <= kOrders; ++id) {
    // Some customers order much more than others (a skewed distribution).
    const int customer = g.below(3) == 0 ? 1 + g.below(2000) : 1 + g.below(kCustomers);
    const int64_t day = kDay2021 + g.below(1095);
    const char* status = g.pick(kStatus);
    order.i(id).i(customer).t(date_of(day));
    if (std::string_view(status) == "pending" || std::string_view(status) == "cancelled") order.null();
    else order.t(date_of(day + 1 + g.below(9)));
    order.t(status).t(g.pick(kChannels)).d(g.below(5) == 0 ? (5 * (1 + g.below(4))) / 100.0 : 0.0).row();
    const int n = 1 + g.below(4);
    for (int k = 0; k < n; ++k) {
      const int product = 1 + g.below(kProducts);
      item.i(id).i(product).i(1 + g.below(5)).d((199 + (product * 7919) % 49800) / 100.0).row();
    }
  }
}

void fill_reviews(Lcg& g) {
  Inserter ins("INSERT INTO reviews (id, product_id, customer_id, rating, review_date, body) VALUES (?,?,?,?,?,?)");
  for (int id = 1; id <= kReviews; ++id) {
    std::string body = g.pick(kReviewWords);
    const int words = 2 + g.below(6);
    for (int w = 0; w < words; ++w) body += std::string(" ") + g.pick(kReviewWords);
    ins.i(id).i(1 + g.below(kProducts)).i(1 + g.below(kCustomers)).i(1 + g.below(5));
    ins.t(date_of(kDay2021 + g.below(1095))).t(body).row();
  }
  exec("INSERT INTO review_fts (rowid, body) SELECT id, body FROM reviews");
}

void fill_employees(Lcg& g) {
  Inserter ins("INSERT INTO employees (id, name, manager_id, dept, salary, hired) VALUES (?,?,?,?,?,?)");
  for (int id = 1; id <= kEmployees; ++id) {
    ins.i(id).t(std::string(g.pick(kFirst)) + " " + g.pick(kLast));
    // A tree: each employee reports to someone hired earlier (id 1 is the root).
    if (id == 1) ins.null();
    else ins.i(id <= 6 ? 1 : 1 + g.below(id / 2 + 1));
    ins.t(kDepts[id % std::size(kDepts)]).i(40000 + 500 * g.below(200)).t(date_of(kDay2019 - 3000 + g.below(3700)));
    ins.row();
  }
}

void create_indexes_and_views() {
  exec(R"(
    CREATE INDEX orders_customer ON orders(customer_id);
    CREATE INDEX orders_date ON orders(order_date);
    CREATE INDEX orders_status_date ON orders(status, order_date);
    CREATE INDEX items_order ON order_items(order_id);
    CREATE INDEX items_product ON order_items(product_id);
    CREATE INDEX customers_place ON customers(country, city);
    CREATE INDEX products_category ON products(category_id);
    CREATE INDEX reviews_product ON reviews(product_id);
    CREATE INDEX employees_manager ON employees(manager_id);
    CREATE VIEW order_totals AS
      SELECT o.id AS order_id, o.customer_id, o.order_date, o.status, count(*) AS items,
             sum(i.quantity) AS units, round(sum(i.quantity * i.unit_price) * (1 - o.discount), 2) AS total
      FROM orders o JOIN order_items i ON i.order_id = o.id GROUP BY o.id;
    CREATE VIEW customer_revenue AS
      SELECT c.id AS customer_id, c.first_name || ' ' || c.last_name AS name, c.country, c.tier,
             count(t.order_id) AS orders, round(coalesce(sum(t.total), 0), 2) AS revenue
      FROM customers c LEFT JOIN order_totals t ON t.customer_id = c.id AND t.status <> 'cancelled'
      GROUP BY c.id;
    CREATE VIEW product_sales AS
      SELECT p.id AS product_id, p.name, p.category_id, sum(i.quantity) AS units,
             round(sum(i.quantity * i.unit_price), 2) AS gross
      FROM products p JOIN order_items i ON i.product_id = p.id GROUP BY p.id;
    CREATE VIEW monthly_sales AS
      SELECT substr(order_date, 1, 7) AS month, count(*) AS orders, round(sum(total), 2) AS revenue
      FROM order_totals WHERE status <> 'cancelled' GROUP BY month;
    ANALYZE;
  )");
}

// One result value as text: SQLite's own conversion; NULL and blobs spelled out.
void append_value(std::string& out, sqlite3_stmt* st, int col) {
  switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: out += "NULL"; return;
    case SQLITE_BLOB: {
      const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(st, col));
      const int n = sqlite3_column_bytes(st, col);
      static const char kHex[] = "0123456789ABCDEF";
      out += "x'";
      for (int k = 0; k < n; ++k) {
        out += kHex[p[k] >> 4];
        out += kHex[p[k] & 15];
      }
      out += '\'';
      return;
    }
    default: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
      out.append(text, static_cast<size_t>(sqlite3_column_bytes(st, col)));
    }
  }
}

// Steps one prepared statement to the end; false (and *error set) on an error.
bool run_statement(sqlite3_stmt* st, std::string& out, std::string* error) {
  const int columns = sqlite3_column_count(st);
  const sqlite3_int64 changes_before = sqlite3_total_changes64(db);
  if (columns > 0) {
    for (int c = 0; c < columns; ++c) {
      if (c) out += '\t';
      out += sqlite3_column_name(st, c);
    }
    out += '\n';
  }
  int64_t rows = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (++rows > kMaxPrintedRows) continue;
    for (int c = 0; c < columns; ++c) {
      if (c) out += '\t';
      append_value(out, st, c);
    }
    out += '\n';
  }
  if (rc != SQLITE_DONE) {
    *error = sqlite3_errmsg(db);
    return false;
  }
  if (rows > kMaxPrintedRows) out += "(" + std::to_string(rows - kMaxPrintedRows) + " more rows)\n";
  // sqlite3_changes() keeps the last INSERT/UPDATE/DELETE's count across
  // other statements (CREATE, BEGIN): report it only when this one changed rows.
  if (columns == 0) {
    const sqlite3_int64 n = sqlite3_total_changes64(db) != changes_before ? sqlite3_changes64(db) : 0;
    out += "changes: " + std::to_string(n) + "\n";
  }
  return true;
}

}  // namespace

sqlite3* sqlite_payload::database() { return db; }

void payload::init() {
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) throw std::runtime_error("sqlite: cannot open :memory:");
  // Temporary tables and sorts stay in memory (never files under /tmp);
  // foreign keys are checked, so clients' writes can fail like real ones.
  exec("PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = ON;");
  create_schema();
  Lcg g(20240501);
  exec("BEGIN");
  fill_categories();
  fill_customers(g);
  fill_products(g);
  fill_orders(g);
  fill_reviews(g);
  fill_employees(g);
  exec("COMMIT");
  create_indexes_and_views();
}

std::string payload::run(std::string_view input) {
  if (!db) return "error: not initialized";
  const std::string sql(input);
  std::string out;
  const char* tail = sql.c_str();
  while (*tail) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK) return std::string("error: ") + sqlite3_errmsg(db);
    if (!st) continue;  // whitespace or a comment
    std::string error;
    const bool ok = run_statement(st, out, &error);
    sqlite3_finalize(st);
    if (!ok) return "error: " + error;
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}
