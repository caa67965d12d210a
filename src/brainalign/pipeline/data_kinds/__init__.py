"""The registry of data kinds (``[data] kind = …``).

A new data kind is a module here that defines ``DATA_KIND`` (see
:class:`brainalign.pipeline.analysis.DataKind`), plus its line below.
"""

from brainalign.pipeline.data_kinds import nsd, rdms, virtual

DATA_KINDS = {kind.name: kind for kind in (virtual.DATA_KIND, nsd.DATA_KIND, rdms.DATA_KIND)}

__all__ = ["DATA_KINDS"]
