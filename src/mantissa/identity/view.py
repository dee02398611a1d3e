"""The normalized identity-event view: one SQL ``SELECT`` per provider over its lake table.

Every provider maps its native records onto the same columns (kept here as data, one
entry per provider), and :func:`identity_sql` unions the entries of the tables in the
lake. Actions:

``login`` (password / primary sign-in; ``outcome`` success|failure), ``sso`` (app access
inside a session), ``mfa_push`` (a push sent), ``mfa_deny`` (denied, fraud-marked or
unanswered), ``mfa_accept``, ``mfa_bypass`` (bypass code used), ``factor_reset``,
``mfa_disable``, ``priv_grant`` (actor gives ``target`` the ``role``), ``token_create``
(API token / access key / app secret, for ``target``), ``admin`` (other privileged
directory or IAM write by ``user``).
"""

from __future__ import annotations

import datetime as dt

#: columns of the view, in order
COLUMNS = (
    "event_time",
    "provider",
    "event_id",
    "action",
    "outcome",
    "user",
    "user_id",
    "session_id",
    "src_ip",
    "user_agent",
    "country",
    "city",
    "lat",
    "lon",
    "asn",
    "app",
    "device",
    "factor",
    "actor",
    "target",
    "role",
    "reason",
    "department",
)

# Country names (as Okta, Duo and Workspace print them) → ISO 3166 alpha-2, so one user's
# countries compare across providers (Entra ID and CloudTrail geo already use codes).
COUNTRY_CODES: dict[str, str] = {
    "united states": "US", "united kingdom": "GB", "germany": "DE", "france": "FR",
    "netherlands": "NL", "russia": "RU", "russian federation": "RU", "china": "CN",
    "japan": "JP", "india": "IN", "brazil": "BR", "canada": "CA", "australia": "AU",
    "singapore": "SG", "spain": "ES", "italy": "IT", "ireland": "IE", "poland": "PL",
    "sweden": "SE", "switzerland": "CH", "ukraine": "UA", "romania": "RO", "nigeria": "NG",
    "iran": "IR", "north korea": "KP", "vietnam": "VN", "mexico": "MX", "israel": "IL",
    "south africa": "ZA", "turkey": "TR", "hong kong": "HK", "south korea": "KR",
    "argentina": "AR", "belgium": "BE", "austria": "AT", "denmark": "DK", "norway": "NO",
    "finland": "FI", "portugal": "PT", "czechia": "CZ", "new zealand": "NZ",
}  # fmt: skip

_JUNK_USERS = "('', 'unknown', 'anonymous', '-')"

# one SELECT per provider table, producing COLUMNS in order; {where} is the time filter
PROVIDERS: dict[str, str] = {
    "okta": """
SELECT event_time, 'okta' AS provider, event_id,
  CASE
    WHEN eventType IN ('user.session.start', 'user.authentication.authenticate',
                       'user.authentication.auth_via_IDP') THEN 'login'
    WHEN eventType = 'user.authentication.sso' THEN 'sso'
    WHEN eventType = 'system.push.send_factor_verify_push' THEN 'mfa_push'
    WHEN eventType IN ('user.mfa.okta_verify.deny_push', 'user.mfa.attempt_bypass') THEN 'mfa_deny'
    WHEN eventType IN ('user.authentication.auth_via_mfa', 'user.authentication.verify')
      THEN CASE WHEN outcome = 'failure' THEN 'mfa_deny' ELSE 'mfa_accept' END
    WHEN eventType IN ('user.mfa.factor.deactivate', 'user.mfa.factor.reset_all') THEN 'factor_reset'
    WHEN eventType IN ('user.mfa.factor.suspend', 'policy.rule.deactivate') THEN 'mfa_disable'
    WHEN eventType IN ('user.account.privilege.grant', 'group.privilege.grant') THEN 'priv_grant'
    WHEN eventType = 'system.api_token.create' THEN 'token_create'
    WHEN eventType LIKE 'user.lifecycle.%' OR eventType LIKE 'policy.%'
      OR eventType LIKE 'application.%' OR eventType LIKE 'group.user_membership.%' THEN 'admin'
  END AS action,
  outcome, lower(actor.alternateId) AS "user", actor.id AS user_id,
  coalesce(authenticationContext.externalSessionId, authenticationContext.rootSessionId) AS session_id,
  src_ip, user_agent, geo_country AS country, geo_city AS city,
  client.geographicalContext.geolocation.lat AS lat,
  client.geographicalContext.geolocation.lon AS lon,
  CAST(securityContext.asNumber AS VARCHAR) AS asn,
  CASE WHEN eventType = 'user.authentication.sso'
    THEN json_extract_string(target, '$[0].displayName') END AS app,
  coalesce(client.id, user_agent) AS device,
  authenticationContext.credentialType AS factor,
  lower(actor.alternateId) AS actor,
  lower(json_extract_string(target, '$[0].alternateId')) AS target,
  coalesce(json_extract_string(target, '$[0].detailEntry.privilegeGranted'),
           json_extract_string(target, '$[1].displayName')) AS role,
  "outcome.reason" AS reason, NULL AS department
FROM okta WHERE {where}""",
    "azure_ad": """
SELECT event_time, 'azure_ad' AS provider, event_id,
  CASE
    WHEN lower(category) LIKE '%signin%' THEN
      CASE WHEN properties.status.errorCode IN (500121, 50074, 50076)
                AND properties.status.failureReason ILIKE '%denied%' THEN 'mfa_deny'
           WHEN properties.status.errorCode = 500121 THEN 'mfa_deny'
           ELSE 'login' END
    WHEN operationName IN ('Add member to role', 'Add eligible member to role',
                           'Add member to role in PIM completed (permanent)') THEN 'priv_grant'
    WHEN operationName LIKE 'Update application%Certificates and secrets%'
      OR operationName IN ('Add service principal credentials') THEN 'token_create'
    WHEN operationName IN ('User deleted security info', 'Admin deleted security info',
                           'Delete authentication method', 'Reset user strong authentication')
      THEN 'factor_reset'
    WHEN operationName IN ('Disable Strong Authentication', 'Disable per-user MFA') THEN 'mfa_disable'
    WHEN lower(category) LIKE '%audit%' THEN 'admin'
  END AS action,
  outcome,
  lower(CASE WHEN lower(category) LIKE '%signin%' THEN properties.userPrincipalName
    ELSE json_extract_string(properties.initiatedBy, '$.user.userPrincipalName') END) AS "user",
  properties.userId AS user_id, coalesce(properties.correlationId, correlationId) AS session_id,
  src_ip, user_agent, geo_country AS country, geo_city AS city,
  properties.location.geoCoordinates.latitude AS lat,
  properties.location.geoCoordinates.longitude AS lon,
  NULL AS asn, properties.appDisplayName AS app,
  coalesce(nullif(properties.deviceDetail.deviceId, ''), user_agent) AS device,
  properties.authenticationRequirement AS factor,
  lower(coalesce(json_extract_string(properties.initiatedBy, '$.user.userPrincipalName'),
                 properties.userPrincipalName)) AS actor,
  lower(json_extract_string(properties.targetResources, '$[0].userPrincipalName')) AS target,
  trim([json_extract_string(x, '$.newValue') FOR x IN
        coalesce(CAST(json_extract(properties.targetResources, '$[0].modifiedProperties[*]') AS JSON[]), [])
        IF json_extract_string(x, '$.displayName') = 'Role.DisplayName'][1], '"') AS role,
  CAST(properties.status.errorCode AS VARCHAR) AS reason, NULL AS department
FROM azure_ad WHERE {where}""",
    "google_workspace": """
SELECT event_time, 'google_workspace' AS provider, event_id,
  CASE
    WHEN name IN ('login_success', 'login_failure') THEN 'login'
    WHEN name IN ('2sv_disable') THEN 'mfa_disable'
    WHEN name IN ('ASSIGN_ROLE', 'GRANT_ADMIN_PRIVILEGE', 'grant_admin_privilege') THEN 'priv_grant'
    WHEN name IN ('GENERATE_APPLICATION_SPECIFIC_PASSWORD', 'CREATE_APPLICATION_SPECIFIC_PASSWORD')
      THEN 'token_create'
    WHEN id.applicationName = 'admin' THEN 'admin'
  END AS action,
  outcome, lower(actor.email) AS "user", actor.profileId AS user_id, NULL AS session_id,
  src_ip, user_agent, geo_country AS country, geo_city AS city,
  NULL::DOUBLE AS lat, NULL::DOUBLE AS lon, NULL AS asn,
  CASE WHEN name = 'authorize' THEN json_extract_string(parameters, '$.app_name') END AS app,
  user_agent AS device,
  json_extract_string(parameters, '$.login_type') AS factor,
  lower(actor.email) AS actor,
  lower(coalesce(json_extract_string(parameters, '$.USER_EMAIL'),
                 json_extract_string(parameters, '$.affected_email_address'))) AS target,
  json_extract_string(parameters, '$.ROLE_NAME') AS role,
  json_extract_string(parameters, '$.login_failure_type') AS reason,
  json_extract_string(parameters, '$.ORG_UNIT_NAME') AS department
FROM google_workspace WHERE {where}""",
    "duo": """
SELECT event_time, 'duo' AS provider, event_id,
  CASE
    WHEN event_type = 'authentication' AND factor = 'bypass_code' AND result = 'success' THEN 'mfa_bypass'
    WHEN event_type = 'authentication' AND result IN ('denied', 'fraud', 'failure') THEN 'mfa_deny'
    WHEN event_type = 'authentication' AND result = 'success' THEN 'mfa_accept'
    WHEN action IN ('bypass_create') THEN 'mfa_disable'
    WHEN action IN ('phone_delete', 'u2f_delete', 'webauthn_delete', 'reset_user') THEN 'factor_reset'
    WHEN action IN ('admin_create', 'admin_update') THEN 'priv_grant'
    WHEN action IN ('integration_create', 'admin_api_key_create') THEN 'token_create'
    WHEN action IS NOT NULL THEN 'admin'
  END AS action,
  outcome,
  lower(coalesce(email, CASE WHEN action IS NULL THEN user_1.name END, username)) AS "user",
  user_1."key" AS user_id, txid AS session_id,
  src_ip, user_agent, geo_country AS country, geo_city AS city,
  NULL::DOUBLE AS lat, NULL::DOUBLE AS lon, NULL AS asn, application.name AS app,
  coalesce(auth_device.name, user_agent) AS device, factor,
  lower(coalesce(email, username)) AS actor,
  lower(coalesce(json_extract_string(description, '$.email'), object)) AS target,
  json_extract_string(description, '$.role') AS role,
  reason, [g FOR g IN coalesce(user_1."groups", []) IF g <> 'Duo Users'][1] AS department
FROM duo WHERE {where}""",
    "microsoft_365": """
SELECT event_time, 'microsoft_365' AS provider, event_id,
  CASE
    WHEN Operation IN ('UserLoggedIn', 'UserLoginFailed') THEN 'login'
    WHEN Operation IN ('Add member to role.', 'Add member to role') THEN 'priv_grant'
    WHEN Operation IN ('Add service principal credentials.', 'New-ApiToken') THEN 'token_create'
    WHEN Operation IN ('Disable Strong Authentication.') THEN 'mfa_disable'
    WHEN Operation IN ('Add-MailboxPermission', 'New-InboxRule', 'Set-Mailbox',
                       'New-TransportRule', 'Add-RecipientPermission') THEN 'admin'
  END AS action,
  outcome, lower(UserId) AS "user", UserKey AS user_id, SessionId AS session_id,
  src_ip, user_agent, geo_country AS country, geo_city AS city,
  NULL::DOUBLE AS lat, NULL::DOUBLE AS lon, NULL AS asn, ApplicationDisplayName AS app,
  user_agent AS device, NULL AS factor, lower(UserId) AS actor,
  lower(coalesce([json_extract_string(x, '$.ID') FOR x IN coalesce(CAST(json_extract(Target, '$[*]') AS JSON[]), []) IF json_extract_string(x, '$.Type') = '5'][1], ObjectId)) AS target,
  NULL AS role, LogonError AS reason, NULL AS department
FROM microsoft_365 WHERE {where}""",
    "cloudtrail": """
SELECT event_time, 'cloudtrail' AS provider, event_id,
  CASE
    WHEN eventName = 'ConsoleLogin' THEN 'login'
    WHEN eventName IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy',
                       'PutUserPolicy', 'PutRolePolicy', 'AddUserToGroup',
                       'UpdateAssumeRolePolicy') THEN 'priv_grant'
    WHEN eventName IN ('CreateAccessKey', 'CreateLoginProfile') THEN 'token_create'
    WHEN eventName IN ('DeactivateMFADevice', 'DeleteVirtualMFADevice') THEN 'mfa_disable'
    WHEN eventSource IN ('iam.amazonaws.com', 'organizations.amazonaws.com',
                         'cloudtrail.amazonaws.com', 'guardduty.amazonaws.com')
      AND NOT coalesce(readOnly, false) THEN 'admin'
  END AS action,
  outcome,
  lower(coalesce(userIdentity.userName,
                 regexp_extract(userIdentity.arn, '[^/]+$'), userIdentity.principalId)) AS "user",
  userIdentity.principalId AS user_id, userIdentity.accessKeyId AS session_id,
  src_ip, user_agent, geo_country AS country, geo_city AS city,
  NULL::DOUBLE AS lat, NULL::DOUBLE AS lon, NULL AS asn, 'AWS Console' AS app,
  user_agent AS device,
  CASE WHEN eventName = 'ConsoleLogin'
    THEN json_extract_string(additionalEventData, '$.MFAUsed') END AS factor,
  lower(coalesce(userIdentity.userName, regexp_extract(userIdentity.arn, '[^/]+$'))) AS actor,
  lower(coalesce(json_extract_string(requestParameters, '$.userName'),
                 json_extract_string(requestParameters, '$.roleName'),
                 json_extract_string(requestParameters, '$.groupName'))) AS target,
  coalesce(json_extract_string(requestParameters, '$.policyArn'),
           json_extract_string(requestParameters, '$.groupName'),
           json_extract_string(requestParameters, '$.policyName')) AS role,
  coalesce(errorMessage, errorCode) AS reason, NULL AS department
FROM cloudtrail WHERE {where}""",
}


def _ts(t: dt.datetime) -> str:
    return "TIMESTAMPTZ '" + t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00'"


def country_sql() -> str:
    """A ``VALUES`` list mapping lower-case country names to ISO codes."""
    rows = ", ".join(f"('{k}', '{v}')" for k, v in sorted(COUNTRY_CODES.items()))
    return f"SELECT * FROM (VALUES {rows}) AS c(name, code)"


def identity_sql(
    start: dt.datetime,
    end: dt.datetime,
    providers: list[str] | None = None,
    sources: dict[str, str] | None = None,
) -> str:
    """The normalized view over ``[start, end)`` as one ``SELECT`` (rows with an action only).
    ``sources``: read these providers from the given table expressions (e.g. a
    ``read_parquet`` of only the partitions in range) instead of the lake's views; the
    providers not in it are left out."""
    names = [p for p in (providers or list(PROVIDERS)) if p in PROVIDERS]
    if sources is not None:
        names = [p for p in names if p in sources]
    where = f"event_time >= {_ts(start)} AND event_time < {_ts(end)}"
    parts = []
    for p in names:
        sql = PROVIDERS[p].format(where=where).strip()
        if sources is not None:
            sql = sql.replace(f"FROM {p} WHERE", f"FROM {sources[p]} AS {p} WHERE")
        parts.append(sql)
    union = "\nUNION ALL BY NAME\n".join(f"({p})" for p in parts)
    cols = ", ".join(
        "coalesce(cc.code, upper(u.country)) AS country" if c == "country" else f'u."{c}"'
        for c in COLUMNS
    )
    return (
        f"SELECT {cols} FROM ({union}) AS u "
        f"LEFT JOIN ({country_sql()}) AS cc ON cc.name = lower(u.country) "
        f'WHERE u.action IS NOT NULL AND u."user" IS NOT NULL AND u."user" NOT IN {_JUNK_USERS}'
    )
