"""The one resource every asset uses: settings, layout and partition store of a data root."""


import dagster as dg

from mia_pipeline.layout import Layout
from mia_pipeline.settings import Settings, load_settings
from mia_pipeline.storage import PartitionStore, partition_store


class MiaResource(dg.ConfigurableResource):
    """Where the data lives. Empty fields fall back to ``MIA_DATA_DIR`` / ``MIA_CONFIG`` / defaults."""

    data_dir: str = ""
    config_path: str = ""

    def settings(self) -> Settings:
        return load_settings(self.config_path or None, data_dir=self.data_dir or None)

    def require(self, source: str | None = None) -> Settings:
        """The settings, once collection (and ``source``, a data_collection.sources key) is on; else
        a dg.Failure naming the key that turned it off."""
        settings = self.settings()
        if why := settings.off_reason(source):
            raise dg.Failure(description=why)
        return settings

    def layout(self) -> Layout:
        return self.settings().layout

    def store(self) -> PartitionStore:
        s = self.settings()
        return partition_store(s.layout, compression=s.compression)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"mia": MiaResource()})
