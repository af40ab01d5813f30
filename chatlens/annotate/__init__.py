"""Annotation: audit and training samples, label files, inter-coder agreement.

Pure functions and dataclasses; the store and the CLI wire them to the project.
"""

from chatlens.annotate.agreement import (
    agreement_report,
    cohen_kappa,
    disagreements,
    krippendorff_alpha,
)
from chatlens.annotate.labels_io import read_labels, write_labels, write_sheet
from chatlens.annotate.labelstudio import write_tasks_label_studio
from chatlens.annotate.records import LabelProblem, LabelRecord
from chatlens.annotate.sampling import AuditSample, TrainSample, allocate, draw_audit, draw_train

__all__ = [
    "AuditSample", "LabelProblem", "LabelRecord", "TrainSample", "agreement_report", "allocate",
    "cohen_kappa", "disagreements", "draw_audit", "draw_train", "krippendorff_alpha",
    "read_labels", "write_labels", "write_sheet", "write_tasks_label_studio",
]
