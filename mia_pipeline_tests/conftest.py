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


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server on 127.0.0.1 for the session (skipped, naming why, where none can be had)."""
    from mia_pipeline_tests.pg_server import start_server

    try:
        server = start_server()
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_layout(layout, pg_server, monkeypatch, request) -> Layout:
    """``layout`` whose Dagster instance is deploy/dagster.postgres.yaml on a database of its own."""
    from click.testing import CliRunner

    from mia_pipeline.cli.main import cli
    from mia_pipeline_tests.pg_server import REPO

    db = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    pg_server.create_database(db)
    for key, value in pg_server.env(db).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "init", "--instance",
                                      str(REPO / "deploy" / "dagster.postgres.yaml")])
    assert result.exit_code == 0, result.output
    return layout


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server (moto) on 127.0.0.1 for the session."""
    from mia_pipeline_tests.s3_server import start_server

    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch, request) -> str:
    """A new empty bucket on the session's S3 server, the AWS_* variables pointing at it; its name."""
    import secrets

    name = f"mia-{secrets.token_hex(6)}"
    s3_server.create_bucket(name)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return name
