// The CPython payload's callbacks (issue 16, docs/callbacks.md): a built-in
// module `host` whose functions call imports every client binds, so Python
// scripts in the image call the client:
//
//   host.add(a, b) -> int     host_add   i64(i64,i64)
//   host.log(text) -> int     host_log   i64(str); a negative result is a
//                             RuntimeError in Python
//
// The module is made after Py_Initialize (payload::init() has run by then,
// too late for PyImport_AppendInittab) and put into sys.modules before the
// snapshot, so `import host` finds it in every client.  Python argument
// errors are raised before any callback; the export py_host_sum runs a
// fixed script that calls both.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <subctx/server.hpp>

#include "payload.hpp"

namespace {

auto host_add = subctx::import <int64_t(int64_t, int64_t)>("host_add");
auto host_log = subctx::import <int64_t(const char*)>("host_log");

PyObject* py_add(PyObject*, PyObject* args) {
  long long a = 0, b = 0;
  if (!PyArg_ParseTuple(args, "LL:add", &a, &b)) return nullptr;
  return PyLong_FromLongLong(host_add(a, b));
}

PyObject* py_log(PyObject*, PyObject* args) {
  const char* text = nullptr;
  if (!PyArg_ParseTuple(args, "s:log", &text)) return nullptr;
  const int64_t r = host_log(text);
  if (r < 0) return PyErr_Format(PyExc_RuntimeError, "host.log: the client refused (%lld)", static_cast<long long>(r));
  return PyLong_FromLongLong(r);
}

PyMethodDef kMethods[] = {
    {"add", py_add, METH_VARARGS, "add(a, b): a + b, computed by the client"},
    {"log", py_log, METH_VARARGS, "log(text): hands text to the client; its answer"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT,
    "host",
    "Functions of the client that mapped this image.",
    -1,
    kMethods,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

void payload::server_init() {
  PyObject* module = PyModule_Create(&kModule);
  if (!module) throw std::runtime_error("python: cannot create the host module");
  const int rc = PyDict_SetItemString(PyImport_GetModuleDict(), "host", module);
  Py_DECREF(module);
  if (rc != 0) throw std::runtime_error("python: cannot add the host module to sys.modules");
}

// Sums 0..n-1 with host.add, one callback each, logs the sum with host.log
// and returns it (the "run" export's output: JSON, or "error: ...").
const char* py_host_sum(int64_t n) {
  static std::string result;
  const std::string count = std::to_string(n);
  result = payload::run(
      "import host\n"
      "total = 0\n"
      "for i in range(" +
      count +
      "):\n"
      "    total = host.add(total, i)\n"
      "host.log('sum below " +
      count +
      ": %d' % total)\n"
      "result = total\n");
  return result.c_str();
}
SUBCTX_EXPORT(py_host_sum);
