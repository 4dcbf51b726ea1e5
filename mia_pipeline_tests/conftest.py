import pytest

from mia_pipeline.layout import Layout, init_tree


@pytest.fixture
def layout(tmp_path, monkeypatch) -> Layout:
    """A fresh data tree under tmp_path; MIA_DATA_DIR points at it for code that reads the env."""
    root = tmp_path / "data"
    monkeypatch.setenv("MIA_DATA_DIR", str(root))
    monkeypatch.delenv("MIA_CONFIG", raising=False)
    lay = Layout(root)
    init_tree(lay)
    return lay
