"""What the label checker found: counts, skipped files and rows, and the summary log line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mirrordet.utils.log import LOGGER

MAX_EXAMPLES = 20  # file names kept per problem kind (counts stay exact)


@dataclass
class LabelReport:
    """Counts of a split's label check. JSON-serializable through ``to_dict``/``from_dict``.

    Attributes:
        images: image files listed by the split.
        ok: images kept (readable), backgrounds included.
        backgrounds: kept images without any valid box.
        missing_labels: kept images without a label file (counted as backgrounds too).
        instances: valid boxes kept.
        crowd: crowd boxes noted but not used as targets (COCO only).
        corrupt: names of unreadable/missing images (skipped), at most MAX_EXAMPLES.
        n_corrupt: exact number of skipped images.
        bad_rows: problem kind -> exact count of skipped rows/annotations.
        examples: problem kind -> up to MAX_EXAMPLES ``file:row`` strings.
    """

    images: int = 0
    ok: int = 0
    backgrounds: int = 0
    missing_labels: int = 0
    instances: int = 0
    crowd: int = 0
    corrupt: list[str] = field(default_factory=list)
    n_corrupt: int = 0
    bad_rows: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add_corrupt(self, name: str, reason: str) -> None:
        """Note a skipped image."""
        self.n_corrupt += 1
        if len(self.corrupt) < MAX_EXAMPLES:
            self.corrupt.append(f"{name} ({reason})")

    def add_bad(self, kind: str, where: str) -> None:
        """Note a skipped row (YOLO txt) or annotation (COCO) of problem ``kind`` at ``where``."""
        self.bad_rows[kind] = self.bad_rows.get(kind, 0) + 1
        ex = self.examples.setdefault(kind, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(where)

    @property
    def n_bad_rows(self) -> int:
        """Total skipped rows/annotations."""
        return sum(self.bad_rows.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serializable)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelReport":
        """Inverse of ``to_dict`` (unknown keys ignored)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def summary(self, prefix: str = "") -> str:
        """One line of counts, then one line per problem kind naming up to 5 files."""
        head = (
            f"{prefix}{self.images} images: {self.ok} used ({self.backgrounds} backgrounds, "
            f"{self.missing_labels} without label file), {self.n_corrupt} corrupt skipped, "
            f"{self.instances} boxes, {self.n_bad_rows} bad rows skipped"
        )
        if self.crowd:
            head += f", {self.crowd} crowd boxes not used as targets"
        lines = [head]
        if self.n_corrupt:
            more = f" ... and {self.n_corrupt - 5} more" if self.n_corrupt > 5 else ""
            lines.append(f"  corrupt/missing images: {', '.join(self.corrupt[:5])}{more}")
        for kind, n in sorted(self.bad_rows.items()):
            ex = self.examples.get(kind, [])
            more = f" ... and {n - 5} more" if n > 5 else ""
            lines.append(f"  {n} rows skipped ({kind}): {', '.join(ex[:5])}{more}")
        return "\n".join(lines)

    def log(self, prefix: str = "") -> None:
        """Log the summary: INFO when clean, WARNING when anything was skipped."""
        if self.n_corrupt or self.n_bad_rows:
            LOGGER.warning(self.summary(prefix))
        else:
            LOGGER.info(self.summary(prefix))
