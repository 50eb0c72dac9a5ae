"""Validation of component parameters, with messages of the form
``"<Parameter> must be <rule>, not <value>"``."""

__all__ = ["check_int"]


def check_int(name, value, low, high=None):
    """Refuse (``ValueError``) anything but an integer from ``low`` to ``high`` (inclusive;
    no upper bound if ``high`` is None). Booleans are not integers here."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (
            high is not None and value > high):
        rule = f"an integer from {low} to {high}" if high is not None else \
            f"an integer of at least {low}"
        raise ValueError(f"{name} must be {rule}, not {value!r}")
