"""A fold: the store rows statistics are fitted on (training, optionally validation) and those
pooled and scored with them. The evaluation protocols make folds (`vqpool.evaluate.splits`);
the poolers only read them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Fold:
    """Store indices of one fold's splits (number counts from 1, as in ``--fold``)."""

    number: int
    train: list[int]
    validation: list[int]
    test: list[int]

    def fit_indices(self, include_validation: bool) -> list[int]:
        """Rows whose statistics may be fitted: training, plus validation when asked."""
        return sorted(self.train + self.validation) if include_validation else self.train

    @property
    def used(self) -> list[int]:
        return sorted(self.train + self.validation + self.test)

    def without_validation(self) -> "Fold":
        """The fold with its validation rows trained on: the 1-NN protocol selects nothing."""
        return Fold(self.number, sorted(self.train + self.validation), [], self.test)
