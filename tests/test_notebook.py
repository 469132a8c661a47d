"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient), on a tiny budget and data set."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
TINY = '''BUDGET = 20_000
TRIALS = 2
DATASET = "synthetic"
from nas.fidelity import fidelity_from_options
FIDELITY = fidelity_from_options("quick", ["train_images=96", "val_images=60", "probe_images=60", "batch_size=32"],
                                 epochs=1)
RETRAIN = FIDELITY
RESULTS = "results"'''


def test_quickstart_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1, "the notebook has one cell tagged 'parameters'"
    parameters[0].source = TINY
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {i: c.get("outputs", []) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    assert not any(o.get("output_type") == "error" for out in outputs.values() for o in out)
    last = outputs[max(outputs)][-1]["data"]["text/plain"]
    assert last == "torch.Size([1, 4])"  # the synthetic set's 4 classes
    assert (tmp_path / "results" / "quickstart" / "report" / "report.md").is_file()
