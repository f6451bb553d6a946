"""Input checks ComfyUI cannot do itself, in one place, each message naming what was expected and given.

ComfyUI's prompt validation (execution.validate_inputs) checks each widget's min and max, except for the
inputs a node's `validate_inputs` takes by name (it skips them, and a `**kwargs` switches it off for every
input). Two things it never checks: NaN (every comparison with NaN is False) and, in ComfyUI 0.3.64, the
options of a V3 combo (it checks options only when the input type is a list, the V1 form; a V3 combo's type
is "COMBO" with the options beside it). So each node's `validate_inputs` names only the inputs it really
checks, floats for NaN and combos for their options, and calls `declared_problem` for them: the numbers and
options come from the node's own schema, never a second copy.

A widget turned into a link arrives here as None (its value is not known before the run): skipped, as
ComfyUI skips linked values.
"""
import math

NOT_CONNECTED = object()  # default of an optional input in validate_inputs: absent, rather than linked (None)


def _declared_inputs(node_cls) -> dict:
    return {i.id: i for i in node_cls.define_schema().inputs}  # GET_SCHEMA would write to a locked clone


def _options_text(options) -> str:
    return str(list(options)) if len(options) <= 20 else f"the {len(options)} listed"


def declared_problem(node_cls, **values) -> str | None:
    """Each value is what its input declares: a finite number within min and max, or one of the options."""
    declared = _declared_inputs(node_cls)
    for name, value in values.items():
        if value is None:
            continue
        spec = declared[name]
        options = getattr(spec, "options", None)
        if options is not None:
            if value not in options:
                return f"expected {name} to be one of {_options_text(options)}, got {value!r}"
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return f"expected a finite {name}, got {value}"
        low, high = getattr(spec, "min", None), getattr(spec, "max", None)
        if low is not None and value < low:
            return f"expected {name} of at least {low:g}, got {value:g}"
        if high is not None and value > high:
            return f"expected {name} of at most {high:g}, got {value:g}"
    return None


def at_most_problem(name: str, value, limit_name: str, limit) -> str | None:
    """One input bounded by another (a warm-up no longer than the run)."""
    if value is None or limit is None or value <= limit:
        return None
    return f"expected {name} of at most {limit_name} ({limit}), got {value}"


def first_problem(*problems) -> str | bool:
    """What validate_inputs returns: the first problem found, else True."""
    return next((p for p in problems if p), True)
