-- The Lua program the lua payload loads before its snapshot (payload.cpp
-- embeds this file).  Clients evaluate expressions against it.  Everything it
-- returns is deterministic: tables are shown with sorted keys (string hashing
-- is seeded per process), never as addresses.

-- show(v): a value as text, tables with sorted keys.
local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

function show(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.14g", v)
  end
  if t ~= "table" then return t == "function" and "function" or tostring(v) end
  if depth > 8 then return "{...}" end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, key_order)
  local parts = {}
  local n = #v
  for _, k in ipairs(keys) do
    if math.type(k) == "integer" and k >= 1 and k <= n then
      parts[#parts + 1] = show(v[k], depth + 1)
    else
      local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. show(k, depth + 1) .. "]"
      parts[#parts + 1] = ks .. "=" .. show(v[k], depth + 1)
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Closures ------------------------------------------------------------------
function counter(start, step)
  local n = start or 0
  step = step or 1
  return function() n = n + step; return n end
end

function memoize(f)
  local cache = {}
  return function(x)
    local v = cache[x]
    if v == nil then v = f(x); cache[x] = v end
    return v
  end
end

fib = memoize(function(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end)

function compose(...)
  local fs = {...}
  return function(x)
    for i = #fs, 1, -1 do x = fs[i](x) end
    return x
  end
end

function curry(f, a) return function(...) return f(a, ...) end end

-- Functional helpers ----------------------------------------------------------
function map(t, f) local r = {} for i, v in ipairs(t) do r[i] = f(v) end return r end
function filter(t, p) local r = {} for _, v in ipairs(t) do if p(v) then r[#r + 1] = v end end return r end
function reduce(t, f, acc) for _, v in ipairs(t) do acc = f(acc, v) end return acc end
function range(a, b, step)
  local r = {}
  for i = a, b, step or 1 do r[#r + 1] = i end
  return r
end
function sum(t) return reduce(t, function(a, b) return a + b end, 0) end

-- Coroutines ----------------------------------------------------------------
function gen_range(a, b)
  return coroutine.wrap(function() for i = a, b do coroutine.yield(i) end end)
end

function gen_filter(gen, p)
  return coroutine.wrap(function()
    for v in gen do if p(v) then coroutine.yield(v) end end
  end)
end

function take(gen, n)
  local r = {}
  for v in gen do
    r[#r + 1] = v
    if #r >= n then break end
  end
  return r
end

function permutations(t)
  local function permgen(a, n)
    if n <= 1 then coroutine.yield(a)
    else
      for i = 1, n do
        a[n], a[i] = a[i], a[n]
        permgen(a, n - 1)
        a[n], a[i] = a[i], a[n]
      end
    end
  end
  return coroutine.wrap(function() permgen(t, #t) end)
end

function perm_strings(s)
  local chars = {}
  for c in s:gmatch(".") do chars[#chars + 1] = c end
  local out = {}
  for p in permutations(chars) do out[#out + 1] = table.concat(p) end
  table.sort(out)
  return out
end

-- A producer/consumer pipeline with coroutine.resume/yield and status checks.
function pipeline(words)
  local producer = coroutine.create(function()
    for _, w in ipairs(words) do coroutine.yield(w) end
    return "done"
  end)
  local out = {}
  while true do
    local ok, v = coroutine.resume(producer)
    if not ok then return "error in producer" end
    if coroutine.status(producer) == "dead" then out[#out + 1] = v break end
    out[#out + 1] = v:upper()
  end
  return table.concat(out, " ")
end

-- Strings and patterns -----------------------------------------------------
function split(s, sep)
  local r = {}
  for piece in (s .. sep):gmatch("(.-)" .. sep:gsub("%p", "%%%0")) do r[#r + 1] = piece end
  return r
end

function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

function word_counts(text)
  local counts = {}
  for w in text:lower():gmatch("%a+") do counts[w] = (counts[w] or 0) + 1 end
  return counts
end

function top_words(text, n)
  local counts = word_counts(text)
  local words = {}
  for w, c in pairs(counts) do words[#words + 1] = {w, c} end
  table.sort(words, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
  local r = {}
  for i = 1, math.min(n, #words) do r[i] = words[i][1] .. ":" .. words[i][2] end
  return table.concat(r, " ")
end

function camel_to_snake(s) return (s:gsub("(%l)(%u)", "%1_%2"):lower()) end
function snake_to_camel(s) return (s:gsub("_(%l)", function(c) return c:upper() end)) end

function render(template, vars)
  return (template:gsub("{{%s*([%w_]+)%s*}}", function(k)
    local v = vars[k]
    if v == nil then error("template variable '" .. k .. "' is missing", 0) end
    return tostring(v)
  end))
end

function is_palindrome(s)
  s = s:lower():gsub("[^%a]", "")
  return s == s:reverse()
end

function caesar(s, k)
  return (s:gsub("%a", function(c)
    local base = c:match("%l") and 97 or 65
    return string.char((c:byte() - base + k) % 26 + base)
  end))
end

function parse_kv(s)
  local r = {}
  for k, v in s:gmatch("([%w_]+)%s*=%s*([^;]+)") do r[k] = trim(v) end
  return r
end

function dates_in(s)
  local r = {}
  for y, m, d in s:gmatch("(%d%d%d%d)%-(%d%d)%-(%d%d)") do r[#r + 1] = string.format("%s/%s/%s", d, m, y) end
  return r
end

-- JSON encoding of plain tables (sorted keys) -------------------------------
function json(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" or t == "number" then return tostring(v) end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local esc = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\t'] = '\\t'}
      return esc[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  end
  if t ~= "table" then error("cannot encode a " .. t, 0) end
  if #v > 0 or next(v) == nil then
    return "[" .. table.concat(map(v, json), ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = json(k) .. ":" .. json(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Classes with metatables --------------------------------------------------
Vector = {}
Vector.__index = Vector
function Vector.new(x, y) return setmetatable({x = x, y = y}, Vector) end
function Vector.__add(a, b) return Vector.new(a.x + b.x, a.y + b.y) end
function Vector.__sub(a, b) return Vector.new(a.x - b.x, a.y - b.y) end
function Vector.__mul(a, k) return Vector.new(a.x * k, a.y * k) end
function Vector.__eq(a, b) return a.x == b.x and a.y == b.y end
function Vector.__len(a) return math.sqrt(a.x * a.x + a.y * a.y) end
function Vector.__tostring(a) return "(" .. a.x .. ", " .. a.y .. ")" end
function Vector:dot(b) return self.x * b.x + self.y * b.y end

Stack = {}
Stack.__index = Stack
function Stack.new() return setmetatable({items = {}, size = 0}, Stack) end
function Stack:push(v) self.size = self.size + 1; self.items[self.size] = v; return self end
function Stack:pop()
  if self.size == 0 then error({code = "EMPTY", message = "pop from an empty stack"}) end
  local v = self.items[self.size]
  self.items[self.size] = nil
  self.size = self.size - 1
  return v
end
function Stack.__tostring(s) return "Stack(" .. table.concat(map(s.items, tostring), ",") .. ")" end

-- Inheritance
Animal = {sound = "..."}
Animal.__index = Animal
function Animal.new(name) return setmetatable({name = name}, Animal) end
function Animal:speak() return self.name .. " says " .. self.sound end
Dog = setmetatable({sound = "woof"}, {__index = Animal})
Dog.__index = Dog
function Dog.new(name) return setmetatable(Animal.new(name), Dog) end
function Dog:fetch() return self.name .. " fetches" end

-- A read-only proxy and a default-valued table
function readonly(t)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error("attempt to set '" .. tostring(k) .. "' on a read-only table", 2) end,
    __len = function() return #t end,
  })
end
function defaults(d) return setmetatable({}, {__index = function() return d end}) end

-- Errors -------------------------------------------------------------------
function safe_div(a, b)
  if b == 0 then error("division by zero", 0) end
  return a // b, a % b
end

function try(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return "ok: " .. show(err) end
  if type(err) == "table" then return "caught " .. err.code .. ": " .. err.message end
  return "caught: " .. tostring(err)
end

function with_handler(f)
  return select(2, xpcall(f, function(e) return "handled<" .. tostring(e) .. ">" end))
end

function nested_errors()
  local log = {}
  local ok, e = pcall(function()
    local ok2, e2 = pcall(error, "inner", 0)
    log[#log + 1] = tostring(ok2) .. ":" .. e2
    error("outer after " .. e2, 0)
  end)
  log[#log + 1] = tostring(ok) .. ":" .. e
  return table.concat(log, " | ")
end

-- Algorithms ---------------------------------------------------------------
function quicksort(t, lo, hi)
  lo, hi = lo or 1, hi or #t
  if lo < hi then
    local p, i = t[hi], lo - 1
    for j = lo, hi - 1 do
      if t[j] <= p then i = i + 1; t[i], t[j] = t[j], t[i] end
    end
    t[i + 1], t[hi] = t[hi], t[i + 1]
    quicksort(t, lo, i)
    quicksort(t, i + 2, hi)
  end
  return t
end

function merge_sort(t)
  if #t <= 1 then return t end
  local mid = #t // 2
  local a, b = {}, {}
  for i = 1, mid do a[#a + 1] = t[i] end
  for i = mid + 1, #t do b[#b + 1] = t[i] end
  a, b = merge_sort(a), merge_sort(b)
  local r, i, j = {}, 1, 1
  while i <= #a and j <= #b do
    if a[i] <= b[j] then r[#r + 1] = a[i]; i = i + 1 else r[#r + 1] = b[j]; j = j + 1 end
  end
  for k = i, #a do r[#r + 1] = a[k] end
  for k = j, #b do r[#r + 1] = b[k] end
  return r
end

function primes(n)
  local sieve, r = {}, {}
  for i = 2, n do
    if not sieve[i] then
      r[#r + 1] = i
      for j = i * i, n, i do sieve[j] = true end
    end
  end
  return r
end

function gcd(a, b) while b ~= 0 do a, b = b, a % b end return a end
function lcm(a, b) return a // gcd(a, b) * b end

function matmul(a, b)
  local r = {}
  for i = 1, #a do
    r[i] = {}
    for j = 1, #b[1] do
      local s = 0
      for k = 1, #b do s = s + a[i][k] * b[k][j] end
      r[i][j] = s
    end
  end
  return r
end

function collatz_len(n)
  local steps = 0
  while n ~= 1 do n = n % 2 == 0 and n // 2 or 3 * n + 1; steps = steps + 1 end
  return steps
end

-- A small arithmetic evaluator: tokenizer with patterns, recursive descent.
function calc(src)
  local tokens, pos = {}, 1
  local i = 1
  while i <= #src do
    local ws = src:match("^%s+", i)
    if ws then i = i + #ws
    else
      local num = src:match("^%d+%.?%d*", i)
      if num then tokens[#tokens + 1] = tonumber(num); i = i + #num
      else
        local op = src:match("^[%+%-%*/%%%^%(%)]", i)
        if not op then error("bad character '" .. src:sub(i, i) .. "' at " .. i, 0) end
        tokens[#tokens + 1] = op
        i = i + 1
      end
    end
  end
  local function peek() return tokens[pos] end
  local function take_tok() pos = pos + 1; return tokens[pos - 1] end
  local expr
  local function atom()
    local t = take_tok()
    if t == "(" then
      local v = expr()
      if take_tok() ~= ")" then error("expected )", 0) end
      return v
    elseif t == "-" then return -atom()
    elseif type(t) == "number" then return t end
    error("unexpected token " .. tostring(t), 0)
  end
  local function power()
    local v = atom()
    if peek() == "^" then take_tok(); return v ^ power() end
    return v
  end
  local function term()
    local v = power()
    while peek() == "*" or peek() == "/" or peek() == "%" do
      local op, r = take_tok(), power()
      if op == "*" then v = v * r elseif op == "/" then v = v / r else v = v % r end
    end
    return v
  end
  expr = function()
    local v = term()
    while peek() == "+" or peek() == "-" do
      local op, r = take_tok(), term()
      v = op == "+" and v + r or v - r
    end
    return v
  end
  local v = expr()
  if pos <= #tokens then error("trailing input at token " .. pos, 0) end
  return v
end

-- State that persists between calls of one client (private to it).
visits = 0
function visit() visits = visits + 1; return visits end
loaded_at_snapshot = #primes(1000)
