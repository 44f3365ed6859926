#!/usr/bin/env python3
"""Generates inputs.txt of the Python payload (this file is its source: edit
here, then run `python3 make_inputs.py` in this directory).

Each entry is Python source run by the embedded interpreter: an expression's
value, or `result` set by statements, comes back as JSON.  Deterministic:
no clock, no id()/addresses, random only after random.seed(); set orders
are fixed by the payload's hash seed.  Some entries are deliberate errors.
State carries over between entries (the client's private globals).
"""
import os

Q = []


def q(src):
    Q.append(src.strip("\n"))


# ---------------------------------------------------------------- expressions and types
q("1 + 1")
q("2 ** 200")
q("7 // 2, 7 % 3, -7 // 2, -7 % 3, divmod(17, 5)")
q("0.1 + 0.2, 1 / 3, 1e308 * 10, -1e308 * 10")
q("float('nan') != float('nan'), math.isnan(float('nan')), math.inf > 1e308")
q("repr(0.1), repr(1/3), str(2.5e-8), format(1234567.891, ',.2f'), f'{255:#x} {255:08b} {3.14159:.3}'")
q("int('ff', 16), int('0b1011', 0), hex(2**64), oct(8), bin(-5)")
q("round(2.5), round(3.5), round(-0.5), round(1.23456, 3), round(1234, -2)")
q("complex(1, 2) * complex(3, -1), abs(3 + 4j)")
q("True + True, bool(''), bool('0'), None is None, not []")
q("[x * x for x in range(10)]")
q("{x: x ** 3 for x in range(6)}")
q("{'b': 1, 'a': 2, 'c': 3}")
q("sorted({3, 1, 2, 10, -4})")
q("{'apple', 'banana', 'cherry', 'date', 'elderberry'}")
q("frozenset('abracadabra')")
q("tuple(range(0, 30, 7)), list(reversed(range(5))), range(3)")
q("'hello world'.title(), 'Straße'.upper(), 'İ'.lower(), 'ǅ'.swapcase()")
q("'a,b,,c'.split(','), ' x  y '.split(), '-'.join('abc'), 'abc' * 3")
q("'Zürich'.encode('utf-8'), 'Zürich'.encode('latin-1'), b'\\xe2\\x82\\xac'.decode()")
q("len('東京'), len('東京'.encode()), ord('€'), chr(0x1F600), '\\u00e9' == 'é'")
q("'{:>10}|{:<10}|{:^10}'.format('right', 'left', 'mid')")
q("'%s has %d items costing %.2f' % ('cart', 3, 19.989)")
q("str.maketrans('abc', 'xyz'), 'aabbcc'.translate(str.maketrans('abc', 'xyz'))")
q("bytes(range(10)), bytearray(b'abc') + b'def', memoryview(b'hello')[1:4].tobytes()")
q("list(zip('abc', range(3), [True, False, None]))")
q("list(enumerate('xyz', start=10))")
q("any(x > 5 for x in range(10)), all(x < 5 for x in range(10)), sum(range(101)), max('hello'), min([3, 1, 2])")
q("sorted(['banana', 'Apple', 'cherry', 'apple'], key=str.lower)")
q("sorted([(2, 'b'), (1, 'z'), (2, 'a'), (1, 'a')], reverse=True)")
q("list(map(lambda s: s[::-1], ['abc', 'racecar', 'python']))")
q("list(filter(None, [0, 1, '', 'x', [], [0], None, False]))")
q("isinstance(3, int), isinstance(True, int), issubclass(bool, int), type(3.0).__name__, type(None).__name__")
q("hash('abc'), hash(b'abc'), hash((1, 2, 'x')), hash(42), hash(-1), hash(3.5)")

# ---------------------------------------------------------------- statements, result
q("""
total = 0
for i in range(1, 1001):
    if i % 3 == 0 or i % 5 == 0:
        total += i
result = total
""")
q("""
def collatz(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps
result = max(range(1, 10000), key=collatz), collatz(27)
""")
q("collatz(97)")
q("""
squares = []
n = 0
while len(squares) < 10:
    n += 1
    if int(math.isqrt(n)) ** 2 == n:
        squares.append(n)
else_ran = False
for s in squares:
    if s > 1000:
        break
else:
    else_ran = True
result = {"squares": squares, "else_ran": else_ran}
""")
q("""
x = 10
def outer():
    x = 20
    def inner():
        nonlocal x
        x += 1
        return x
    return inner(), inner(), x
result = outer(), x
""")
q("""
print("hello from inside")
print("two", "values", sep="-")
result = "printed"
""")
q("print('only printed')")
q("""
import sys
sys.stderr.write("to stderr\\n")
result = 1
""")
q("""
def gen():
    received = yield 1
    while received is not None:
        received = yield received * 2
g = gen()
result = [next(g), g.send(5), g.send(21)]
""")
q("list(itertools.islice(fib(), 20))")
q("next(itertools.dropwhile(lambda f: f < 10**100, fib()))")
q("""
counter = 0
def make_counter(start):
    count = start
    def step(by=1):
        nonlocal count
        count += by
        return count
    return step
c = make_counter(100)
result = [c(), c(), c(10), c(-50)]
""")
q("""
class Shape:
    def area(self):
        raise NotImplementedError
    def __repr__(self):
        return "%s(area=%.2f)" % (type(self).__name__, self.area())
class Rect(Shape):
    def __init__(self, w, h):
        self.w, self.h = w, h
    def area(self):
        return self.w * self.h
class Circle(Shape):
    def __init__(self, r):
        self.r = r
    def area(self):
        return math.pi * self.r ** 2
shapes = sorted([Rect(3, 4), Circle(1), Rect(1, 1), Circle(2.5)], key=lambda s: s.area())
result = [repr(s) for s in shapes]
""")
q("Shape().area()")
q("""
from dataclasses import dataclass, field, asdict
@dataclass(order=True)
class Item:
    price: Decimal
    name: str = field(compare=False)
    tags: list = field(default_factory=list, compare=False)
items = sorted([Item(Decimal("9.99"), "mug"), Item(Decimal("1.50"), "pen", ["office"]), Item(Decimal("120"), "chair")])
result = [asdict(i) for i in items]
""")
q("""
class Vec:
    __slots__ = ("x", "y")
    def __init__(self, x, y): self.x, self.y = x, y
    def __add__(self, o): return Vec(self.x + o.x, self.y + o.y)
    def __mul__(self, k): return Vec(self.x * k, self.y * k)
    __rmul__ = __mul__
    def __eq__(self, o): return (self.x, self.y) == (o.x, o.y)
    def __hash__(self): return hash((self.x, self.y))
    def __iter__(self): yield self.x; yield self.y
v = 2 * (Vec(1, 2) + Vec(3, 4)) * 3
result = list(v), Vec(1, 1) == Vec(1, 1), len({Vec(1, 1), Vec(1, 1), Vec(2, 1)})
""")
q("""
class Meta(type):
    registry = []
    def __new__(mcls, name, bases, ns):
        cls = super().__new__(mcls, name, bases, ns)
        mcls.registry.append(name)
        return cls
class A(metaclass=Meta): pass
class B(A): pass
result = Meta.registry, B.__mro__[1].__name__
""")
q("""
class Temperature:
    def __init__(self): self._c = 0.0
    @property
    def fahrenheit(self): return self._c * 9 / 5 + 32
    @fahrenheit.setter
    def fahrenheit(self, f): self._c = (f - 32) * 5 / 9
t = Temperature()
t.fahrenheit = 212
result = t._c, t.fahrenheit
""")
q("""
import contextlib
log = []
@contextlib.contextmanager
def tag(name):
    log.append("<%s>" % name)
    try:
        yield name.upper()
    finally:
        log.append("</%s>" % name)
with tag("a") as a, tag("b") as b:
    log.append(a + b)
result = log
""")
q("""
@functools.lru_cache(maxsize=None)
def ways(n, coins=(1, 2, 5, 10, 20, 50, 100, 200)):
    if n == 0: return 1
    if n < 0 or not coins: return 0
    return ways(n - coins[0], coins) + ways(n, coins[1:])
result = ways(200), ways.cache_info().hits > 0
""")
q("""
def deco(tag):
    def wrap(f):
        @functools.wraps(f)
        def inner(*a, **k):
            return "%s(%s)" % (tag, f(*a, **k))
        return inner
    return wrap
@deco("b")
@deco("i")
def word(w): return w
result = word("hi"), word.__name__
""")
q("(lambda *a, **k: (a, sorted(k.items())))(1, 2, z=3, a=4)")
q("""
match_results = []
for cmd in ["go north", "look", "take lamp key", "quit now", 42]:
    match cmd.split() if isinstance(cmd, str) else cmd:
        case ["go", direction]: match_results.append("moving " + direction)
        case ["look"]: match_results.append("looking")
        case ["take", *things]: match_results.append("taking %d" % len(things))
        case int(n): match_results.append("number %d" % n)
        case _: match_results.append("unknown")
result = match_results
""")
q("(walrus := [y for x in range(5) if (y := x * x) % 2 == 0]), walrus[-1]")

# ---------------------------------------------------------------- exceptions
q("1 / 0")
q("[][3]")
q("{}['missing']")
q("int('twelve')")
q("undefined_name + 1")
q("'abc' + 3")
q("None.attribute")
q("raise ValueError('custom failure')")
q("raise KeyError('k')")
q("def broken(:")
q("if True:\nprint('bad indent')")
q("assert 1 == 2, 'one is not two'")
q("import no_such_module_here")
q("sys.exit(3)")
q("raise SystemExit('leaving')")
q("raise KeyboardInterrupt")
q("""
def deep(n):
    return deep(n + 1)
deep(0)
""")
q("sys.getrecursionlimit()")
q("""
try:
    1 / 0
except ZeroDivisionError as e:
    caught = type(e).__name__
finally:
    cleanup = True
result = caught, cleanup
""")
q("""
class AppError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
def handler():
    try:
        raise AppError(404, "not found")
    except AppError as e:
        raise RuntimeError("wrapped") from e
try:
    handler()
except RuntimeError as e:
    result = [str(e), type(e.__cause__).__name__, e.__cause__.code, str(e.__cause__)]
""")
q("""
errors = []
for value in ["1", "x", None, "3.5", [1]]:
    try:
        errors.append(int(value))
    except (ValueError, TypeError) as e:
        errors.append(type(e).__name__)
result = errors
""")
q("""
try:
    raise ExceptionGroup("many", [ValueError("a"), TypeError("b"), ValueError("c")])
except* ValueError as eg:
    result = sorted(str(e) for e in eg.exceptions)
except* TypeError:
    pass
""")
q("Account('ana').withdraw('5')")
q("1 + 2  # the interpreter goes on after errors")

# ---------------------------------------------------------------- json
q("json.dumps({'b': [1, 2.5, None, True], 'a': {'nested': 'é'}}, sort_keys=True)")
q("json.dumps({'b': 1, 'a': 2}, indent=2)")
q("json.loads('{\"x\": [1, 2, {\"y\": null}], \"z\": 1e3, \"s\": \"\\\\u00fc\"}')")
q("json.loads('[1, 2,')")
q("json.dumps(float('nan')), json.dumps('東京'), json.dumps('東京', ensure_ascii=False)")
q("json.loads('123456789012345678901234567890'), json.loads('1.5e400')")
q("json.dumps({'d': Decimal('1.10')}, default=str)")
q("json.dumps(object())")
q("""
doc = {"users": [{"name": "ana", "roles": ["admin", "dev"]}, {"name": "bo", "roles": ["dev"]}]}
text = json.dumps(doc, separators=(",", ":"))
back = json.loads(text)
result = text, back == doc, [u["name"] for u in back["users"] if "admin" in u["roles"]]
""")
q("sorted(c['name'] for c in CITIES), sum(c['pop'] for c in CITIES)")
q("json.JSONDecoder(object_pairs_hook=OrderedDict).decode('{\"z\": 1, \"a\": 2}')")

# ---------------------------------------------------------------- re
q("re.findall(r'\\b\\w+ing\\b', 'singing and dancing in the spring rain while bringing things')")
q("re.sub(r'(\\d+)-(\\d+)', r'\\2-\\1', 'call 555-1234 or 555-9876')")
q("re.split(r'[;,\\s]+', 'a, b;c  d,,e')")
q("m = re.match(r'(?P<user>[\\w.]+)@(?P<host>[\\w.]+)', 'jane.doe@example.org'); result = m.groupdict() if m else None")
q("""
m = re.match(r'(?P<user>[\\w.]+)@(?P<host>[\\w.]+)', 'jane.doe@example.org')
result = m.groupdict(), m.span('host'), m.group(0)
""")
q("[m.group() for m in re.finditer(r'\\d{4}-\\d{2}-\\d{2}', 'from 2024-01-05 to 2024-02-29, not 24-1-1')]")
q("re.fullmatch(r'[A-Z]{2}\\d{2}[A-Z0-9]{1,30}', 'DE89370400440532013000') is not None")
q("re.sub(r'\\s+', ' ', '  many   spaces\\t\\tand\\nlines  ').strip()")
q("re.findall(r'(?i)straße|STRASSE', 'Straße, STRASSE, strasse')")
q("re.findall(r'\\w+', 'Αθήνα Köln 東京 naïve')")
q("re.compile(r'(a|b)*c').pattern, re.compile(r'x', re.I | re.M).flags")
q("re.compile('(unclosed')")
q("re.sub(r'\\b(\\w)(\\w*)\\b', lambda m: m.group(1).upper() + m.group(2), 'the quick brown fox')")
q("word_counts(POEM).most_common(5)")
q("re.escape('1+1=2? (yes)'), re.findall(r'(?<=\\$)\\d+', 'cost $30, tax $4, tip 5')")

# ---------------------------------------------------------------- decimal, fractions, math, statistics
q("Decimal('0.1') + Decimal('0.2'), Decimal(1) / Decimal(7)")
q("decimal.getcontext().prec, Decimal(2).sqrt()")
q("Decimal('1.005').quantize(Decimal('0.01'), rounding=decimal.ROUND_HALF_UP), Decimal('1.005').quantize(Decimal('0.01'))")
q("Decimal('abc')")
q("Decimal(1) / Decimal(0)")
q("sum([Decimal('19.99')] * 3), Decimal('1e-30') * 10**30, Decimal('-0'), Decimal('Infinity') > 10**100")
q("""
with decimal.localcontext() as ctx:
    ctx.prec = 6
    six = Decimal(1) / Decimal(3)
result = six, Decimal(1) / Decimal(3)
""")
q("""
acct = Account("ana", "100.00")
acct.deposit("20.50")
acct.withdraw("0.75")
result = acct.balance, acct.history
""")
q("acct.deposit(-5)")
q("acct.balance")
q("fractions.Fraction(3, 4) + fractions.Fraction(1, 6), fractions.Fraction('0.125'), fractions.Fraction(1, 3).limit_denominator(10)")
q("math.factorial(30), math.comb(52, 5), math.perm(10, 3), math.gcd(462, 1071), math.lcm(4, 6, 10)")
q("math.sqrt(2), math.exp(1), math.log(1000, 10), math.sin(math.pi / 6), math.atan2(1, 1), math.hypot(3, 4)")
q("math.sqrt(-1)")
q("statistics.mean([1, 2, 3, 4, 100]), statistics.median([5, 3, 1, 4]), statistics.mode('aabbbc'), statistics.pstdev([2, 4, 4, 4, 5, 5, 7, 9])")
q("statistics.quantiles(range(1, 101), n=4), statistics.correlation([1, 2, 3, 4], [2, 4, 5, 9])")
q("len(PRIMES), PRIMES[:10], PRIMES[-3:], sum(PRIMES) % 1000007")
q("primes(100)")
q("sum(1 for p in PRIMES if p % 10 == 7), max(b - a for a, b in zip(PRIMES, PRIMES[1:]))")

# ---------------------------------------------------------------- collections, itertools, heapq, bisect
q("Counter('mississippi').most_common(3), Counter(a=3, b=1) - Counter(a=1, b=2)")
q("""
d = defaultdict(list)
for word in "the quick brown fox jumps over the lazy dog the end".split():
    d[len(word)].append(word)
result = dict(sorted(d.items()))
""")
q("""
od = OrderedDict.fromkeys("abcde")
od.move_to_end("b")
od.move_to_end("e", last=False)
od.popitem()
result = list(od)
""")
q("""
dq = deque(range(10), maxlen=5)
dq.appendleft(-1)
dq.rotate(2)
result = list(dq), dq.maxlen
""")
q("p = Point(3, 4); result = p._asdict(), p._replace(y=10), math.hypot(*p)")
q("""
from collections import ChainMap
defaults = {"color": "red", "size": "M"}
user = {"size": "L"}
cm = ChainMap(user, defaults)
result = cm["color"], cm["size"], sorted(cm)
""")
q("list(itertools.permutations('abc', 2))")
q("list(itertools.combinations(range(5), 3))")
q("list(itertools.product('ab', repeat=2)), list(itertools.accumulate([1, 2, 3, 4], operator.mul))")
q("[(k, len(list(g))) for k, g in itertools.groupby('aaabccdddd')]")
q("list(itertools.chain.from_iterable([[1, 2], [3], [], [4, 5]])), list(itertools.zip_longest('ab', 'wxyz', fillvalue='-'))")
q("list(itertools.pairwise('abcd')), list(itertools.compress('abcdef', [1, 0, 1, 0, 1, 1]))")
q("""
h = []
for w in ["pear", "fig", "banana", "kiwi", "apple", "date"]:
    heapq.heappush(h, (len(w), w))
result = [heapq.heappop(h) for _ in range(3)], heapq.nlargest(2, [5, 1, 8, 3, 9]), heapq.nsmallest(2, "zebra")
""")
q("""
grades = [60, 70, 80, 90]
letters = "FDCBA"
result = [letters[bisect.bisect(grades, s)] for s in [33, 99, 77, 70, 89, 90, 100]]
""")
q("functools.reduce(operator.add, range(10)), functools.reduce(lambda a, b: a * b, range(1, 11))")
q("sorted([('b', 2), ('a', 2), ('c', 1)], key=operator.itemgetter(1, 0))")
q("functools.partial(int, base=2)('101101')")

# ---------------------------------------------------------------- text, string, datetime, random
q("textwrap.wrap(POEM.replace('\\n', ' '), 40)")
q("textwrap.dedent('''\n    indented\n      more\n    back''').splitlines()")
q("string.ascii_lowercase, string.Template('$who likes $what').substitute(who='Ana', what='Lua')")
q("string.Template('$missing').substitute()")
q("datetime.date(2024, 2, 28) + datetime.timedelta(days=2), datetime.date(2024, 3, 1).isoweekday()")
q("datetime.datetime(2024, 12, 31, 23, 59) - datetime.datetime(2024, 1, 1), datetime.date.fromisoformat('2023-07-04').strftime('%A %d %B %Y')")
q("datetime.date(2023, 2, 30)")
q("random.seed(42); result = [random.randint(1, 100) for _ in range(8)], random.choice('abcdef'), round(random.random(), 10)")
q("random.seed('subctx'); deck = list(range(20)); random.shuffle(deck); result = deck, random.sample(range(1000), 5)")

# ---------------------------------------------------------------- state (private to the client)
q("visit()")
q("visit(), visit()")
q("visits")
q("memo = {}; result = 'defined'")
q("memo['k'] = 'stored'; result = sorted(memo.items())")
q("memo")
q("del memo; result = 'gone'")
q("memo")
q("result = None")
q("x = 5")
q("pass")

# ---------------------------------------------------------------- larger work
q("""
rows = [{"id": i, "group": "g%d" % (i % 7), "value": (i * 7919) % 1000} for i in range(20000)]
by_group = defaultdict(lambda: [0, 0])
for r in rows:
    by_group[r["group"]][0] += 1
    by_group[r["group"]][1] += r["value"]
result = {g: (n, round(s / n, 3)) for g, (n, s) in sorted(by_group.items())}
""")
q("""
text = " ".join(POEM.split() * 500)
counts = word_counts(text)
result = len(text), counts["summer's"], counts.most_common(2)
""")
q("""
big = list(range(1000000))
result = sum(big), len(big), big[123456]
""")
q("""
matrix = [[(i * j) % 7 for j in range(60)] for i in range(60)]
def mul(a, b):
    return [[sum(x * y for x, y in zip(r, c)) for c in zip(*b)] for r in a]
m2 = mul(matrix, matrix)
result = sum(map(sum, m2)), m2[5][:5]
""")
q("""
s = "".join(chr(0x41 + (i * 31) % 26) for i in range(100000))
compressed = []
for k, g in itertools.groupby(sorted(s)):
    compressed.append("%s%d" % (k, len(list(g))))
result = "".join(compressed)
""")
q("""
graph = {i: [(i * 3 + 1) % 500, (i * 7 + 2) % 500, (i + 1) % 500] for i in range(500)}
def bfs(start, goal):
    seen, frontier, depth = {start}, [start], 0
    while frontier:
        if goal in frontier:
            return depth
        nxt = []
        for node in frontier:
            for n in graph[node]:
                if n not in seen:
                    seen.add(n)
                    nxt.append(n)
        frontier, depth = nxt, depth + 1
    return -1
result = [bfs(0, g) for g in (1, 17, 250, 499)]
""")
q("""
def n_queens(n):
    count = 0
    def place(row, cols, d1, d2):
        nonlocal count
        if row == n:
            count += 1
            return
        for c in range(n):
            if c not in cols and row - c not in d1 and row + c not in d2:
                place(row + 1, cols | {c}, d1 | {row - c}, d2 | {row + c})
    place(0, frozenset(), frozenset(), frozenset())
    return count
result = [n_queens(n) for n in range(1, 9)]
""")
q("""
import fractions as fr
def harmonic(n):
    return sum(fr.Fraction(1, k) for k in range(1, n + 1))
h = harmonic(60)
result = str(h)[:40], float(h)
""")
q("'x' * 10**6 == 'x' * 10**6, len(str(3 ** 20000))")
q("sorted(set('the quick brown fox jumps over the lazy dog')) == sorted(set(string.ascii_lowercase + ' '))")
q("{'set', 'order', 'is', 'fixed', 'by', 'the', 'seed'}, {1.5, 'a', (1, 2), None}")
q("globals_names = sorted(k for k in dir() if not k.startswith('_'))[:12]; result = globals_names")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inputs.txt")
with open(out, "w", encoding="utf-8") as f:
    f.write("\n%%\n".join(Q) + "\n")
print(f"{len(Q)} entries written to {out}")
