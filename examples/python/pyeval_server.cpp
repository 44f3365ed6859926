// Example server: starts an embedded CPython 3.11, imports json, re, decimal
// and collections (the start-up every client would otherwise pay), exports
// py_eval, snapshots itself and exits.
//
//   py_eval(expression) -> the value as JSON text, or "error: Type: message"
//
// The result string lives in the subcontext until the next call.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <subctx/server.hpp>

static PyObject* evaluate;  // the Python function below, called by py_eval

static const char* const kPrelude = R"PY(
import json, re, decimal, collections, math, statistics
from decimal import Decimal
from collections import Counter

def _evaluate(expression):
    try:
        return json.dumps(eval(expression, globals()), default=str, ensure_ascii=False)
    except BaseException as e:
        return "error: %s: %s" % (type(e).__name__, e)
)PY";

const char* py_eval(const char* expression) {
  static std::string result;
  PyObject* text = PyObject_CallFunction(evaluate, "s", expression);
  const char* utf8 = text ? PyUnicode_AsUTF8(text) : nullptr;
  result = utf8 ? utf8 : "error: the evaluation failed";
  Py_XDECREF(text);
  PyErr_Clear();
  return result.c_str();
}
SUBCTX_EXPORT(py_eval);

int main(int argc, char** argv) {
  const char* image = argc > 1 ? argv[1] : "pyeval.img";
  const auto start = std::chrono::steady_clock::now();

  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.install_signal_handlers = 0;  // signal dispositions belong to the clients
  const PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    std::fprintf(stderr, "server: cannot start Python: %s\n", status.err_msg ? status.err_msg : "?");
    return 1;
  }
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* done = PyRun_String(kPrelude, Py_file_input, globals, globals);
  if (!done) {
    PyErr_Print();
    return 1;
  }
  Py_DECREF(done);
  evaluate = PyDict_GetItemString(globals, "_evaluate");
  Py_INCREF(evaluate);
  std::printf("server: started CPython %d.%d with %zd modules in %.1f ms; writing %s\n", PY_MAJOR_VERSION,
              PY_MINOR_VERSION, PyDict_Size(PySys_GetObject("modules")),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(), image);
  std::fflush(stdout);
  subctx::snapshot_and_exit(image);  // does not return
}
