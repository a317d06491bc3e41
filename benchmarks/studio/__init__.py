"""The annotation studio: a local web app to browse episodes, judge steps, agree and export.

See ``docs/studio.md``. :class:`~raggym.benchmarks.studio.app.Studio` holds the state,
:func:`~raggym.benchmarks.studio.app.create_app` serves it, and
:func:`~raggym.benchmarks.studio.agreement.agreement` measures agreement.
"""

from raggym.benchmarks.studio.agreement import (
    AgreementReport,
    PairAgreement,
    agreement,
    cohen_kappa,
    pairwise_counts,
)
from raggym.benchmarks.studio.app import MAX_BODY_BYTES, Studio, create_app

__all__ = [
    "MAX_BODY_BYTES",
    "AgreementReport",
    "PairAgreement",
    "Studio",
    "agreement",
    "cohen_kappa",
    "create_app",
    "pairwise_counts",
]
