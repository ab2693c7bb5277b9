"""Documents: loading any supported source into :class:`Document`, and fitting them to a budget."""

from autodata.documents.budget import fit_text, fit_to_budget, split_sections
from autodata.documents.model import Document, Skipped, document_id
from autodata.documents.readers import ReadOptions
from autodata.documents.sources import check_inputs, config_documents, load_documents

__all__ = [
    "Document",
    "ReadOptions",
    "Skipped",
    "check_inputs",
    "config_documents",
    "document_id",
    "fit_text",
    "fit_to_budget",
    "load_documents",
    "split_sections",
]
