"""``dedup``: drop rows whose ``field`` (or fields) repeat an earlier kept row, exactly or nearly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..near_dup import NearDuplicates
from . import Row, register

if TYPE_CHECKING:
    from ..engine import Context


@register("dedup", required=("field",), optional=("threshold", "num_perm", "shingle"))
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    fields = [step["field"]] if isinstance(step["field"], str) else list(step["field"])
    seen = NearDuplicates(float(step.get("threshold", 0.7)), int(step.get("num_perm", 128)),
                          int(step.get("shingle", 5)))
    out = []
    for row in rows:
        if seen.is_duplicate("\n".join(str(row.get(f, "")) for f in fields)):
            ctx.drop("duplicate")
        else:
            out.append(row)
    return out
