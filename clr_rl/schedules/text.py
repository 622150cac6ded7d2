"""Schedules as text: the kinds, parsing ``kind:key=value,...``, parameters, binding to a run's length,
resolution checks."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from clr_rl.schedules.base import Constant, Exponential, Linear, _CycleLength
from clr_rl.schedules.cyclical import CosineRestarts, ExpRange, OneCycle, Triangular, Triangular2
from clr_rl.schedules.theory import Alternating, Spike, _PerStep

__all__ = ["SCHEDULE_KINDS", "Schedule", "bind_gradient_steps", "bind_total_timesteps", "check_lr_resolution",
           "parse_schedule"]


Schedule = Union[
    Constant, Linear, Exponential, Triangular, Triangular2, ExpRange, OneCycle, CosineRestarts, Alternating, Spike
]



SCHEDULE_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        Constant,
        Linear,
        Exponential,
        Triangular,
        Triangular2,
        ExpRange,
        OneCycle,
        CosineRestarts,
        Alternating,
        Spike,
    )
}












def _scalar_types(annotation: Any) -> set[type]:
    """The scalar types an annotation admits: ``float | None`` -> {float}; ``Literal[...]`` -> {str}."""
    if annotation in (bool, int, float, str):
        return {annotation}
    if typing.get_origin(annotation) is Literal:
        return {str}
    out: set[type] = set()
    for arg in typing.get_args(annotation):
        out |= _scalar_types(arg)
    return out



def _convert(kind: str, name: str, types: set[type], raw: Any) -> Any:
    """Turn a text or TOML value into the field's type (``types``: from its resolved annotation; never ``eval``)."""
    if isinstance(raw, str):
        text = raw.strip()
        if bool in types:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError(f"{kind}: {name}={raw!r} must be true or false")
        if int in types and float not in types:
            try:
                return int(text.replace("_", ""))
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    as_float = math.nan
                if as_float.is_integer():
                    return int(as_float)
                raise ValueError(f"{kind}: {name}={raw!r} must be an integer") from None
        if float in types:
            try:
                return float(text.replace("_", ""))
            except ValueError:
                raise ValueError(f"{kind}: {name}={raw!r} must be a number") from None
        return text
    if int in types and float not in types and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw



def parse_schedule(spec: str | float | Mapping[str, Any] | Schedule) -> Schedule:
    """Build a schedule from its text form, a TOML/dict table, a number, or a schedule.

    Text: ``kind:name=value,name=value`` (a bare number means ``constant``). Table:
    ``{kind = "...", name = value, ...}``. Unknown kinds and parameters are errors.

    >>> parse_schedule({"kind": "one_cycle", "max_lr": 1e-3}) == parse_schedule("one_cycle:max_lr=0.001")
    True
    >>> parse_schedule("3e-4")
    Constant(lr=0.0003)
    """
    if isinstance(spec, tuple(SCHEDULE_KINDS.values())):
        return spec  # type: ignore[return-value]
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(float(spec))
    if isinstance(spec, str):
        text = spec.strip()
        try:
            return Constant(float(text))
        except ValueError:
            pass
        kind, _, rest = text.partition(":")
        params: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"schedule {text!r}: {item!r} must look like name=value")
            if key.strip() in params:
                raise ValueError(f"schedule {text!r}: parameter {key.strip()!r} given twice")
            params[key.strip()] = value.strip()
        table: Mapping[str, Any] = {"kind": kind.strip(), **params}
    elif isinstance(spec, Mapping):
        table = spec
    else:
        raise ValueError(f"schedule {spec!r} must be text, a number or a table")
    kind_value: Any = table.get("kind")
    if not isinstance(kind_value, str) or kind_value not in SCHEDULE_KINDS:
        raise ValueError(f"schedule kind {kind_value!r} is unknown; expected one of {', '.join(SCHEDULE_KINDS)}")
    kind = kind_value
    cls = SCHEDULE_KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "kind":
            continue
        if key not in fields:
            raise ValueError(f"{kind}: unknown parameter {key!r}; expected one of {', '.join(fields)}")
        kwargs[key] = _convert(kind, key, _scalar_types(hints[key]), raw)
    missing = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in kwargs
    ]
    if missing:
        raise ValueError(f"{kind}: missing required parameter {missing[0]!r}")
    schedule: Schedule = cls(**kwargs)
    return schedule



def bind_total_timesteps(schedule: Schedule, total_timesteps: int) -> Schedule:
    """Fill in the run's budget for a schedule whose cycle length is in timesteps.

    Schedules given in ``cycles`` (or without cycles) are returned unchanged.
    """
    if isinstance(schedule, _CycleLength) and schedule.step_size_timesteps is not None:
        if schedule.total_timesteps is None:
            bound: Schedule = dataclasses.replace(schedule, total_timesteps=int(total_timesteps))  # type: ignore[arg-type]
            return bound
    return schedule



def bind_gradient_steps(schedule: Schedule, total_gradient_steps: int) -> Schedule:
    """Fill in the run's number of gradient steps for a per-gradient-step schedule.

    Other kinds, and per-step schedules already bound (``total_steps`` given), are
    returned unchanged. Gradient step ``i`` is then ``schedule(1 - i / total_gradient_steps)``.

    >>> s = bind_gradient_steps(Spike(base_lr=1e-3, spike_lr=1e-2, period=3), 6)
    >>> s.total_steps, [s(1 - i / 6) for i in range(6)]
    (6, [0.01, 0.001, 0.001, 0.01, 0.001, 0.001])
    >>> bind_gradient_steps(Constant(1e-3), 6)
    Constant(lr=0.001)
    """
    if isinstance(schedule, _PerStep) and schedule.total_steps is None:
        if (
            isinstance(total_gradient_steps, bool)
            or not isinstance(total_gradient_steps, int)
            or (total_gradient_steps <= 0)
        ):
            raise ValueError(
                f"{schedule.kind}: total_gradient_steps={total_gradient_steps!r} must be a positive integer"
            )
        bound: Schedule = dataclasses.replace(schedule, total_steps=total_gradient_steps)  # type: ignore[arg-type]
        return bound
    return schedule



def check_lr_resolution(schedule: Schedule, total_timesteps: int, update_every: int, how: str) -> None:
    """Refuse a schedule whose shortest rise or fall spans fewer than 2 LR updates.

    SB3 sets the LR once per ``train()`` call, every ``update_every`` timesteps
    (``how`` explains where that number comes from). A shorter half-cycle aliases.
    """
    segment = schedule.min_segment_fraction() * total_timesteps
    if segment < 2 * update_every:
        raise ValueError(
            f"schedule {schedule}: its shortest rise/fall spans {segment:.0f} timesteps, fewer "
            f"than 2 LR updates (SB3 sets the LR once every {update_every} timesteps: {how}); "
            "use fewer cycles, a longer step size or more timesteps"
        )
