"""XRayDesk on the DICOM network (no Qt): a Storage SCP that classifies what it receives,
query/retrieve from a PACS, and results back as DICOM (SR + heat-map Secondary Capture).

- ``config``: ``dicomnet.json`` (this node, allowed callers, known PACS, TLS);
- ``node``: ``StorageNode``, the listening node behind ``xraydesk listen``;
- ``worklist``: the ``dicom_worklist`` table in the results database;
- ``scu``: C-ECHO, C-FIND, C-MOVE, C-STORE as a caller (``xraydesk pacs``);
- ``results``: the SR and Secondary Capture (highdicom);
- ``storage``: where received files go, with private permissions.
"""

from xraydesk.dicomnet.config import (
    ConfigError,
    NodeConfig,
    RemoteNode,
    TlsFiles,
    config_path,
    load_config,
    make_node,
)
from xraydesk.dicomnet.node import NodeStats, StorageNode
from xraydesk.dicomnet.results import NOT_FOR_DIAGNOSIS, ResultObjects, ResultsError, make_results
from xraydesk.dicomnet.scu import (
    DicomNetError,
    StudyMatch,
    StudyQuery,
    TransferOutcome,
    echo,
    find_studies,
    move_studies,
    send_files,
    send_results,
)
from xraydesk.dicomnet.worklist import WorkItem, Worklist, WorklistError

__all__ = [
    "NOT_FOR_DIAGNOSIS",
    "ConfigError",
    "DicomNetError",
    "NodeConfig",
    "NodeStats",
    "RemoteNode",
    "ResultObjects",
    "ResultsError",
    "StorageNode",
    "StudyMatch",
    "StudyQuery",
    "TlsFiles",
    "TransferOutcome",
    "WorkItem",
    "Worklist",
    "WorklistError",
    "config_path",
    "echo",
    "find_studies",
    "load_config",
    "make_node",
    "make_results",
    "move_studies",
    "send_files",
    "send_results",
]
