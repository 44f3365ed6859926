#!/usr/bin/env python3
"""Generates inputs.txt of the SQLite payload (this file is its source: edit
here, then run `python3 make_inputs.py` in this directory).

Deterministic: no randomness, no clock.  Every query orders everything it
prints by a unique key, uses fixed dates (never 'now'), and no random();
writes come after the reads of the same tables they would change, each
followed by queries reading them back.  A few entries are deliberate errors
("error: ..." outputs).  Entries are separated by lines "%%".
"""
import os

Q = []


def q(sql):
    Q.append(sql.strip())


# ---------------------------------------------------------------- basics
q("SELECT count(*) AS customers FROM customers")
q("SELECT count(*) AS products FROM products")
q("SELECT count(*) AS orders FROM orders")
q("SELECT count(*) AS items FROM order_items")
q("SELECT count(*) AS reviews FROM reviews")
q("SELECT count(*) AS employees FROM employees")
q("SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'review_fts_%' ORDER BY type, name")
q("SELECT * FROM customers WHERE id <= 5 ORDER BY id")
q("SELECT * FROM products WHERE id IN (1, 2, 3, 1000, 2000) ORDER BY id")
q("SELECT * FROM orders ORDER BY id LIMIT 5")
q("SELECT * FROM orders ORDER BY id DESC LIMIT 5")
q("SELECT * FROM order_items WHERE order_id BETWEEN 500 AND 503 ORDER BY id")
q("SELECT * FROM categories ORDER BY id")
q("SELECT id, name, manager_id, dept, salary, hired FROM employees WHERE id <= 12 ORDER BY id")
q("SELECT min(order_date), max(order_date), min(ship_date), max(ship_date) FROM orders")
q("SELECT min(price), max(price), round(avg(price), 4), round(sum(price), 2) FROM products")
q("SELECT count(*), count(ship_date), count(DISTINCT customer_id), count(DISTINCT status) FROM orders")
q("SELECT count(*) FROM customers WHERE referrer_id IS NULL")
q("SELECT count(*) FROM customers WHERE notes IS NOT NULL")
q("SELECT typeof(id), typeof(price), typeof(sku), typeof(attrs), typeof(NULL), typeof(x'00ff') FROM products WHERE id = 1")
q("SELECT 1 + 1, 7 / 2, 7 / 2.0, 7 % 3, -7 % 3, 2 * 3.5, 1e3, 0.1 + 0.2, 1.0 / 3")
q("SELECT 9223372036854775807 AS max_int, -9223372036854775808 AS min_int, 9223372036854775807 + 1 AS overflow")
q("SELECT NULL = NULL, NULL IS NULL, 1 IS NOT NULL, NULL AND 0, NULL OR 1, coalesce(NULL, NULL, 'x'), nullif(3, 3), ifnull(NULL, 5)")
q("SELECT x'48656C6C6F' AS blob, CAST(x'48656C6C6F' AS TEXT) AS text, zeroblob(4) AS zeros, length(zeroblob(10))")

# ---------------------------------------------------------------- filters, ordering, paging
q("SELECT id, first_name, last_name, city FROM customers WHERE country = 'PT' ORDER BY id LIMIT 10")
q("SELECT id, first_name, last_name, city FROM customers WHERE country = 'PT' ORDER BY last_name, first_name, id LIMIT 10 OFFSET 20")
q("SELECT id, name, price FROM products ORDER BY price DESC, id LIMIT 10")
q("SELECT id, name, price FROM products ORDER BY price ASC, id LIMIT 10 OFFSET 5")
q("SELECT id, name, stock FROM products WHERE stock = 0 ORDER BY id")
q("SELECT id, customer_id, order_date FROM orders WHERE order_date BETWEEN '2022-02-01' AND '2022-02-02' ORDER BY order_date, id LIMIT 30")
q("SELECT id, status FROM orders WHERE status IN ('returned', 'cancelled') AND customer_id = 17 ORDER BY id")
q("SELECT id, customer_id FROM orders WHERE customer_id NOT IN (SELECT id FROM customers WHERE id > 10) ORDER BY id LIMIT 20")
q("SELECT DISTINCT country FROM customers ORDER BY country")
q("SELECT DISTINCT city, country FROM customers ORDER BY country DESC, city")
q("SELECT DISTINCT tier FROM customers ORDER BY CASE tier WHEN 'bronze' THEN 1 WHEN 'silver' THEN 2 WHEN 'gold' THEN 3 ELSE 4 END")
q("SELECT id, birth_year FROM customers WHERE birth_year >= 2004 ORDER BY birth_year DESC, id LIMIT 15")
q("SELECT id, email FROM customers ORDER BY email LIMIT 8")
q("SELECT id, email FROM customers ORDER BY email COLLATE NOCASE DESC LIMIT 8")
q("SELECT id, last_name FROM customers ORDER BY last_name DESC, id DESC LIMIT 5 OFFSET 10000")
q("SELECT id FROM orders ORDER BY id LIMIT 3 OFFSET 99998")
q("SELECT id FROM orders ORDER BY id LIMIT -1 OFFSET 99997")
q("SELECT id, name FROM products WHERE discontinued ORDER BY id LIMIT 25")

# ---------------------------------------------------------------- LIKE, GLOB, string functions
for pattern in ["'%Lamp%'", "'pro %'", "'%Mug 1_'", "'Eco%Tent%'", "'%\\_%' ESCAPE '\\'"]:
    q(f"SELECT count(*) AS n, min(id), max(id) FROM products WHERE name LIKE {pattern}")
q("SELECT id, first_name, last_name FROM customers WHERE last_name LIKE 'm%' AND first_name LIKE '_o%' ORDER BY id LIMIT 12")
q("SELECT id, last_name FROM customers WHERE last_name LIKE '%''%' ORDER BY id LIMIT 5")
q("SELECT id, sku FROM products WHERE sku GLOB 'Q[A-F]-*' ORDER BY id")
q("SELECT id, sku FROM products WHERE sku GLOB '*-0001?' ORDER BY id")
q("SELECT id, name FROM products WHERE name GLOB '*[0-9][0-9]' AND name GLOB 'S*' ORDER BY id LIMIT 10")
q("SELECT count(*) FROM products WHERE name GLOB '*lamp*'")
q("SELECT count(*) FROM products WHERE name LIKE '%lamp%'")
q("SELECT id, first_name FROM customers WHERE first_name GLOB '[^A-M]*' ORDER BY id LIMIT 10")
q("SELECT upper('straße'), lower('ÄÖÜ Abc'), length('Łucja'), length(CAST('Łucja' AS BLOB)), unicode('Ö'), char(72, 105, 0x263A)")
q("SELECT substr('subcontext', 4), substr('subcontext', 4, 3), substr('subcontext', -4), substr('subcontext', -4, 2)")
q("SELECT instr('banana', 'an'), instr('banana', 'x'), replace('banana', 'a', 'o'), trim('  pad  '), ltrim('xxabcxx', 'x'), rtrim('xxabcxx', 'x')")
q("SELECT 'a' || 'b' || NULL, 'a' || 1 || 2.5, quote('it''s'), quote(NULL), quote(12.5), quote(x'0102')")
q("SELECT printf('%5d|%-5d|%05.1f|%s|%x|%e', 42, 42, 3.14159, 'str', 255, 12345.678), format('%q', 'O''Brien')")
q("SELECT hex('abc'), hex(123), hex(x'00ff'), unhex_free(1) FROM (SELECT 1 AS unhex_free)")
q("SELECT soundex('Robert'), soundex('Rupert'), soundex('Tymczak')")
q("SELECT id, first_name, upper(substr(last_name, 1, 3)) || '-' || printf('%06d', id) AS code FROM customers ORDER BY id LIMIT 6")
q("SELECT id, email, substr(email, instr(email, '@') + 1) AS domain FROM customers WHERE id % 1000 = 0 ORDER BY id")
q("SELECT substr(email, instr(email, '@') + 1) AS domain, count(*) FROM customers GROUP BY domain ORDER BY domain")
q("SELECT first_name, length(first_name) AS chars, length(CAST(first_name AS BLOB)) AS bytes FROM (SELECT DISTINCT first_name FROM customers) ORDER BY bytes - chars DESC, first_name LIMIT 6")
q("SELECT 'abc' < 'abd', 'B' < 'a', 'B' < 'a' COLLATE NOCASE, 'x' = 'X' COLLATE NOCASE, ' x' = 'x' COLLATE RTRIM, 'x ' = 'x' COLLATE RTRIM")

# ---------------------------------------------------------------- aggregates, GROUP BY, HAVING
q("SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status")
q("SELECT channel, count(*) AS n, round(avg(discount), 4) AS avg_discount FROM orders GROUP BY channel ORDER BY channel")
q("SELECT country, count(*) AS n FROM customers GROUP BY country ORDER BY n DESC, country")
q("SELECT country, city, count(*) AS n FROM customers GROUP BY country, city HAVING n > 850 ORDER BY country, city")
q("SELECT tier, count(*), min(birth_year), max(birth_year), round(avg(birth_year), 2) FROM customers GROUP BY tier ORDER BY tier")
q("SELECT category_id, count(*) AS products, round(avg(price), 2) AS avg_price, min(price), max(price) FROM products GROUP BY category_id ORDER BY category_id")
q("SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id HAVING count(*) >= 25 ORDER BY n DESC, customer_id LIMIT 15")
q("SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id HAVING n = 1 ORDER BY customer_id LIMIT 10")
q("SELECT quantity, count(*) FROM order_items GROUP BY quantity ORDER BY quantity")
q("SELECT items, count(*) FROM order_totals GROUP BY items ORDER BY items")
q("SELECT substr(order_date, 1, 4) AS year, count(*), round(sum(discount), 2) FROM orders GROUP BY year ORDER BY year")
q("SELECT rating, count(*) FROM reviews GROUP BY rating ORDER BY rating")
q("SELECT product_id, count(*) AS n, round(avg(rating), 3) AS avg FROM reviews GROUP BY product_id HAVING n >= 25 ORDER BY avg DESC, product_id LIMIT 10")
q("SELECT dept, count(*), sum(salary), min(salary), max(salary), round(avg(salary), 1) FROM employees GROUP BY dept ORDER BY dept")
q("SELECT total(price), sum(price), total(NULL), sum(NULL), count(NULL), avg(NULL) FROM products WHERE id < 0")
q("SELECT count(*) FILTER (WHERE status = 'delivered') AS delivered, count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE ship_date IS NULL) AS unshipped FROM orders")
q("SELECT group_concat(name, ', ') FROM (SELECT name FROM categories WHERE parent_id = 1 ORDER BY name)")
q("SELECT parent_id, group_concat(id) FROM (SELECT parent_id, id FROM categories ORDER BY parent_id, id) GROUP BY parent_id ORDER BY parent_id")
q("SELECT country, max(birth_year) AS youngest, min(id) FILTER (WHERE tier = 'platinum') AS first_platinum FROM customers GROUP BY country ORDER BY country")
q("SELECT count(*) FROM (SELECT customer_id FROM orders GROUP BY customer_id)")
q("SELECT max(n), min(n) FROM (SELECT count(*) AS n FROM orders GROUP BY customer_id)")
q("SELECT month, orders, revenue FROM monthly_sales ORDER BY month")
q("SELECT * FROM order_totals WHERE order_id IN (1, 2, 3, 50000, 100000) ORDER BY order_id")
q("SELECT status, count(*), round(sum(total), 2), round(avg(total), 2), max(total) FROM order_totals GROUP BY status ORDER BY status")
q("SELECT * FROM customer_revenue ORDER BY revenue DESC, customer_id LIMIT 10")
q("SELECT * FROM product_sales ORDER BY units DESC, product_id LIMIT 10")
q("SELECT tier, count(*), round(avg(revenue), 2) FROM customer_revenue GROUP BY tier ORDER BY tier")

# ---------------------------------------------------------------- joins
q("""SELECT o.id, c.first_name, c.last_name, o.order_date, o.status
FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id BETWEEN 1000 AND 1010 ORDER BY o.id""")
q("""SELECT o.id AS order_id, p.name, i.quantity, i.unit_price, i.quantity * i.unit_price AS line
FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
WHERE o.id IN (7, 77, 777) ORDER BY o.id, i.id""")
q("""SELECT c.country, count(DISTINCT o.id) AS orders, sum(i.quantity) AS units
FROM customers c JOIN orders o ON o.customer_id = c.id JOIN order_items i ON i.order_id = o.id
GROUP BY c.country ORDER BY c.country""")
q("""SELECT cat.name, count(*) AS lines, sum(i.quantity) AS units
FROM order_items i JOIN products p ON p.id = i.product_id JOIN categories cat ON cat.id = p.category_id
GROUP BY cat.id ORDER BY units DESC, cat.id""")
q("""SELECT c.id, c.first_name, count(o.id) AS orders
FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
WHERE c.id BETWEEN 19990 AND 20000 GROUP BY c.id ORDER BY c.id""")
q("""SELECT count(*) AS customers_without_orders FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NULL""")
q("""SELECT p.id, p.name FROM products p LEFT JOIN order_items i ON i.product_id = p.id WHERE i.id IS NULL ORDER BY p.id LIMIT 10""")
q("""SELECT p.id, p.name, count(r.id) AS reviews FROM products p LEFT JOIN reviews r ON r.product_id = p.id
GROUP BY p.id ORDER BY reviews, p.id LIMIT 10""")
q("""SELECT c.id, c.first_name || ' ' || c.last_name AS customer, r.id AS referrer, r.first_name || ' ' || r.last_name AS referred_by
FROM customers c JOIN customers r ON r.id = c.referrer_id WHERE c.id BETWEEN 5000 AND 5100 ORDER BY c.id LIMIT 10""")
q("""SELECT r.id, r.first_name, count(*) AS referrals FROM customers c JOIN customers r ON r.id = c.referrer_id
GROUP BY r.id ORDER BY referrals DESC, r.id LIMIT 10""")
q("""SELECT e.id, e.name, m.name AS manager, e.dept, m.dept AS manager_dept FROM employees e LEFT JOIN employees m ON m.id = e.manager_id
WHERE e.id <= 15 ORDER BY e.id""")
q("""SELECT m.id, m.name, count(e.id) AS reports FROM employees m JOIN employees e ON e.manager_id = m.id
GROUP BY m.id ORDER BY reports DESC, m.id LIMIT 8""")
q("""SELECT e.id, e.name, e.salary, m.salary AS manager_salary FROM employees e JOIN employees m ON m.id = e.manager_id
WHERE e.salary > m.salary ORDER BY e.salary - m.salary DESC, e.id LIMIT 10""")
q("""SELECT a.id, b.id FROM customers a JOIN customers b ON a.email = b.email AND a.id < b.id LIMIT 5""")
q("""SELECT c.id, c.city, p.id AS product FROM customers c CROSS JOIN products p WHERE c.id <= 2 AND p.id <= 3 ORDER BY c.id, p.id""")
q("""SELECT o.id, o.customer_id FROM orders o JOIN customers c USING (id) WHERE c.country = 'NO' ORDER BY o.id LIMIT 5""")
q("""SELECT count(*) FROM orders NATURAL JOIN (SELECT id, 'delivered' AS status FROM orders WHERE id <= 1000)""")
q("""SELECT o.id, r.rating, r.body FROM orders o JOIN order_items i ON i.order_id = o.id
JOIN reviews r ON r.product_id = i.product_id AND r.customer_id = o.customer_id ORDER BY o.id, r.id LIMIT 10""")
q("""SELECT c.tier, o.channel, count(*) AS n FROM orders o JOIN customers c ON c.id = o.customer_id
GROUP BY c.tier, o.channel ORDER BY c.tier, o.channel""")

# ---------------------------------------------------------------- subqueries, EXISTS, set operations
q("SELECT id, name, price FROM products WHERE price > (SELECT avg(price) * 1.9 FROM products) ORDER BY price DESC, id LIMIT 10")
q("SELECT id, first_name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'returned' AND o.order_date < '2021-01-20') ORDER BY id")
q("SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)")
q("SELECT id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS orders, (SELECT max(order_date) FROM orders o WHERE o.customer_id = c.id) AS last FROM customers c WHERE id <= 8 ORDER BY id")
q("SELECT * FROM (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) WHERE n BETWEEN 30 AND 31 ORDER BY customer_id LIMIT 10")
q("SELECT id, price FROM products WHERE price = (SELECT max(price) FROM products) OR price = (SELECT min(price) FROM products) ORDER BY id")
q("SELECT country FROM customers WHERE tier = 'platinum' INTERSECT SELECT country FROM customers WHERE birth_year = 1940 ORDER BY 1")
q("SELECT city FROM customers WHERE country = 'DE' UNION SELECT city FROM customers WHERE country = 'FR' ORDER BY 1")
q("SELECT status FROM orders WHERE id < 100 UNION ALL SELECT status FROM orders WHERE id > 99990 ORDER BY 1 LIMIT 12")
q("SELECT id FROM customers WHERE id < 30 EXCEPT SELECT customer_id FROM orders ORDER BY 1")
q("SELECT id, name FROM categories WHERE id IN (SELECT DISTINCT parent_id FROM categories WHERE parent_id IS NOT NULL) ORDER BY id")
q("SELECT o.id, o.discount, ot.total FROM orders o JOIN order_totals ot ON ot.order_id = o.id WHERE o.discount > 0 ORDER BY ot.total DESC, o.id LIMIT 5")
q("SELECT (SELECT count(*) FROM orders) - (SELECT count(*) FROM orders WHERE ship_date IS NOT NULL) AS unshipped")
q("SELECT id FROM products WHERE category_id IN (SELECT id FROM categories WHERE name LIKE '%o%') AND stock > 495 ORDER BY id")
q("SELECT count(*), sum(price > 100), sum(price <= 100) FROM products")

# ---------------------------------------------------------------- CASE, iif, expressions
q("""SELECT id, price, CASE WHEN price < 50 THEN 'cheap' WHEN price < 200 THEN 'mid' ELSE 'premium' END AS band
FROM products WHERE id <= 10 ORDER BY id""")
q("""SELECT CASE WHEN price < 50 THEN 'cheap' WHEN price < 200 THEN 'mid' ELSE 'premium' END AS band, count(*)
FROM products GROUP BY band ORDER BY band""")
q("SELECT id, status, CASE status WHEN 'delivered' THEN 1 WHEN 'shipped' THEN 2 ELSE 0 END AS code, iif(discount > 0, 'yes', 'no') AS discounted FROM orders WHERE id <= 8 ORDER BY id")
q("SELECT id, birth_year, (2024 - birth_year) / 10 * 10 AS decade FROM customers WHERE id <= 6 ORDER BY id")
q("SELECT (2024 - birth_year) / 10 * 10 AS age_band, count(*) FROM customers GROUP BY age_band ORDER BY age_band")
q("SELECT abs(-5), abs(-2.5), round(2.5), round(-2.5), round(3.14159, 3), max(3, 7, 5), min('b', 'a', 'c'), sign(-3), sign(0)")
q("SELECT CAST('12abc' AS INTEGER), CAST('3.9' AS INTEGER), CAST(3.9 AS INTEGER), CAST(10 AS TEXT) || 'x', CAST('1e2' AS REAL), CAST(NULL AS TEXT)")
q("SELECT 5 BETWEEN 1 AND 10, 'b' BETWEEN 'a' AND 'c', 3 IN (1, 2, 3), 4 NOT IN (1, 2, 3), NULL IN (1), 1 IN ()")
q("SELECT 6 & 3, 6 | 3, ~6, 1 << 10, 1024 >> 3, 5 = 5.0, '5' = 5, typeof('5' + 0)")

# ---------------------------------------------------------------- math functions
q("SELECT sqrt(2), pow(2, 10), power(3, 0.5), exp(1), ln(10), log10(1000), log2(8), log(2, 64)")
q("SELECT ceil(2.1), floor(-2.1), trunc(2.9), trunc(-2.9), mod(10, 3), mod(-10, 3), pi()")
q("SELECT round(sin(pi() / 6), 10), round(cos(0), 10), round(atan2(1, 1), 10), degrees(pi()), radians(180)")
q("SELECT category_id, round(sqrt(avg(price * price) - avg(price) * avg(price)), 4) AS stddev FROM products GROUP BY category_id ORDER BY category_id")

# ---------------------------------------------------------------- date and time (fixed dates only)
q("SELECT date('2024-02-28', '+1 day'), date('2023-02-28', '+1 day'), date('2024-01-31', '+1 month'), date('2024-03-15', 'start of month', '-1 day')")
q("SELECT datetime('2024-05-01 12:34:56', '+90 minutes'), time('23:59:59', '+2 seconds'), datetime('2024-05-01', 'start of year', '+6 months', 'weekday 0')")
q("SELECT julianday('2024-12-25') - julianday('2024-01-01'), strftime('%j', '2024-12-31'), strftime('%W %w %u', '2024-06-15'), strftime('%Y/%m/%d %H:%M', '2024-06-15 08:05')")
q("SELECT unixepoch('2024-01-01 00:00:00'), datetime(1700000000, 'unixepoch'), date(2460000.5), strftime('%s', '1970-01-02')")
q("SELECT strftime('%Y-%m', order_date) AS month, count(*) FROM orders WHERE order_date < '2021-07-01' GROUP BY month ORDER BY month")
q("SELECT strftime('%w', order_date) AS weekday, count(*) FROM orders GROUP BY weekday ORDER BY weekday")
q("SELECT id, order_date, ship_date, julianday(ship_date) - julianday(order_date) AS days FROM orders WHERE id <= 10 ORDER BY id")
q("SELECT CAST(julianday(ship_date) - julianday(order_date) AS INTEGER) AS days, count(*) FROM orders WHERE ship_date IS NOT NULL GROUP BY days ORDER BY days")
q("SELECT id, signup_date, date(signup_date, '+1 year') AS anniversary, strftime('%Y', signup_date) AS year FROM customers WHERE id <= 5 ORDER BY id")
q("SELECT count(*) FROM orders WHERE order_date >= date('2023-12-31', '-30 days')")
q("SELECT strftime('%Y', hired) AS year, count(*) FROM employees GROUP BY year ORDER BY year LIMIT 6")
q("SELECT date('2024-13-01'), date('not a date'), julianday('2000-01-01 12:00:00')")

# ---------------------------------------------------------------- window functions
q("""SELECT id, customer_id, order_date, row_number() OVER (PARTITION BY customer_id ORDER BY order_date, id) AS nth
FROM orders WHERE customer_id = 42 ORDER BY order_date, id""")
q("""SELECT id, name, price, rank() OVER w AS rank, dense_rank() OVER w AS dense, round(percent_rank() OVER w, 4) AS pct
FROM products WHERE category_id = 9 WINDOW w AS (ORDER BY price DESC) ORDER BY price DESC, id LIMIT 12""")
q("""SELECT category_id, id, price, rank() OVER (PARTITION BY category_id ORDER BY price DESC) AS r
FROM products WHERE true QUALIFY_NONE""".replace(" WHERE true QUALIFY_NONE", " ORDER BY category_id, r, id LIMIT 20"))
q("""SELECT * FROM (SELECT category_id, id, name, price, row_number() OVER (PARTITION BY category_id ORDER BY price DESC, id) AS r FROM products)
WHERE r <= 2 ORDER BY category_id, r""")
q("""SELECT id, order_date, lag(order_date) OVER w AS previous, lead(order_date) OVER w AS next,
  lag(id, 2, -1) OVER w AS two_back FROM orders WHERE customer_id = 7 WINDOW w AS (ORDER BY order_date, id) ORDER BY order_date, id""")
q("""SELECT month, orders, sum(orders) OVER (ORDER BY month) AS running_orders,
  round(sum(revenue) OVER (ORDER BY month ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), 2) AS revenue_3m
FROM monthly_sales ORDER BY month""")
q("""SELECT order_id, total, round(avg(total) OVER (ORDER BY order_id ROWS BETWEEN 3 PRECEDING AND 3 FOLLOWING), 2) AS moving_avg
FROM order_totals WHERE order_id BETWEEN 100 AND 115 ORDER BY order_id""")
q("""SELECT id, salary, dept, sum(salary) OVER (PARTITION BY dept) AS dept_total,
  round(100.0 * salary / sum(salary) OVER (PARTITION BY dept), 3) AS pct_of_dept FROM employees WHERE id <= 10 ORDER BY id""")
q("""SELECT id, rating, ntile(4) OVER (ORDER BY rating, id) AS quartile, cume_dist() OVER (ORDER BY rating) AS cume
FROM reviews WHERE product_id = 100 ORDER BY rating, id""")
q("""SELECT id, price, first_value(id) OVER w AS cheapest, last_value(id) OVER w AS dearest, nth_value(id, 2) OVER w AS second
FROM products WHERE category_id = 14 WINDOW w AS (ORDER BY price, id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
ORDER BY price, id LIMIT 8""")
q("""SELECT customer_id, order_id, total, sum(total) OVER (PARTITION BY customer_id ORDER BY order_id) AS running
FROM order_totals WHERE customer_id IN (3, 4) ORDER BY customer_id, order_id""")
q("""SELECT country, revenue, rank() OVER (ORDER BY revenue DESC) AS r FROM
(SELECT country, round(sum(revenue), 2) AS revenue FROM customer_revenue GROUP BY country) ORDER BY r, country""")
q("""SELECT id, order_date, count(*) OVER (ORDER BY order_date RANGE BETWEEN CURRENT ROW AND CURRENT ROW) AS same_day
FROM orders WHERE customer_id = 1 ORDER BY order_date, id LIMIT 10""")
q("""SELECT id, rating, group_concat(rating, '') OVER (ORDER BY id ROWS 4 PRECEDING) AS last5
FROM reviews WHERE product_id = 5 ORDER BY id""")
q("""SELECT id, salary, salary - lag(salary) OVER (ORDER BY salary, id) AS gap FROM employees ORDER BY gap DESC NULLS LAST, id LIMIT 5""")
q("""SELECT dept, id, salary FROM (SELECT dept, id, salary, rank() OVER (PARTITION BY dept ORDER BY salary DESC) AS r FROM employees)
WHERE r = 1 ORDER BY dept, id""")
q("""SELECT id, price, round(price - avg(price) OVER (PARTITION BY category_id), 2) AS vs_category FROM products WHERE id <= 8 ORDER BY id""")
q("""SELECT o.id, o.order_date, count(*) OVER (PARTITION BY o.customer_id ORDER BY o.order_date, o.id
  GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW) AS neighbours FROM orders o WHERE customer_id = 11 ORDER BY o.order_date, o.id""")

# ---------------------------------------------------------------- CTEs, recursive
q("""WITH big AS (SELECT customer_id, sum(total) AS spent FROM order_totals GROUP BY customer_id)
SELECT c.id, c.first_name, c.last_name, round(b.spent, 2) FROM big b JOIN customers c ON c.id = b.customer_id
ORDER BY b.spent DESC, c.id LIMIT 5""")
q("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT i, i * i, i * i * i FROM n ORDER BY i""")
q("""WITH RECURSIVE fib(n, a, b) AS (SELECT 1, 0, 1 UNION ALL SELECT n + 1, b, a + b FROM fib WHERE n < 60) SELECT n, a FROM fib ORDER BY n""")
q("""WITH RECURSIVE tree(id, name, depth, path) AS (
  SELECT id, name, 0, name FROM categories WHERE parent_id IS NULL
  UNION ALL SELECT c.id, c.name, t.depth + 1, t.path || ' > ' || c.name FROM categories c JOIN tree t ON c.parent_id = t.id)
SELECT id, depth, path FROM tree ORDER BY path""")
q("""WITH RECURSIVE chain(id, name, manager_id, level) AS (
  SELECT id, name, manager_id, 0 FROM employees WHERE id = 250
  UNION ALL SELECT e.id, e.name, e.manager_id, c.level + 1 FROM employees e JOIN chain c ON e.id = c.manager_id)
SELECT id, name, level FROM chain ORDER BY level""")
q("""WITH RECURSIVE sub(id, depth) AS (SELECT 2, 0 UNION ALL SELECT e.id, s.depth + 1 FROM employees e JOIN sub s ON e.manager_id = s.id)
SELECT depth, count(*) FROM sub GROUP BY depth ORDER BY depth""")
q("""WITH RECURSIVE days(d) AS (SELECT '2022-03-01' UNION ALL SELECT date(d, '+1 day') FROM days WHERE d < '2022-03-10')
SELECT d, (SELECT count(*) FROM orders WHERE order_date = d) AS orders FROM days ORDER BY d""")
q("""WITH RECURSIVE digits(n, rest, sum) AS (SELECT 0, 9876543210, 0 UNION ALL SELECT n + 1, rest / 10, sum + rest % 10 FROM digits WHERE rest > 0)
SELECT max(n) AS digits, max(sum) AS digit_sum FROM digits""")
q("""WITH RECURSIVE collatz(n, steps) AS (SELECT 27, 0 UNION ALL SELECT CASE WHEN n % 2 THEN 3 * n + 1 ELSE n / 2 END, steps + 1 FROM collatz WHERE n > 1)
SELECT max(steps), max(n) FROM collatz""")
q("""WITH RECURSIVE refs(id, root, depth) AS (SELECT id, id, 0 FROM customers WHERE id = 19999
  UNION ALL SELECT c.referrer_id, r.root, r.depth + 1 FROM refs r JOIN customers c ON c.id = r.id WHERE c.referrer_id IS NOT NULL)
SELECT id, depth FROM refs ORDER BY depth""")
q("""WITH a AS (SELECT status, count(*) AS n FROM orders GROUP BY status), b AS (SELECT sum(n) AS total FROM a)
SELECT status, n, round(100.0 * n / total, 2) AS pct FROM a, b ORDER BY status""")
q("""WITH RECURSIVE m(x, y, iter) AS (SELECT 0.0, 0.0, 0 UNION ALL SELECT x * x - y * y - 0.5, 2 * x * y + 0.5, iter + 1 FROM m WHERE iter < 20 AND x * x + y * y < 4)
SELECT iter, round(x, 6), round(y, 6) FROM m ORDER BY iter DESC LIMIT 3""")
q("""WITH RECURSIVE s(i, acc) AS (SELECT 1, '' UNION ALL SELECT i + 1, acc || char(64 + i) FROM s WHERE i <= 26) SELECT acc FROM s ORDER BY i DESC LIMIT 1""")
q("""WITH first_orders AS (SELECT customer_id, min(order_date) AS first FROM orders GROUP BY customer_id)
SELECT substr(first, 1, 4) AS cohort, count(*) FROM first_orders GROUP BY cohort ORDER BY cohort""")
q("""WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt LIMIT 100000) SELECT count(*), sum(x), max(x) FROM cnt""")

# ---------------------------------------------------------------- JSON
q("""SELECT id, attrs, json_extract(attrs, '$.color') AS color, attrs ->> '$.weight_g' AS weight, attrs -> '$.tags' AS tags
FROM products WHERE id <= 5 ORDER BY id""")
q("SELECT attrs ->> '$.color' AS color, count(*), round(avg(attrs ->> '$.weight_g'), 2) FROM products GROUP BY color ORDER BY color")
q("SELECT json_object('id', id, 'name', name, 'price', price) FROM products WHERE id IN (10, 20) ORDER BY id")
q("SELECT json_array(1, 2.5, 'three', NULL, json('{\"x\":1}')), json_array_length('[1,2,3,[4]]'), json_type('{\"a\":[1]}', '$.a')")
q("SELECT json_group_array(id) FROM (SELECT id FROM customers WHERE country = 'IE' ORDER BY id LIMIT 10)")
q("SELECT json_group_object(status, n) FROM (SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status)")
q("SELECT p.id, t.key, t.value FROM products p, json_each(p.attrs, '$.tags') t WHERE p.id <= 3 ORDER BY p.id, t.key")
q("SELECT t.value AS tag, count(*) FROM products p, json_each(p.attrs, '$.tags') t GROUP BY tag ORDER BY count(*) DESC, tag")
q("SELECT fullkey, type, atom FROM json_tree('{\"a\":{\"b\":[1,2]},\"c\":null}') ORDER BY id")
q("SELECT json_set('{\"a\":1}', '$.b', 2), json_insert('{\"a\":1}', '$.a', 9), json_replace('{\"a\":1}', '$.a', 9), json_remove('[1,2,3]', '$[1]'), json_patch('{\"a\":1,\"b\":2}', '{\"b\":null,\"c\":3}')")
q("SELECT json_valid('{\"a\":1}'), json_valid('{a:1}'), json_quote('say \"hi\"'), json('  [1, 2 ]  ')")
q("SELECT json('{not json')")

# ---------------------------------------------------------------- full-text search (FTS5)
q("SELECT count(*) FROM review_fts WHERE review_fts MATCH 'sturdy AND quiet'")
q("SELECT rowid, body FROM review_fts WHERE review_fts MATCH 'recommend NOT broken' ORDER BY rowid LIMIT 8")
q("SELECT rowid, highlight(review_fts, 0, '[', ']') FROM review_fts WHERE review_fts MATCH '\"great value\"' ORDER BY rowid LIMIT 5")
q("SELECT r.product_id, count(*) FROM review_fts f JOIN reviews r ON r.id = f.rowid WHERE review_fts MATCH 'disappoint*' GROUP BY r.product_id ORDER BY count(*) DESC, r.product_id LIMIT 5")

# ---------------------------------------------------------------- pragmas and schema introspection
q("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('orders') ORDER BY cid")
q("SELECT name, \"unique\" FROM pragma_index_list('customers') ORDER BY name")
q("SELECT name FROM pragma_index_info('orders_status_date') ORDER BY seqno")
q("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('order_items') ORDER BY id")
q("PRAGMA foreign_keys")
q("SELECT sqlite_version() >= '3.30', sqlite_compileoption_used('ENABLE_FTS5'), total_changes() >= 0")

# ---------------------------------------------------------------- deliberate errors
q("SELECT * FROM no_such_table")
q("SELEC id FROM customers")
q("SELECT no_such_column FROM customers")
q("SELECT count(*) FROM customers WHERE")
q("SELECT abs(1, 2)")
q("INSERT INTO orders (id, customer_id, order_date, status) VALUES (1, 1, '2024-01-01', 'pending')")
q("INSERT INTO orders (id, customer_id, order_date, status) VALUES (200001, 999999, '2024-01-01', 'pending')")
q("INSERT INTO reviews (product_id, customer_id, rating, review_date, body) VALUES (1, 1, 9, '2024-01-01', 'too good')")
q("SELECT 1; SELECT * FROM nope; SELECT 2")
q("SELECT id FROM customers UNION SELECT id, id FROM products")
q("CREATE TABLE customers (x)")
q("SELECT json_extract('[1,2', '$[0]')")
q("SELECT count(*) FROM customers")  # still usable after the errors

# ---------------------------------------------------------------- writes inside the subcontext, read back
q("UPDATE customers SET tier = 'diamond', notes = 'upgraded' WHERE id IN (1, 2, 3)")
q("SELECT id, tier, notes FROM customers WHERE id <= 4 ORDER BY id")
q("SELECT tier, count(*) FROM customers GROUP BY tier ORDER BY tier")
q("INSERT INTO customers (id, first_name, last_name, email, city, country, signup_date, tier, birth_year) VALUES (20001, 'New', 'Client', 'new@client.test', 'Reykjavik', 'IS', '2024-05-01', 'bronze', 1999)")
q("SELECT * FROM customers WHERE id > 19999 ORDER BY id")
q("INSERT INTO orders (id, customer_id, order_date, status, channel) VALUES (100001, 20001, '2024-05-02', 'pending', 'web') RETURNING id, customer_id, discount")
q("INSERT INTO order_items (order_id, product_id, quantity, unit_price) SELECT 100001, id, 2, price FROM products WHERE id IN (1, 2, 3) RETURNING order_id, product_id, quantity, unit_price")
q("SELECT * FROM order_totals WHERE order_id = 100001")
q("SELECT * FROM customer_revenue WHERE customer_id = 20001")
q("UPDATE orders SET status = 'shipped', ship_date = date(order_date, '+2 days') WHERE id = 100001")
q("SELECT id, status, ship_date FROM orders WHERE id = 100001")
q("UPDATE products SET price = round(price * 1.1, 2) WHERE category_id = 14")
q("SELECT id, price FROM products WHERE category_id = 14 ORDER BY id LIMIT 5")
q("UPDATE products SET stock = stock - 1 WHERE stock > 0 AND id % 100 = 0")
q("SELECT count(*), sum(stock) FROM products")
q("DELETE FROM reviews WHERE rating = 1 AND product_id < 100")
q("SELECT rating, count(*) FROM reviews GROUP BY rating ORDER BY rating")
q("DELETE FROM reviews WHERE id < 0")
q("""CREATE TABLE wishlist (customer_id INTEGER REFERENCES customers(id), product_id INTEGER REFERENCES products(id),
  added TEXT, PRIMARY KEY (customer_id, product_id)) WITHOUT ROWID""")
q("INSERT INTO wishlist SELECT c.id, p.id, '2024-06-01' FROM customers c, products p WHERE c.id <= 50 AND p.id % 400 = c.id % 400")
q("SELECT count(*) FROM wishlist")
q("CREATE INDEX wishlist_product ON wishlist(product_id)")
q("SELECT product_id, count(*) FROM wishlist GROUP BY product_id ORDER BY product_id")
q("SELECT w.customer_id, p.name FROM wishlist w JOIN products p ON p.id = w.product_id ORDER BY w.customer_id, w.product_id LIMIT 6")
q("INSERT INTO wishlist VALUES (1, 1, '2024-06-02') ON CONFLICT (customer_id, product_id) DO UPDATE SET added = excluded.added")
q("INSERT INTO wishlist VALUES (1, 1, '2024-06-03') ON CONFLICT (customer_id, product_id) DO UPDATE SET added = excluded.added")
q("SELECT * FROM wishlist WHERE customer_id = 1 ORDER BY product_id")
q("INSERT OR IGNORE INTO wishlist VALUES (1, 1, '2030-01-01')")
q("INSERT OR REPLACE INTO wishlist VALUES (2, 2, '2024-07-01')")
q("SELECT * FROM wishlist WHERE customer_id IN (1, 2) ORDER BY customer_id, product_id")
q("""CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT, order_id INTEGER, old_status TEXT, new_status TEXT);
CREATE TRIGGER orders_audit AFTER UPDATE OF status ON orders BEGIN
  INSERT INTO audit (what, order_id, old_status, new_status) VALUES ('status', new.id, old.status, new.status);
END""")
q("UPDATE orders SET status = 'cancelled' WHERE status = 'pending' AND order_date < '2021-01-05'")
q("SELECT count(*) AS n, min(order_id), max(order_id), old_status, new_status FROM audit GROUP BY old_status, new_status ORDER BY old_status")
q("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
q("BEGIN; UPDATE customers SET city = 'Atlantis' WHERE id = 10; SELECT city FROM customers WHERE id = 10; ROLLBACK")
q("SELECT id, city FROM customers WHERE id = 10")
q("BEGIN; INSERT INTO categories (id, name, parent_id) VALUES (17, 'Garden', 2); SAVEPOINT s1; INSERT INTO categories (id, name, parent_id) VALUES (18, 'Pets', 1); ROLLBACK TO s1; COMMIT")
q("SELECT id, name, parent_id FROM categories WHERE id >= 16 ORDER BY id")
q("CREATE TEMP TABLE scratch AS SELECT id, price FROM products WHERE id <= 100")
q("SELECT count(*), round(sum(price), 2) FROM temp.scratch")
q("CREATE VIEW top_referrers AS SELECT referrer_id, count(*) AS n FROM customers WHERE referrer_id IS NOT NULL GROUP BY referrer_id")
q("SELECT * FROM top_referrers ORDER BY n DESC, referrer_id LIMIT 5")
q("""CREATE TABLE numbers (n INTEGER PRIMARY KEY, square INTEGER, label TEXT);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 20000)
INSERT INTO numbers SELECT i, i * i, printf('n%05d', i) FROM r""")
q("SELECT count(*), sum(square), min(label), max(label) FROM numbers")
q("SELECT n, label FROM numbers WHERE label GLOB 'n1234?' ORDER BY n")
q("DELETE FROM numbers WHERE n % 3 = 0")
q("SELECT count(*), sum(n) FROM numbers")
q("ALTER TABLE numbers ADD COLUMN parity TEXT DEFAULT 'odd'")
q("UPDATE numbers SET parity = 'even' WHERE n % 2 = 0")
q("SELECT parity, count(*) FROM numbers GROUP BY parity ORDER BY parity")
q("ALTER TABLE numbers RENAME TO numbers2")
q("SELECT count(*) FROM numbers")
q("SELECT count(*) FROM numbers2")
q("DROP TABLE numbers2")
q("SELECT count(*) FROM numbers2")
q("DROP VIEW top_referrers")
q("DROP TRIGGER orders_audit")
q("UPDATE orders SET status = 'returned' WHERE id = 2")
q("SELECT count(*) FROM audit")
q("DELETE FROM order_items WHERE order_id = 100001")
q("DELETE FROM orders WHERE id = 100001")
q("SELECT count(*) FROM orders")
q("SELECT count(*) FROM orders WHERE id > 100000")
q("VACUUM")
q("SELECT count(*), sum(quantity) FROM order_items")
q("PRAGMA integrity_check")
q("SELECT count(*) FROM customers WHERE tier = 'diamond'")
# SQLite's sorter with worker threads (docs/threads.md): a sort that spills
# past a small cache merges its runs on up to 4 threads inside the
# subcontext (under mprotect, which refuses threads, SQLite sorts on the
# calling thread: the same rows).
q("PRAGMA threads = 4; PRAGMA cache_size = -64; "
  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
  "SELECT count(*), sum(rn * x) % 1000000007 FROM (SELECT x, row_number() OVER (ORDER BY x, i) AS rn "
  "FROM (SELECT i, (i * 7919) % 300007 AS x FROM n)); PRAGMA threads = 0; PRAGMA cache_size = -2000")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inputs.txt")
with open(out, "w", encoding="utf-8") as f:
    f.write("\n%%\n".join(Q) + "\n")
print(f"{len(Q)} entries written to {out}")
