"""The field types of the config model, and how their errors are worded.

The model (``meshcore.config.model``) is pydantic: pydantic checks the shape (strict types,
``extra="forbid"``, ``Literal`` choices, ranges, patterns). This module turns each of its
errors into a ``ConfigIssue`` that names the config key (``mesh:clusters[1].id``) and says
how to fix it, the way the program always has. A field says how its errors read with a
``Says`` in its ``Annotated`` metadata; what cannot be said by a pydantic constraint (a CIDR
with host bits, a reserved cluster name) is a validator here that raises ``refuse(...)``
with the finished message. Relations between the fields of one section are the sections'
own ``model_validator``s (``refuse_many``); relations across sections and clusters are
``meshcore.config.checks``. No Pulumi import.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Union

from annotated_types import Ge, GroupedMetadata, Le, MinLen
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from meshcore import keypaths
from meshcore.errors import ConfigIssue

MESH_ERROR = "mesh"
"""The pydantic error type of a message written here (its text is final)."""


# --------------------------------------------------------------------------- wording helpers


def type_name(value: Any) -> str:
    """A value's kind as a user reads it in YAML (``a string``, ``a mapping``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def quote(value: str) -> str:
    """A user string in a message: 'as typed', or JSON-escaped if it holds a newline or
    another unprintable character (each issue is printed as one line)."""
    return f"'{value}'" if value.isprintable() else json.dumps(value)


def part(value: Any) -> str:
    """A user's mapping key as part of a config key (unprintable characters escaped)."""
    text = str(value)
    return text if text.isprintable() else json.dumps(text)[1:-1]


def shown(value: Any) -> str:
    """A value of any kind in a message: JSON (non-JSON values as their text)."""
    return json.dumps(value, default=str)


def refuse(message: str, key: str | None = None) -> PydanticCustomError:
    """The error a validator raises: ``message`` is final; ``key`` (a sub-key) is appended to
    the location of the value validated."""
    return PydanticCustomError(MESH_ERROR, "{message}", {"message": message, "key": key})


def refuse_many(issues: Sequence[tuple[str | None, str]]) -> PydanticCustomError:
    """Several problems of one section at once: (sub-key or None, message) each."""
    return PydanticCustomError(MESH_ERROR, "{message}", {"message": issues[0][1], "issues": list(issues)})


@dataclass(frozen=True)
class Says:
    """How the errors of one field (or list item) read. ``text`` is formatted with ``q`` (the
    input quoted), ``j`` (as JSON) and ``t`` (its kind); ``required`` replaces "is required"."""

    kind: str
    """string | integer | boolean | choice | mapping | values | list"""
    example: str = ""
    lo: int = 0
    hi: int = 0
    what: str = ""
    text: str = ""
    required: str = ""
    hi_from_max: bool = False
    """The upper bound is mesh:maxConnectedClusters (cluster ids)."""


def fmt(text: str, value: Any) -> str:
    """``text`` with the user's value: ``q`` quoted (JSON if not a string), ``j`` JSON, ``t`` its
    kind, ``w`` quoted or its kind and JSON."""
    q = quote(value) if isinstance(value, str) else shown(value)
    w = q if isinstance(value, str) else f"{type_name(value)} {shown(value)}"
    return text.format(q=q, j=shown(value), t=type_name(value), w=w)


# --------------------------------------------------------------------------- field types
# Each is ``Annotated`` metadata: pydantic's constraints plus the wording of their errors.


@dataclass(frozen=True)
class Int(GroupedMetadata):
    """An integer in lo..hi (strict: not a boolean, not a numeric string); ``what`` it counts."""

    lo: int
    hi: int
    what: str
    hi_from_max: bool = False

    def __iter__(self) -> Iterator[Any]:
        yield Ge(self.lo)
        yield Le(self.hi)
        yield Says("integer", lo=self.lo, hi=self.hi, what=self.what, hi_from_max=self.hi_from_max)


@dataclass(frozen=True)
class Text(GroupedMetadata):
    """A non-empty string, optionally of a shape (``pattern``, worded by ``text``)."""

    example: str
    pattern: str | None = None
    text: str = ""

    def __iter__(self) -> Iterator[Any]:
        yield MinLen(1)
        yield Field(pattern=self.pattern, examples=[self.example])
        yield Says("string", example=self.example, text=self.text)


@dataclass(frozen=True)
class Shaped(GroupedMetadata):
    """A string of a shape (a JSON Schema / Rust regex ``pattern``); any other value is worded by ``text``."""

    pattern: str
    text: str
    example: str
    required: str = ""

    def __iter__(self) -> Iterator[Any]:
        yield Field(pattern=self.pattern, examples=[self.example])
        yield Says("choice", text=self.text, required=self.required)


def ResourceId(prefix: str, what: str, *, required: str = "") -> Shaped:
    """A Tencent Cloud resource ID: ``prefix`` and 8 lowercase letters or digits."""
    return Shaped(f"^{prefix}[a-z0-9]{{8}}$", f"{{j}} is not a {what} ID: write '{prefix}' and 8 lowercase letters or "
                  "digits", f"{prefix}abcd1234", required)


@dataclass(frozen=True)
class OneOf(GroupedMetadata):
    """The wording of a ``Literal``'s errors."""

    text: str

    def __iter__(self) -> Iterator[Any]:
        yield Says("choice", text=self.text)


Bool = Annotated[bool, Says("boolean")]
"""true or false (strict: not "yes", not 1)."""


def _unique(value: Any) -> Any:
    if isinstance(value, list):
        seen: list[Any] = []
        problems: list[tuple[str | None, str]] = []
        for i, v in enumerate(value):
            if isinstance(v, str) and v in seen:
                problems.append((f"[{i}]", f"{v} is listed twice"))
            seen.append(v)
        if problems:
            raise refuse_many(problems)
    return value


@dataclass(frozen=True)
class IdList(GroupedMetadata):
    """A list of resource IDs (on a ``tuple[<ResourceId>, ...]``), each once; ``required``:
    non-empty, else null means none."""

    what: str
    required: bool

    def __iter__(self) -> Iterator[Any]:
        article = "non-empty " if self.required else ""
        yield Field(strict=False, json_schema_extra={"minItems": 1} if self.required else None)
        yield Says("list", text=f"must be a {article}list of {self.what} IDs, got {{t}}")
        yield BeforeValidator(self._check, json_schema_input_type=list[str] if self.required else list[str] | None)

    def _check(self, value: Any) -> Any:
        if value is None and not self.required:
            return ()
        if isinstance(value, list) and not value and self.required:
            raise refuse(f"must be a non-empty list of {self.what} IDs, got a list")
        return _unique(value)


def _cidr(value: Any) -> IPv4Network:
    if not isinstance(value, str):
        raise refuse(f"must be an IPv4 CIDR string like 172.16.0.0/16, got {type_name(value)}")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        try:
            fixed = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise refuse(f"{quote(value)} is not a valid IPv4 CIDR ({err}); write it like 172.16.0.0/16") from None
        raise refuse(f"{quote(value)} has host bits set; write the network address: {fixed}") from None
    if not isinstance(net, IPv4Network):
        raise refuse(f"{quote(value)} is IPv6; this mesh is IPv4 only: give an IPv4 CIDR like 172.16.0.0/16")
    return net


def _address(value: Any) -> IPv4Address:
    if not isinstance(value, str):
        raise refuse(f"must be an IPv4 address string like 10.0.1.100, got {type_name(value)}")
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise refuse(f"{quote(value)} is not a valid IPv4 address; write it like 10.0.1.100") from None
    if not isinstance(addr, IPv4Address):
        raise refuse(f"{quote(value)} is IPv6; give the IPv4 VIP of the internal CLB")
    return addr


Cidr = Annotated[IPv4Network, BeforeValidator(_cidr, json_schema_input_type=str),
                 Field(examples=["172.16.0.0/16"],
                       json_schema_extra={"pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"})]
"""An IPv4 network written as its network address (``172.16.0.0/16``, no host bits)."""
Address = Annotated[IPv4Address, BeforeValidator(_address, json_schema_input_type=str),
                    Field(examples=["10.0.1.100"], json_schema_extra={"format": "ipv4"})]
"""An IPv4 address (``10.0.1.100``)."""
CidrList = Annotated[tuple[Cidr, ...], Field(strict=False), Says("list", text="must be a list of IPv4 CIDRs, got {t}")]


def _no_null(value: Any) -> Any:
    return {} if value is None else value


HelmValues = Annotated[dict[str, Any], BeforeValidator(_no_null, json_schema_input_type=dict[str, Any] | None),
                       Says("values", text="must be a mapping of Helm values, got {t}"),
                       Field(examples=[{"hubble": {"ui": {"enabled": True}}}])]
"""Helm values (a mapping; ``values:`` left empty is none)."""


# --------------------------------------------------------------------------- sections


Relations = list[tuple[str | None, str]]
"""Problems between the fields of a section: (the sub-key it is reported at or None, message)."""


class Section(BaseModel):
    """A config section: camelCase keys, unknown keys refused, strict types, frozen.

    The relations between its fields (``relations``) are checked on the valid fields even when
    others are not, so that a section reports all its problems at once.
    """

    model_config = {
        "extra": "forbid",
        "strict": True,
        "frozen": True,
        "alias_generator": lambda name: _camel(name),
        "use_attribute_docstrings": True,
        "validate_by_name": False,
        "validate_by_alias": True,
        "serialize_by_alias": True,
    }
    EXAMPLE: typing.ClassVar[str] = "{...}"
    """The example a "must be a mapping" message gives."""
    MISPLACED: typing.ClassVar[dict[str, str]] = {}
    """Keys of another form of this section: what to do instead of "unknown key"."""
    KNOWN: typing.ClassVar[tuple[str, ...]] = ()
    """The keys listed in an "unknown key" message (default: this section's own)."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return cls.KNOWN or tuple(f.alias or n for n, f in cls.model_fields.items())

    @classmethod
    def relations(cls, fields: dict[str, Any], given: set[str]) -> Relations:
        """The problems between the (valid) ``fields`` of this section, by field name; ``given``:
        the fields the stack set. A field that is invalid is not in ``fields``."""
        return []

    @model_validator(mode="after")
    def _check_relations(self) -> Any:
        problems = self.relations({n: getattr(self, n) for n in type(self).model_fields}, set(self.model_fields_set))
        if problems:
            raise refuse_many(problems)
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as err:
            if (not isinstance(data, dict) or not cls._has_relations()
                    or not any(e["loc"] for e in err.errors())):  # only relations failed: reported already
                raise
            fields, given = cls._valid_fields(data, err)
            problems = cls.relations(fields, given)
            if not problems:
                raise
            raise ValidationError.from_exception_data(cls.__name__, [*_details(err), _detail(refuse_many(problems))]
                                                      ) from None

    @classmethod
    def _has_relations(cls) -> bool:
        return any("relations" in vars(k) for k in cls.__mro__[:cls.__mro__.index(Section)])

    @classmethod
    def _valid_fields(cls, data: dict[str, Any], err: ValidationError) -> tuple[dict[str, Any], set[str]]:
        failed = {e["loc"][0] for e in err.errors() if e["loc"]}
        fields: dict[str, Any] = {}
        given: set[str] = set()
        for name, f in cls.model_fields.items():
            alias = f.alias or name
            if alias in failed:
                continue
            if alias in data:
                given.add(name)
                fields[name] = _adapter(cls, name).validate_python(data[alias])
            elif not f.is_required():
                fields[name] = f.get_default(call_default_factory=True)
        return fields, given


_ADAPTERS: dict[tuple[type, str], TypeAdapter[Any]] = {}
STRICT = ConfigDict(strict=True)


def field_type(model: type[BaseModel], name: str) -> Any:
    """The annotated type of a model's field (what validates it on its own)."""
    f = model.model_fields[name]
    return Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation


def adapter_of(tp: Any) -> TypeAdapter[Any]:
    """A strict validator of ``tp`` on its own (a section keeps its own config)."""
    bare, _ = _unwrap(tp)
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return TypeAdapter(tp)
    return TypeAdapter(tp, config=STRICT)


def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    if (model, name) not in _ADAPTERS:
        _ADAPTERS[model, name] = adapter_of(field_type(model, name))
    return _ADAPTERS[model, name]


def _detail(error: PydanticCustomError, loc: tuple[Any, ...] = (), value: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=error, loc=loc, input=value)


def _details(err: ValidationError) -> list[InitErrorDetails]:
    """The errors of ``err`` again (to raise them with more)."""
    out: list[InitErrorDetails] = []
    for e in err.errors(include_url=False):
        ctx = e.get("ctx") or {}
        kind: Any = PydanticCustomError(MESH_ERROR, "{message}", ctx) if e["type"] == MESH_ERROR else e["type"]
        detail = InitErrorDetails(type=kind, loc=tuple(e["loc"]), input=e.get("input"))
        if ctx and e["type"] != MESH_ERROR:
            detail["ctx"] = ctx
        out.append(detail)
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# --------------------------------------------------------------------------- errors -> issues


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """The type inside Annotated/Optional, and the metadata found on the way."""
    meta: list[Any] = []
    while True:
        if typing.get_origin(tp) is Annotated:
            args = typing.get_args(tp)
            tp, meta = args[0], meta + list(args[1:])
            continue
        if typing.get_origin(tp) in (Union, types.UnionType):  # Optional[X] and X | None
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp, meta


def _says(meta: Sequence[Any], default: Says | None) -> Says | None:
    """The last wording in the metadata (an outer Annotated refines an inner one)."""
    flat = [x for m in meta for x in (m if isinstance(m, GroupedMetadata) else [m])]
    found = [m for m in flat if isinstance(m, Says)]
    return found[-1] if found else default


def _tag(tp: Any, part: str) -> Any:
    for member in typing.get_args(tp):
        _, meta = _unwrap(member)
        if any(getattr(m, "tag", None) == part for m in meta):
            return member
    return None


@dataclass
class _Where:
    says: Says | None = None
    field: FieldInfo | None = None
    model: type[BaseModel] | None = None
    """The section the last key belongs to."""
    loc: tuple[Any, ...] = ()
    """The location without union tags."""
    section: type[BaseModel] | None = None
    """The section the value itself is (for "must be a mapping")."""


def _locate(root: Any, loc: tuple[Any, ...]) -> _Where:
    """Walk the model along an error's location: the field, its wording, the section."""
    where = _Where()
    tp = root
    for p in loc:
        tp, meta = _unwrap(tp)
        where.says = _says(meta, where.says)
        if typing.get_origin(tp) is Union and isinstance(p, str):
            member = _tag(tp, p)
            if member is not None:
                tp = member
                continue
        where.loc += (p,)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            where.model = tp
            name = next((n for n, f in tp.model_fields.items() if (f.alias or n) == p), None)
            if name is None:
                where.field, where.says, tp = None, None, Any
                continue
            f = tp.model_fields[name]
            where.field = f
            where.says = _says(f.metadata, None)
            tp = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
        elif typing.get_origin(tp) in (tuple, list):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            tp = Any
    tp, meta = _unwrap(tp)
    where.says = _says(meta, where.says)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        where.section = tp
    elif typing.get_origin(tp) is Union:
        # a tagged union of sections (a cluster entry) that was not a mapping: its first form
        first, _ = _unwrap(typing.get_args(tp)[0])
        where.section = first if isinstance(first, type) and issubclass(first, BaseModel) else None
    return where


def _unknown_key(model: type[BaseModel] | None, k: Any) -> str:
    if model is not None and issubclass(model, Section) and str(k) in model.MISPLACED:
        return model.MISPLACED[str(k)]
    allowed = model.keys() if model is not None and issubclass(model, Section) else ()
    near = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown key; {hint}the keys here are: {', '.join(allowed)}"


def _message(err: Any, where: _Where, max_connected: int) -> str:
    kind, value = err["type"], err.get("input")
    says = where.says or Says("")
    if kind == "extra_forbidden":
        return _unknown_key(where.model, where.loc[-1])
    required = where.field is not None and where.field.is_required()
    if kind == "missing" or (value is None and required and kind.endswith("_type")):
        if says.required:
            return says.required
        return "is required" if kind == "missing" else "is required, got null"
    if kind in ("model_type", "model_attributes_type", "dict_type") and says.kind != "values":
        section = getattr(where, "section", None)
        example = section.EXAMPLE if section is not None and issubclass(section, Section) else "{...}"
        return f"must be a mapping, got {type_name(value)}; e.g. {example}"
    if kind == MESH_ERROR:
        return str(err["ctx"]["message"])
    hi = max_connected if says.hi_from_max else says.hi
    if says.kind == "integer":
        if kind in ("greater_than_equal", "less_than_equal"):
            return f"{value} is out of range: must be in {says.lo}..{hi} ({says.what})"
        return f"must be an integer in {says.lo}..{hi} ({says.what}), got {type_name(value)} {shown(value)}"
    if says.kind == "boolean":
        return f"must be true or false, got {type_name(value)} {shown(value)}"
    if says.kind == "string" and (kind in ("string_type", "string_too_short") or not says.text):
        return f"must be a non-empty string, got {type_name(value)}; e.g. {says.example}"
    if says.text:
        return fmt(says.text, value)
    return f"is not valid: {err['msg']}"


def issues_of(err: ValidationError, root: Any, base: str, *, max_connected: int = 255) -> list[ConfigIssue]:
    """Every error of a validation of ``root`` as issues keyed from ``base`` (``mesh:cilium``):
    unknown keys first, then in the order of the fields."""
    out: list[tuple[int, ConfigIssue]] = []
    for e in err.errors(include_url=False):
        where = _locate(root, tuple(e["loc"]))
        key = keypaths.render(base, tuple(part(p) if isinstance(p, str) else p for p in where.loc))
        rank = 0 if e["type"] == "extra_forbidden" else 1
        if e["type"] == MESH_ERROR:
            ctx = e.get("ctx") or {}
            for sub, message in ctx.get("issues") or [(ctx.get("key"), ctx["message"])]:
                out.append((rank, ConfigIssue(_sub(key, sub), message)))
            continue
        out.append((rank, ConfigIssue(key, _message(e, where, max_connected))))
    return [i for _, i in sorted(out, key=lambda t: t[0])]


def _sub(key: str, sub: str | None) -> str:
    if not sub:
        return key
    return key + sub if sub.startswith("[") else f"{key}.{sub}"
