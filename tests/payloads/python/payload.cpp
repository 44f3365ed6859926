// The CPython 3.11 payload (Debian's libpython3.11, embedded): an
// interpreter initialized with json, re, decimal, collections and a dozen
// more standard modules imported, and a small library of functions and data
// defined, before the snapshot.  A client passes Python source: an
// expression's value, or the variable `result` a block of statements sets,
// comes back as JSON text; what the code printed comes first; an exception
// comes back as "error: Type: message", never as a crash.
//
// Determinism (a native process and every client print the same bytes):
// the hash seed is fixed (PYTHONHASHSEED=0 semantics: str/bytes hashes and
// so set and dict-of-set orders are the same everywhere), site is not
// imported, and the environment is ignored (isolated configuration).
// CPython installs no signal handlers: signal dispositions belong to the
// client (the Matchmaker refuses rt_sigaction from a subcontext anyway).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "payload.hpp"

namespace payload {

const char* const kName = "python";

namespace {

// Runs in the interpreter before the snapshot.  _payload_run is the whole
// of run(): it never raises (BaseException included: `exit()` is an error
// result, not the end of the process).
constexpr const char* kPrelude = R"PY(
import json, re, decimal, collections, io, sys
import itertools, functools, math, fractions, statistics, string, textwrap, heapq, bisect, operator, datetime, random
from decimal import Decimal
from collections import Counter, OrderedDict, defaultdict, deque, namedtuple

decimal.getcontext().prec = 50

# The library every input may use (defined before the snapshot).
Point = namedtuple("Point", "x y")

def primes(n):
    sieve = bytearray([1]) * (n + 1)
    sieve[0:2] = b"\0\0"
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytes(len(sieve[i * i::i]))
    return [i for i, p in enumerate(sieve) if p]

def fib():
    a, b = 0, 1
    while True:
        yield a
        a, b = b, a + b

def word_counts(text):
    return Counter(re.findall(r"[a-zà-ÿ']+", text.lower()))

class Account:
    def __init__(self, owner, balance=Decimal("0")):
        self.owner, self.balance, self.history = owner, Decimal(balance), []
    def deposit(self, amount):
        amount = Decimal(amount)
        if amount <= 0:
            raise ValueError("deposit must be positive, not %s" % amount)
        self.balance += amount
        self.history.append(("deposit", str(amount)))
        return self.balance
    def withdraw(self, amount):
        amount = Decimal(amount)
        if amount > self.balance:
            raise ValueError("insufficient funds: %s < %s" % (self.balance, amount))
        self.balance -= amount
        self.history.append(("withdraw", str(amount)))
        return self.balance

POEM = """Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date;"""
PRIMES = primes(100000)          # computed by the server, before the snapshot
CITIES = json.loads('[{"name": "Zürich", "pop": 421878}, {"name": "Köln", "pop": 1083498},'
                    ' {"name": "Αθήνα", "pop": 664046}, {"name": "東京", "pop": 13960000}]')
visits = 0
def visit():
    global visits
    visits += 1
    return visits

def _json_default(o):
    if isinstance(o, (Decimal, fractions.Fraction, datetime.date, datetime.time, datetime.timedelta)):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    if isinstance(o, (deque, range)) or hasattr(o, "__next__"):
        return list(o)
    return repr(o)

_env = {name: value for name, value in globals().items() if not name.startswith("_")}
_env["__name__"] = "__payload__"
_env["__builtins__"] = __builtins__

def _payload_run(source):
    printed = io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = printed
    try:
        try:
            code, is_expression = compile(source, "<input>", "eval"), True
        except SyntaxError:
            code, is_expression = compile(source, "<input>", "exec"), False
        value = eval(code, _env) if is_expression else exec(code, _env)
        if not is_expression:
            value = _env.pop("result", None)
        text = json.dumps(value, ensure_ascii=False, default=_json_default)
    except BaseException as e:
        text = "error: %s: %s" % (type(e).__name__, e)
    finally:
        sys.stdout, sys.stderr = saved
    out = printed.getvalue()
    return ("stdout: " + out.rstrip("\n") + "\n" if out else "") + text
)PY";

PyObject* run_function = nullptr;  // _payload_run, a strong reference

std::string fetch_python_error() {
  PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  std::string why = "unknown Python error";
  if (value) {
    if (PyObject* s = PyObject_Str(value)) {
      if (const char* u = PyUnicode_AsUTF8(s)) why = u;
      Py_DECREF(s);
    }
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyErr_Clear();
  return why;
}

void check_status(PyStatus status, const char* what) {
  if (PyStatus_Exception(status))
    throw std::runtime_error(std::string("python: ") + what + ": " + (status.err_msg ? status.err_msg : "failed"));
}

}  // namespace

void init() {
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.install_signal_handlers = 0;
  config.use_hash_seed = 1;
  config.hash_seed = 0;
  config.site_import = 0;
  config.write_bytecode = 0;
  const PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  check_status(status, "Py_InitializeFromConfig");

  PyObject* main_module = PyImport_AddModule("__main__");  // borrowed
  PyObject* globals = main_module ? PyModule_GetDict(main_module) : nullptr;
  if (!globals) throw std::runtime_error("python: no __main__ module");
  PyObject* r = PyRun_String(kPrelude, Py_file_input, globals, globals);
  if (!r) throw std::runtime_error("python: the prelude failed: " + fetch_python_error());
  Py_DECREF(r);
  // The test of the snapshot's refusal: a server whose interpreter runs a
  // second thread (a daemon threading.Thread) cannot be snapshotted.
  if (std::getenv("SUBCTX_PAYLOAD_PYTHON_THREAD")) {
    PyObject* t = PyRun_String(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n",
        Py_file_input, globals, globals);
    if (!t) throw std::runtime_error("python: cannot start the thread: " + fetch_python_error());
    Py_DECREF(t);
  }
  run_function = PyDict_GetItemString(globals, "_payload_run");  // borrowed
  if (!run_function) throw std::runtime_error("python: _payload_run is not defined");
  Py_INCREF(run_function);
}

// An expression and a statement: Python's first compile (the parser's
// state), eval and json.dumps (the encoder's), and the type caches they
// fill.  Neither leaves anything in the environment the inputs see.
std::vector<std::string> warm_up_inputs() { return {"0", "result = 0"}; }

std::string run(std::string_view input) {
  if (!run_function) return "error: not initialized";
  PyObject* source = PyUnicode_DecodeUTF8(input.data(), static_cast<Py_ssize_t>(input.size()), "replace");
  if (!source) return "error: " + fetch_python_error();
  PyObject* result = PyObject_CallOneArg(run_function, source);
  Py_DECREF(source);
  if (!result) return "error: " + fetch_python_error();
  Py_ssize_t n = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(result, &n);
  std::string text = utf8 ? std::string(utf8, static_cast<size_t>(n)) : "error: " + fetch_python_error();
  Py_DECREF(result);
  return text;
}

}  // namespace payload
