"""The wire format between the grader and a student's sandboxed kernel: plain data only.

A hidden test never touches a student object. Every value crosses the kernel boundary as JSON
text in a small tagged format, and the grader rebuilds it from that text with its own ``json``
module and strict type checks. What comes back is always one of: ``None``, ``bool``, ``int``,
``float``, ``complex``, ``str``, ``list``, ``tuple``, ``dict``, ``set``, ``frozenset``, a NumPy
array of a numeric, boolean or string dtype (or of such plain objects), a pandas ``Timestamp``
(sent as its ISO text and time zone name, tagged as a timestamp), a pandas ``Series`` or
``DataFrame`` rebuilt from those (a ``DatetimeIndex`` or a datetime column travels as its
timestamps). An object whose ``__eq__`` lies, a subclass of ``float`` or
``list`` or ``ndarray``, a patched ``json`` module in the kernel: none of them survive the trip,
because the grader never sees anything but the base values.

The same source runs on both sides: :func:`encode` in the kernel (it converts subclasses to their
base values and refuses anything else) and :func:`decode` in the grader (it trusts nothing and
checks every node). The kernel receives this module's source text, so the sandbox does not need
to import ``labsupport``. This module imports nothing at top level but the standard library;
NumPy and pandas are used only when they are already loaded.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from typing import Any

#: Array dtypes sent as raw little-endian bytes.
NUMERIC_DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
})
#: How deep containers may nest.
MAX_DEPTH = 64
#: Longest JSON text (characters) of one value on the wire; a larger answer is refused.
MAX_TEXT_CHARS = 16 * 1024**2
#: Most JSON values one reply may hold, counted as :func:`count_values` does; a plain number
#: costs about five (``{"t":"int","v":"1"}``), a numeric NumPy array one, whatever its size.
MAX_VALUES = 1_000_000


class RefusedValue(TypeError):
    """A value that is not plain data (a custom object, a function inside a container, ...)."""


def _module(name: str) -> Any:
    return sys.modules.get(name)


def _encode_array(value: Any, depth: int) -> dict:
    np = _module("numpy")
    array = np.asarray(value)
    if type(array) is not np.ndarray:  # pylint: disable=unidiomatic-typecheck
        array = np.ndarray.view(array, np.ndarray)
    shape = [int(n) for n in array.shape]
    kind = array.dtype.kind
    if array.dtype.name in NUMERIC_DTYPES or kind == "U":
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        dtype = little.dtype.str
        return {"t": "ndarray", "dtype": dtype, "shape": shape,
                "v": base64.b64encode(little.tobytes()).decode("ascii")}
    if kind == "O":
        items = [_encode(item, depth + 1) for item in np.ndarray.ravel(array).tolist()]
        return {"t": "objarray", "shape": shape, "v": items}
    raise RefusedValue(f"a NumPy array of dtype {array.dtype}")


def _encode_index(index: Any, depth: int) -> dict:
    pd = _module("pandas")
    if type(index) is pd.RangeIndex:  # pylint: disable=unidiomatic-typecheck
        return {"t": "range", "start": index.start, "stop": index.stop, "step": index.step,
                "name": _encode(index.name, depth + 1)}
    return {"t": "index", "v": _encode_array(index.to_numpy(dtype=object), depth + 1),
            "name": _encode(index.name, depth + 1)}


def _encode_column(series: Any, depth: int) -> dict:
    np = _module("numpy")
    values = series.to_numpy()
    if type(values) is not np.ndarray or not (  # pylint: disable=unidiomatic-typecheck
            values.dtype.name in NUMERIC_DTYPES or values.dtype.kind == "U"):
        values = series.to_numpy(dtype=object)
    return _encode_array(values, depth + 1)


def _encode_timestamp(value: Any) -> dict:
    """A pandas ``Timestamp`` as ISO text (in UTC when it has a time zone) and its zone's name."""
    if value.tz is None:
        return {"t": "timestamp", "v": value.isoformat(), "tz": None}
    return {"t": "timestamp", "v": value.tz_convert("UTC").tz_localize(None).isoformat(),
            "tz": str(value.tz)}


def _encode_pandas(value: Any, depth: int) -> dict | None:
    pd = _module("pandas")
    if pd is None:
        return None
    if isinstance(value, pd.Timestamp):
        return _encode_timestamp(value)
    if isinstance(value, pd.DataFrame):
        return {"t": "dataframe",
                "columns": _encode_index(value.columns, depth + 1),
                "index": _encode_index(value.index, depth + 1),
                "v": [_encode_column(value.iloc[:, i], depth + 1)
                      for i in range(value.shape[1])]}
    if isinstance(value, pd.Series):
        return {"t": "series", "v": _encode_column(value, depth + 1),
                "index": _encode_index(value.index, depth + 1),
                "name": _encode(value.name, depth + 1)}
    return None


def _encode_numpy(value: Any, depth: int) -> dict | None:
    np = _module("numpy")
    if np is None:
        return None
    if isinstance(value, np.ndarray):
        return _encode_array(value, depth)
    if isinstance(value, np.generic):
        return _encode(np.generic.item(value), depth)
    return None


def _encode(value: Any, depth: int) -> dict:  # pylint: disable=too-many-return-statements
    if depth > MAX_DEPTH:
        raise RefusedValue(f"containers nested more than {MAX_DEPTH} deep")
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool):
        return {"t": "bool", "v": value is True}
    if isinstance(value, int):
        return {"t": "int", "v": int.__repr__(value)}
    if isinstance(value, float):
        return {"t": "float", "v": float.__repr__(value)}
    if isinstance(value, complex):
        return {"t": "complex", "v": [float.__repr__(complex.__getattribute__(value, part))
                                      for part in ("real", "imag")]}
    if isinstance(value, str):
        return {"t": "str", "v": str.__str__(value)}
    for kind, base in (("list", list), ("tuple", tuple), ("set", set), ("frozenset", frozenset)):
        if isinstance(value, base):
            return {"t": kind, "v": [_encode(item, depth + 1) for item in base.__iter__(value)]}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[_encode(key, depth + 1), _encode(item, depth + 1)]
                                   for key, item in dict.items(value)]}
    encoded = _encode_numpy(value, depth) or _encode_pandas(value, depth)
    if encoded is None:
        raise RefusedValue(f"a {type(value).__name__} object")
    return encoded


def encode(value: Any) -> dict:
    """Encode ``value`` as tagged JSON-ready data; raise :class:`RefusedValue` if it is not plain.

    Subclasses of the built-in types, NumPy scalars and arrays are converted to their base
    values, so an overridden ``__eq__``, ``__repr__`` or ``tolist`` plays no part.
    """
    return _encode(value, 0)


def dumps(value: Any) -> str:
    """:func:`encode` ``value`` and return it as JSON text."""
    return json.dumps(encode(value), allow_nan=False, separators=(",", ":"))


# --- decoding: runs in the grader and trusts nothing ---------------------------------------------


def _expect(node: Any, kind: type, what: str) -> Any:
    if type(node) is not kind:  # pylint: disable=unidiomatic-typecheck
        raise ValueError(f"malformed reply from the kernel: {what} is not a {kind.__name__}")
    return node


def _fields(node: Any, tag: str, keys: tuple[str, ...]) -> dict:
    if set(node) != {"t", *keys}:
        raise ValueError(f"malformed reply from the kernel: a {tag!r} node has keys "
                         f"{sorted(node)}")
    return node


def _decode_array(node: dict, depth: int) -> Any:
    import numpy as np  # pylint: disable=import-outside-toplevel
    shape = tuple(_expect(n, int, "an array dimension") for n in _expect(node["shape"], list,
                                                                         "an array shape"))
    if any(n < 0 for n in shape):
        raise ValueError("malformed reply from the kernel: a negative array dimension")
    if node["t"] == "objarray":
        items = [_decode(item, depth + 1) for item in _expect(node["v"], list, "array items")]
        array = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = item
        return array.reshape(shape)
    dtype_text = _expect(node["dtype"], str, "a dtype")
    try:
        dtype = np.dtype(dtype_text)
    except TypeError as error:
        raise ValueError(f"malformed reply from the kernel: dtype {dtype_text!r}") from error
    if dtype.hasobject or dtype.fields is not None or not (
            dtype.name in NUMERIC_DTYPES or dtype.kind == "U"):
        raise ValueError(f"malformed reply from the kernel: dtype {dtype_text!r} is not allowed")
    raw = base64.b64decode(_expect(node["v"], str, "array data"), validate=True)
    count = 1
    for n in shape:
        count *= n
    if len(raw) != count * dtype.itemsize:
        raise ValueError("malformed reply from the kernel: array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(shape)


def _decode_index(node: Any, depth: int) -> Any:
    import pandas as pd  # pylint: disable=import-outside-toplevel
    node = _expect(node, dict, "an index")
    name = _decode(node.get("name"), depth + 1)
    if node.get("t") == "range":
        _fields(node, "range", ("start", "stop", "step", "name"))
        bounds = [_expect(node[key], int, "a range bound") for key in ("start", "stop", "step")]
        return pd.RangeIndex(*bounds, name=name)
    _fields(node, "index", ("v", "name"))
    values = _decode(node["v"], depth + 1)
    if not isinstance(values, _module("numpy").ndarray):
        raise ValueError("malformed reply from the kernel: an index is not an array")
    return pd.Index(list(values), name=name, tupleize_cols=True)


def _inferable(values: Any) -> Any:
    """Object arrays become lists, so pandas infers the column dtype as it did in the kernel."""
    return list(values) if getattr(values, "dtype", None) == object else values


#: The text of a timestamp on the wire (:meth:`pandas.Timestamp.isoformat`, without a zone).
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?")


def _decode_timestamp(node: dict) -> Any:
    import pandas as pd  # pylint: disable=import-outside-toplevel
    _fields(node, "timestamp", ("v", "tz"))
    text = _expect(node["v"], str, "a timestamp")
    zone = node["tz"]
    if zone is not None:
        _expect(zone, str, "a time zone")
    try:
        if not _ISO_TIME.fullmatch(text):
            raise ValueError("not YYYY-MM-DDTHH:MM:SS[.fraction]")
        stamp = pd.Timestamp(text)
        return stamp if zone is None else stamp.tz_localize("UTC").tz_convert(zone)
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"malformed reply from the kernel: timestamp {text[:40]!r} "
                         f"({error})") from None


def _decode_pandas(node: dict, depth: int) -> Any:
    import pandas as pd  # pylint: disable=import-outside-toplevel
    if node["t"] == "timestamp":
        return _decode_timestamp(node)
    if node["t"] == "series":
        _fields(node, "series", ("v", "index", "name"))
        values = _inferable(_decode(node["v"], depth + 1))
        return pd.Series(values, index=_decode_index(node["index"], depth),
                         name=_decode(node["name"], depth + 1))
    _fields(node, "dataframe", ("columns", "index", "v"))
    columns = _decode_index(node["columns"], depth)
    data = [_inferable(_decode(column, depth + 1))
            for column in _expect(node["v"], list, "columns")]
    if len(data) != len(columns):
        raise ValueError("malformed reply from the kernel: column count does not match")
    frame = pd.DataFrame(dict(enumerate(data)), index=_decode_index(node["index"], depth))
    frame.columns = columns
    return frame


_CONTAINERS = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}


def _decode(node: Any, depth: int) -> Any:  # pylint: disable=too-many-return-statements
    if depth > MAX_DEPTH + 4:
        raise ValueError("malformed reply from the kernel: nested too deep")
    node = _expect(node, dict, "a value")
    tag = _expect(node.get("t"), str, "a tag")
    if tag == "none":
        _fields(node, tag, ())
        return None
    if tag in {"bool", "int", "float", "str"}:
        value = _fields(node, tag, ("v",))["v"]
        if tag == "bool":
            return _expect(value, bool, "a bool")
        text = _expect(value, str, f"an {tag}")
        return {"int": int, "float": float, "str": str}[tag](text)
    if tag == "complex":
        parts = _expect(_fields(node, tag, ("v",))["v"], list, "a complex")
        real, imag = (float(_expect(part, str, "a complex part")) for part in parts)
        return complex(real, imag)
    if tag in _CONTAINERS:
        items = _expect(_fields(node, tag, ("v",))["v"], list, f"a {tag}")
        return _CONTAINERS[tag](_decode(item, depth + 1) for item in items)
    if tag == "dict":
        pairs = _expect(_fields(node, tag, ("v",))["v"], list, "a dict")
        result = {}
        for pair in pairs:
            key, value = _expect(pair, list, "a dict item")
            result[_decode(key, depth + 1)] = _decode(value, depth + 1)
        return result
    if tag == "ndarray":
        return _decode_array(_fields(node, tag, ("dtype", "shape", "v")), depth)
    if tag == "objarray":
        return _decode_array(_fields(node, tag, ("shape", "v")), depth)
    if tag in {"series", "dataframe", "timestamp"}:
        return _decode_pandas(node, depth)
    raise ValueError(f"malformed reply from the kernel: unknown tag {tag!r}")


def decode(data: Any) -> Any:
    """Rebuild a value from tagged data produced by :func:`encode`, checking every node.

    Raises
    ------
    ValueError
        When the data is not exactly what :func:`encode` produces (wrong types, unknown tags,
        disallowed dtypes, sizes that do not match).
    """
    try:
        return _decode(data, 0)
    except (TypeError, KeyError, OverflowError) as error:
        raise ValueError(f"malformed reply from the kernel: {error}") from error


def count_values(text: str) -> int:
    """An upper bound on the number of values in the JSON ``text``, found without parsing it.

    Every value but the first follows a ``[``, ``{``, ``,`` or ``:``; counting those characters
    (inside strings too, which only over-counts) costs no memory and a few milliseconds for
    megabytes, where parsing a reply of millions of tiny values would cost the grader about
    twenty times its size in memory.
    """
    return 1 + text.count(",") + text.count(":") + text.count("[") + text.count("{")


def check_size(text: str) -> None:
    """Raise ValueError when the JSON ``text`` is too large to parse safely (too long, or more
    than :data:`MAX_VALUES` values)."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{len(text):,} characters of JSON, more than the "
                         f"{MAX_TEXT_CHARS:,} an answer may have")
    if count_values(text) > MAX_VALUES:
        raise ValueError(f"more than {MAX_VALUES:,} values (numbers, strings, items); send "
                         "large numeric data as a NumPy array")


def loads(text: str) -> Any:
    """Parse JSON ``text`` with the grader's own ``json`` module and :func:`decode` it; refuse
    (ValueError) a text larger than :func:`check_size` allows before parsing it."""
    if type(text) is not str:  # pylint: disable=unidiomatic-typecheck
        raise ValueError("malformed reply from the kernel: not text")
    check_size(text)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"malformed reply from the kernel: {error}") from error
    return decode(data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"malformed reply from the kernel: JSON constant {name}")


# --- the kernel side of the grader's questions ---------------------------------------------------


def reply(namespace: dict, name: str, arguments: str | None, token: str = "") -> str:
    """Run in the kernel: look up ``name`` (and call it with JSON ``arguments``); return JSON.

    The reply is ``{"ok": <encoded value>}``, ``{"function": name}`` when a callable is looked
    up without calling it, or ``{"error": <kind>, "message": <text>}`` where kind is
    ``missing``, ``uncallable`` (called, but not a function: the message names its type),
    ``refused`` or ``raised``. A class is not a function here: reading one is refused (it is no
    plain data) and so is calling it, whatever its instances would be. Every reply also carries
    ``"for": token``, the one-time token of the grader's question, so that a reply made up in
    the kernel without reading the question (a patched ``json.dumps`` that answers 9 to
    everything) is no answer at all.
    """
    def answer(envelope: dict) -> str:
        return json.dumps({**envelope, "for": token}, allow_nan=False)

    if name not in namespace:
        return answer({"error": "missing", "message": name})
    target = namespace[name]
    function = callable(target) and not isinstance(target, type)
    try:
        if arguments is None:
            if function:
                return answer({"function": name})
            value = target
        elif not function:
            kind = "a class" if isinstance(target, type) else f"a {type(target).__name__}"
            return answer({"error": "uncallable", "message": kind[:200]})
        else:
            call = decode(json.loads(arguments))
            value = target(*call["args"], **call["kwargs"])
        text = answer({"ok": encode(value)})
        try:
            check_size(text)
        except ValueError as error:
            raise RefusedValue(f"an answer too large to check ({error})") from None
        return text
    except RefusedValue as error:
        return answer({"error": "refused", "message": str(error)})
    except Exception as error:  # pylint: disable=broad-exception-caught
        text = f"{type(error).__name__}: {error}"
        return answer({"error": "raised", "message": text[:2000]})
