"""Leaks made of ordinary Python objects. The allocating line carries a ``# leak-source`` mark."""
import itertools

# --- a response cache keyed by something unique per call -----------------------------------
_RESPONSE_CACHE = {}
_request_ids = itertools.count()


def _fetch(path, request_id):
    return {"path": path, "status": 200, "body": "<p>%s</p>" % path * 20}  # leak-source


def test_dict_cache_keyed_by_request_id():
    key = ("/api/items", next(_request_ids))
    if key not in _RESPONSE_CACHE:
        _RESPONSE_CACHE[key] = _fetch(*key)
    assert _RESPONSE_CACHE[key]["status"] == 200


# --- callbacks (closures) registered and never removed -------------------------------------
_ON_SHUTDOWN = []


def _register_cleanup(resource):
    _ON_SHUTDOWN.append(lambda: resource.clear())  # leak-source


def test_list_of_closures():
    scratch = list(range(16))
    _register_cleanup(scratch)
    assert len(_ON_SHUTDOWN) >= 1


# --- a class registry fed by classes made at run time ---------------------------------------
class PluginBase:
    registry = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        PluginBase.registry.append(cls)


_plugin_ids = itertools.count()


def test_class_registry_of_dynamic_classes():
    name = "Plugin%d" % next(_plugin_ids)
    cls = type(name, (PluginBase,), {"name": name})  # leak-source
    assert cls in PluginBase.registry


# --- one bytearray that only ever grows -----------------------------------------------------
_TRACE = bytearray()


def test_bytearray_growth():
    record = b"%08d|event|ok\n" % len(_TRACE)
    _TRACE.extend(record * 64)  # leak-source
    assert _TRACE.endswith(b"ok\n")
