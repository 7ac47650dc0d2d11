// Python bindings of unimem_native._native. The Python package
// unimem_native/__init__.py wraps these; unimem/capture/native.py is the
// typed front door.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "mlx/array.h"
#include "mlx/utils.h"

#include "cuda_nodes.h"
#include "graph.h"
#include "records.h"
#include "timed.h"

namespace nb = nanobind;
namespace mx = mlx::core;
using namespace unimem;

namespace {

std::vector<mx::array> to_arrays(nb::handle obj) {
  std::vector<mx::array> out;
  if (nb::isinstance<mx::array>(obj)) {
    out.push_back(nb::cast<mx::array>(obj));
    return out;
  }
  for (nb::handle h : obj)
    out.push_back(nb::cast<mx::array>(h));
  return out;
}

// A Python list built in one allocation; `item(i)` returns a new reference.
template <class F>
nb::list make_list(size_t n, F&& item) {
  nb::list out = nb::steal<nb::list>(PyList_New(Py_ssize_t(n)));
  for (size_t i = 0; i < n; i++)
    PyList_SetItem(out.ptr(), Py_ssize_t(i), item(i));
  return out;
}

template <class T>
nb::list int_list(const std::vector<T>& v) {
  return make_list(v.size(), [&](size_t i) {
    if constexpr (std::is_signed_v<T>)
      return PyLong_FromLongLong((long long)v[i]);
    else
      return PyLong_FromUnsignedLongLong((unsigned long long)v[i]);
  });
}

template <class T>
nb::list bool_list(const std::vector<T>& v) {
  return make_list(v.size(), [&](size_t i) { return PyBool_FromLong(v[i]); });
}

// Strings repeat (a few primitive names, a few dtypes): one str object each.
nb::list str_list(size_t n, auto&& text_of) {
  std::unordered_map<std::string, nb::str> seen;
  return make_list(n, [&](size_t i) {
    std::string s = text_of(i);
    auto it = seen.find(s);
    if (it == seen.end())
      it = seen.emplace(s, nb::str(s.c_str())).first;
    return it->second.inc_ref().ptr();
  });
}

// A walk's table, converted to Python lists only when asked for: after the
// eval, so that conversion is not part of the instrumented run's wall time.
nb::dict columns_of(const WalkTable& t) {
  nb::dict d;
  d["id"] = int_list(t.id);
  std::vector<nb::str> names;
  for (auto& n : t.names)
    names.emplace_back(n.c_str(), n.size());
  d["name"] = make_list(
      t.name.size(), [&](size_t i) { return names[t.name[i]].inc_ref().ptr(); });
  d["device"] = str_list(
      t.gpu.size(), [&](size_t i) { return t.gpu[i] ? "gpu" : "cpu"; });
  d["stream"] = int_list(t.stream);
  d["wrapped"] = bool_list(t.wrapped);
  d["out_start"] = int_list(t.out_start);
  d["in_start"] = int_list(t.in_start);
  d["dim_start"] = int_list(t.dim_start);
  d["dims"] = int_list(t.dims);
  std::unordered_map<int, std::string> dtype_names; // a handful per graph
  d["dtype"] = str_list(t.dtype.size(), [&](size_t i) {
    auto [it, fresh] = dtype_names.try_emplace(int(t.dtype[i].val()));
    if (fresh) {
      std::ostringstream os;
      os << t.dtype[i]; // "float32", as Python prints mx.float32
      it->second = os.str();
    }
    return it->second;
  });
  d["nbytes"] = int_list(t.nbytes);
  d["in_node"] = int_list(t.in_node);
  d["in_output"] = int_list(t.in_output);
  return d;
}

nb::dict records_py(bool drain) {
  auto recs = store().completed(drain);
  auto col = [&](auto field) {
    std::vector<int64_t> v;
    v.reserve(recs.size());
    for (auto& r : recs)
      v.push_back(int64_t(field(*r)));
    return int_list(v);
  };
  nb::dict d;
  d["id"] = col([](const Record& r) { return r.serial; });
  d["stream"] = col([](const Record& r) { return r.stream; });
  d["source"] = col([](const Record& r) { return int(r.source); });
  d["start"] = col([](const Record& r) { return r.start; });
  d["end"] = col([](const Record& r) { return r.end; });
  d["worker_tid"] = col([](const Record& r) { return r.worker_tid; });
  d["host_begin"] = col([](const Record& r) { return r.host_begin; });
  d["host_end"] = col([](const Record& r) { return r.host_end; });
  d["host_tid"] = col([](const Record& r) { return r.host_tid; });
  return d;
}

} // namespace

NB_MODULE(_native, m) {
  // mlx.core registers mx.array in nanobind's "mlx" domain; it must be loaded
  // before any cast. And this build is only valid for the MLX it was
  // compiled against (the Primitive vtable and array layout are compiled in).
  nb::module_ mlx_core = nb::module_::import_("mlx.core");
  std::string running = nb::cast<std::string>(mlx_core.attr("__version__"));
  if (running != UNIMEM_MLX_VERSION) {
    std::string msg = "unimem_native was built against MLX " +
        std::string(UNIMEM_MLX_VERSION) + " but MLX " + running +
        " is installed; rebuild it: pip install --no-build-isolation "
        "--force-reinstall --no-deps ./native (from unimem's repository)";
    PyErr_SetString(PyExc_ImportError, msg.c_str());
    throw nb::python_error();
  }

  m.attr("MLX_VERSION") = UNIMEM_MLX_VERSION;
  nb::dict features;
  features["cpu_timing"] = true;
  features["cuda_marker"] = bool(UNIMEM_NATIVE_CUDA_MARKER);
  features["metal_timing"] = bool(UNIMEM_NATIVE_METAL_TIMING);
  features["cupti_nodes"] = node_capture_built();
  m.attr("FEATURES") = features;

  nb::class_<WalkTable>(m, "Walk")
      .def("__len__", [](const WalkTable& t) { return t.id.size(); })
      .def_ro("wrapped_now", &WalkTable::wrapped_now)
      .def("columns", &columns_of);
  m.def(
      "capture",
      [](nb::handle arrays, bool wrap, bool gpu) {
        return unimem::capture(to_arrays(arrays), wrap, gpu);
      },
      nb::arg("arrays"),
      nb::arg("wrap"),
      nb::arg("gpu") = false);
  m.def("records", &records_py, nb::arg("drain") = false);
  m.def("start_node_capture", &start_node_capture, nb::arg("libcupti"));
  m.def("stop_node_capture", &stop_node_capture);
  m.def(
      "node_events",
      [](bool drain) {
        auto ev = node_events(drain);
        std::vector<uint64_t> node, original, primitive;
        std::vector<uint8_t> cloned;
        for (auto& e : ev) {
          node.push_back(e.node);
          original.push_back(e.original);
          primitive.push_back(e.primitive);
          cloned.push_back(e.cloned);
        }
        nb::dict d;
        d["node"] = int_list(node);
        d["original"] = int_list(original);
        d["primitive"] = int_list(primitive);
        d["cloned"] = bool_list(cloned);
        return d;
      },
      nb::arg("drain") = false);
  m.def("pending_count", [] { return store().pending(); });
  m.def("clear", [] { store().clear(); });
  m.def("now_ns", &now_ns);
  m.def("encoding_primitive", &encoding_primitive);
}
