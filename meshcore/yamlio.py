"""Reading YAML (PyYAML's safe loader on libyaml's C parser when PyYAML has it), and writing
JSON text that YAML reads back as the same data.

The same documents (the constructor is the same Python code), read in a tenth of the time
for a 511-cluster stack file or kubeconfig. libyaml's error messages lack the source
excerpt PyYAML's own parser prints, so a document that fails is read again by that parser
for its error.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

_FAST: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str | bytes) -> Any:
    """``yaml.safe_load``, faster."""
    try:
        return yaml.load(text, Loader=_FAST)
    except yaml.YAMLError:
        if _FAST is yaml.SafeLoader:
            raise
        return yaml.safe_load(text)  # PyYAML's own parser: its error message (or, if it reads it, the document)


# What JSON writes as itself but YAML does not read back as itself inside a quoted string:
# characters outside YAML's printable set (DEL, C1 controls, lone surrogates, U+FFFE,
# U+FFFF) and those YAML 1.1 takes for line breaks (NEL, U+2028, U+2029).
_NOT_YAML_TEXT = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def yaml_json(value: Any, **dumps: Any) -> str:
    """``value`` as JSON text (``json.dumps(value, ensure_ascii=False, **dumps)``) that YAML reads back as
    ``value``: text is written as itself (a \\u escape of a character outside the BMP would be a surrogate
    pair, which PyYAML does not join), but for what YAML would not read back as itself: escaped, as in JSON
    (and in YAML's double quotes). Raises TypeError for anything but JSON data."""
    text = json.dumps(value, ensure_ascii=False, **dumps)
    if text.isascii() and "\x7f" not in text:  # the common case, found without a regular expression's walk
        return text
    return _NOT_YAML_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def yaml_float(value: float) -> str:
    """A float as YAML 1.1 reads it back: with a dot before any exponent (``1e-05`` is a string to
    PyYAML, ``1.0e-05`` a number), and YAML's own infinities."""
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if math.isnan(value):
        return ".nan"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text
