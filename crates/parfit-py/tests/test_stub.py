"""The type stub of the extension module (`_native.pyi`) says what the module really takes: every function and
method of the Rust side is in it, with the same parameters, in the same order, of the same kind (positional or
keyword-only). Type checkers read the stub; a stub that drifted from the code misleads users' editors."""

from __future__ import annotations

import ast
import inspect
import pathlib

import parfit._native as native

STUB = pathlib.Path(native.__file__).with_name("_native.pyi")


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, str]]:
    a = fn.args
    params = [(p.arg, "positional") for p in a.posonlyargs + a.args]
    params += [(p.arg, "keyword") for p in a.kwonlyargs]
    return [p for p in params if p[0] != "self"]


def _runtime_params(obj) -> list[tuple[str, str]]:
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "positional",
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
        inspect.Parameter.KEYWORD_ONLY: "keyword",
    }
    return [(p.name, kinds[p.kind]) for p in inspect.signature(obj).parameters.values() if p.name != "self"]


def _stub() -> tuple[dict[str, ast.FunctionDef], dict[str, dict[str, ast.FunctionDef]]]:
    tree = ast.parse(STUB.read_text(), filename=str(STUB))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {
        n.name: {m.name: m for m in n.body if isinstance(m, ast.FunctionDef)}
        for n in tree.body
        if isinstance(n, ast.ClassDef)
    }
    return functions, classes


def test_every_function_of_the_module_is_in_the_stub_with_its_parameters():
    functions, _ = _stub()
    runtime = {name: f for name, f in vars(native).items() if inspect.isbuiltin(f) and not name.startswith("_")}
    assert sorted(functions) == sorted(runtime)
    for name, f in runtime.items():
        assert _stub_params(functions[name]) == _runtime_params(f), name


def test_every_class_of_the_module_is_in_the_stub_with_its_methods():
    _, classes = _stub()
    runtime = {name: c for name, c in vars(native).items() if inspect.isclass(c)}
    assert sorted(classes) == sorted(runtime)
    for name, cls in runtime.items():
        if issubclass(cls, BaseException):
            continue
        methods = classes[name]
        assert _stub_params(methods["__init__"]) == _runtime_params(cls), name
        public = {
            m: v for m, v in vars(cls).items() if not m.startswith("_") and not isinstance(v, property) and callable(v)
        }
        properties = {m for m, v in vars(cls).items() if inspect.isdatadescriptor(v) and not m.startswith("_")}
        stub_methods = {m for m, f in methods.items() if m != "__init__" and not f.decorator_list}
        stub_properties = {m for m, f in methods.items() if f.decorator_list}
        assert sorted(stub_methods) == sorted(public), name
        assert sorted(stub_properties) == sorted(properties), name
        for m, f in public.items():
            assert _stub_params(methods[m]) == _runtime_params(f), f"{name}.{m}"
