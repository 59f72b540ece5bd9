"""examples/segments.ipynb runs, every cell, in a real Jupyter kernel (nbclient): a cell that fails fails the suite."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # real segkit commands and dbt builds

NOTEBOOK = ROOT / "examples" / "segments.ipynb"


def test_the_example_notebook_runs_from_the_demo_file_to_an_export():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit the notebook without outputs"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises on a failing cell
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    svgs = [output for output in outputs if "image/svg+xml" in output.get("data", {})]
    assert len(svgs) == 3 and all("<style>" in output.data["image/svg+xml"] for output in svgs)
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "customers of " in printed and "segment_1.csv" in printed
