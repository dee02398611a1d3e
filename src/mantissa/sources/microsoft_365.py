"""Microsoft 365: Office 365 Management Activity API audit records.

Records of the ``Audit.AzureActiveDirectory``, ``Audit.Exchange``, ``Audit.SharePoint``,
``Audit.General`` and ``DLP.All`` content blobs (``GET /api/v1.0/{tenant}/activity/feed/
audit/{contentId}`` returns a JSON array of records). Office 365 Management Activity API
schema: https://learn.microsoft.com/office/office-365-management-api/office-365-management-activity-api-schema
Common schema fields (``CreationTime`` UTC without zone, ``Id``, ``Operation``,
``RecordType``, ``ResultStatus``, ``UserId``, ``ClientIP``, ``Workload``, ``ObjectId``) are
columns; workload-specific lists (``Parameters``, ``ExtendedProperties``,
``ModifiedProperties``, ``Actor``, ``Target``) and objects are kept as JSON because their
shape varies by operation. Keys are matched case-insensitively (some pipelines lower-case
them). ``ClientIP`` comes as ``a.b.c.d``, ``a.b.c.d:port``, ``[v6]:port`` or IPv4-mapped
IPv6; ``src_ip`` is the bare address.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

_STRINGS = [
    "Id",
    "Operation",
    "OrganizationId",
    "ResultStatus",
    "UserKey",
    "Workload",
    "ObjectId",
    "UserId",
    "ClientIP",
    "CreationTime",
    "OrganizationName",
    "OriginatingServer",
    "CorrelationId",
    "AppId",
    "ClientAppId",
    "ApplicationId",
    "ApplicationDisplayName",
    # Azure Active Directory
    "ActorContextId",
    "ActorIpAddress",
    "InterSystemsId",
    "IntraSystemId",
    "SupportTicketId",
    "TargetContextId",
    "LogonError",
    "ErrorNumber",
    # Exchange mailbox
    "ClientIPAddress",
    "ClientInfoString",
    "ClientProcessName",
    "ClientVersion",
    "LogonUserSid",
    "MailboxGuid",
    "MailboxOwnerSid",
    "MailboxOwnerUPN",
    "MailboxOwnerMasterAccountSid",
    "SessionId",
    "ModifiedObjectResolvedName",
    # SharePoint / OneDrive
    "Site",
    "SiteUrl",
    "WebId",
    "ItemType",
    "ListId",
    "ListItemUniqueId",
    "SourceFileName",
    "SourceFileExtension",
    "SourceRelativeUrl",
    "DestinationFileName",
    "DestinationRelativeUrl",
    "UserAgent",
    "EventSource",
    "EventData",
    "TargetUserOrGroupName",
    "TargetUserOrGroupType",
    "UniqueSharingId",
    # Teams, security & compliance alerts
    "TeamName",
    "TeamGuid",
    "CommunicationType",
    "AlertId",
    "AlertType",
    "Name",
    "Severity",
    "Status",
    "Category",
    "Source",
    "Data",
    "IncidentId",
    "PolicyId",
]
_JSON = [
    "Parameters",
    "ExtendedProperties",
    "ModifiedProperties",
    "Actor",
    "Target",
    "Item",
    "Folders",
    "AffectedItems",
    "OperationProperties",
    "PolicyDetails",
    "ExchangeMetaData",
    "SharePointMetaData",
    "AppAccessContext",
    "ExceptionInfo",
    "Members",
    "AlertLinks",
    "DeviceProperties",
]


class Microsoft365(JsonSource):
    name = "microsoft_365"
    title = "Microsoft 365 (Office 365 Management Activity API)"
    category = "saas"
    variants = (
        "Audit.AzureActiveDirectory records (logons, directory changes)",
        "Audit.Exchange records (admin cmdlets with Parameters, mailbox item access)",
        "Audit.SharePoint records (file operations, sharing, OneDrive)",
        "Audit.General records (Teams, Yammer, security & compliance alerts, ...)",
        "DLP.All records (PolicyDetails)",
        "content blobs as JSON arrays; lower-cased keys",
    )
    case_insensitive_keys = True
    signature = ("CreationTime", "Operation", "RecordType")
    structure: ClassVar[dict[str, Any]] = {
        **{k: "VARCHAR" for k in _STRINGS},
        "RecordType": "INTEGER",
        "UserType": "INTEGER",
        "Version": "INTEGER",
        "AzureActiveDirectoryEventType": "INTEGER",
        "ExternalAccess": "BOOLEAN",
        "LogonType": "INTEGER",
        "InternalLogonType": "INTEGER",
        "SensitiveInfoDetectionIsIncluded": "BOOLEAN",
        **{k: "JSON" for k in _JSON},
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time("CreationTime"),
        "event_id": "Id",
        "event_type": "Operation",
        "outcome": (
            "CASE WHEN Operation IN ('UserLoginFailed') THEN 'failure' "
            "WHEN lower(ResultStatus) IN ('succeeded', 'success', 'true', 'partiallysucceeded') "
            "THEN 'success' "
            "WHEN lower(ResultStatus) IN ('failed', 'failure', 'false') THEN 'failure' "
            # DLP: a rule that blocked access, not overridden by the user, stopped the action
            "WHEN PolicyDetails IS NOT NULL AND CAST(PolicyDetails AS VARCHAR) LIKE "
            "'%\"BlockAccess\"%' AND ExceptionInfo IS NULL THEN 'failure' "
            # an audit record without a status reports an operation that took place
            "WHEN nullif(ResultStatus, '') IS NULL THEN 'success' END"
        ),
        "user": first(
            # DLP matches are logged by a system agent; the user is the content's sender/owner
            "ExchangeMetaData ->> 'From'",
            "SharePointMetaData ->> 'From'",
            # Exchange mailbox records done by SYSTEM (S-1-5-18) on behalf of the owner
            "CASE WHEN UserId LIKE 'S-1-%' THEN MailboxOwnerUPN END",
            # security & compliance alerts carry the user in Data (a JSON string)
            "CASE WHEN json_valid(Data) THEN Data ->> 'suid' END",
            "UserId",
            "MailboxOwnerUPN",
        ),
        "src_ip": ip(first("ClientIP", "ClientIPAddress", "ActorIpAddress")),
        "user_agent": first(
            "UserAgent",
            # Azure AD logons carry it as an ExtendedProperties entry
            "list_extract(list_filter(CAST(json_extract(ExtendedProperties, '$[*]') AS JSON[]), "
            "lambda p: p ->> 'Name' = 'UserAgent'), 1) ->> 'Value'",
            "ClientInfoString",
        ),
        "host": first("OrganizationName", "OrganizationId"),
        "message": (
            "coalesce(Workload, 'RecordType ' || CAST(RecordType AS VARCHAR), '?') || ': ' || "
            "coalesce(Operation, '') || coalesce(' ' || nullif(ObjectId, ''), '') || "
            "coalesce(' by ' || UserId, '')"
        ),
        "_error": (
            "CASE WHEN Operation IS NULL AND Id IS NULL AND RecordType IS NULL THEN "
            "'not an Office 365 audit record: no Operation, Id or RecordType' END"
        ),
    }

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            keys = {k.lower() for k in r}
            return {"creationtime", "operation"} <= keys and bool(
                keys & {"recordtype", "workload", "organizationid"}
            )

        return score(sample_records(sample), ok)
