// Marketplace leads: one resource group holding the Flex Consumption Function App
// (custom handler `handler`, functions LeadIngest, LeadDigest and LeadDeliver), its
// storage (host, deployment package, leads and digest-state tables), monitoring, Azure
// Communication Services email for the hourly digest and per-lead email, and an alert
// that mails the digest recipients when a function fails or a delivery dies.
//
// Per-lead destinations (email, Teams, webhook, Dataverse, HubSpot, Salesforce, Marketo) are off unless their
// parameters are given; secrets are @secure() parameters, read by main.bicepparam from
// the environment, never committed and never in an output.
//
// Deploy:  DIGEST_TO='sales@contoso.com' az deployment group create -g <rg> -p infra/main.bicepparam
// Publish: scripts/build-release && func azure functionapp publish <functionAppName>

targetScope = 'resourceGroup'

// ---------------------------------------------------------------- parameters

@description('Function App name; also the stem of the other resource names. Must be globally unique (it becomes <name>.azurewebsites.net).')
@minLength(2)
@maxLength(40)
param appName string = 'leads-${uniqueString(resourceGroup().id)}'

@description('Region for everything regional. Flex Consumption is offered in a subset of regions: `az functionapp list-flexconsumption-locations`.')
param location string = resourceGroup().location

@description('Who receives the digest and the failure alerts: addresses separated by ";" or ",". Required, so a deployment never mails nobody.')
@minLength(3)
param digestTo string

@description('NCRONTAB (six fields, seconds first, UTC) for LeadDigest; function.json reads it as %DIGEST_SCHEDULE%. Default: hourly, on the hour.')
param digestSchedule string = '0 0 * * * *'

@description('How many hours back a digest looks when it has no checkpoint yet (first run, or after the state table was emptied).')
param digestLookbackHours string = '24'

@description('Table holding the leads. The digest state (checkpoint and run history) goes in "<name>Digest". Table names are 3-63 letters or digits, not starting with a digit.')
@minLength(3)
@maxLength(57) // leaves room for the 'Digest' suffix within the 63-character limit
param leadsTableName string = 'MarketplaceLeads'

@description('Where Communication Services keeps email data at rest (a geography such as "United States", "Europe", "UK"); it cannot be changed later.')
param acsDataLocation string = 'United States'

@description('Days to keep leads (README: Personal data): older leads, their delivery records and refused bodies are deleted after each digest run, a bounded amount at a time, never one still pending delivery. Empty: kept for good.')
param leadsRetentionDays string = ''

@description('Memory of each Function App instance, in MB. Flex Consumption bills on-demand execution in GB-seconds of instance memory, in proportion to this size: 512 MB costs a quarter of 2,048 MB for the same execution time. The handler needs about 10 MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 512

@description('Your own object id, so the `handler` command line on your machine reaches the tables with `az login` (the account takes no keys): granted Storage Table Data Contributor on the storage account. The README\'s deploy command fills it with `az ad signed-in-user show --query id -o tsv`. Empty: nobody but the app.')
param operatorObjectId string = ''

@description('Hours between two LeadDigest runs under digestSchedule (1 for the hourly default). The "digest stopped" alert fires after two of them without a successful run.')
@minValue(1)
@maxValue(24)
param digestIntervalHours int = 1

// ---------------------------------------------------------------- acting on each lead (all optional)

@description('Email each lead to these addresses (";" or ","), through Communication Services. Empty: off.')
param notifyTo string = ''

@description('Per-lead emails per rolling hour; beyond it waiting leads are combined into the next email. Azure-managed email domains allow 10 an hour, custom domains 100.')
@minValue(1)
@maxValue(10000)
param notifyMaxPerHour int = 10

@description('Microsoft Teams Workflows URL ("Post to a channel when a webhook request is received"). It carries its own signature: a secret. Empty: off.')
@secure()
param teamsWebhookUrl string = ''

@description('Any HTTPS endpoint (Zapier, Make, n8n, your own): each lead as a JSON POST signed per Standard Webhooks. Empty: off.')
param webhookUrl string = ''

@description('The webhook signing secret, whsec_ followed by base64 of at least 24 random bytes (`echo whsec_$(openssl rand -base64 32)`). Required with webhookUrl.')
@secure()
param webhookSecret string = ''

@description('Dynamics 365 / Dataverse environment URL, https://<org>.crm.dynamics.com: a lead record per lead. Empty: off.')
param dataverseUrl string = ''

@description('With dataverseUrl: an app registration (tenant, client id, client secret) instead of the Function App\'s managed identity. Leave all three empty to use the managed identity.')
param dataverseTenantId string = ''
param dataverseClientId string = ''
@secure()
param dataverseClientSecret string = ''

@description('HubSpot Service Key (Settings > Integrations > Service Keys; an existing private app token also works), scope crm.objects.contacts.write: a contact per lead. Empty: off.')
@secure()
param hubspotToken string = ''

@description('With hubspotToken: the internal name of a contact dropdown property with options hot, warm and cold for the lead\'s rating (README: Which lead to call first). Empty: not written.')
param hubspotRatingProperty string = ''

@description('Salesforce org My Domain URL, https://<domain>.my.salesforce.com: a Lead per lead, upserted by an External ID field. Needs an External Client App with the client credentials flow (README: Salesforce). Empty: off.')
param salesforceUrl string = ''

@description('With salesforceUrl: the External Client App\'s consumer key and consumer secret.')
param salesforceClientId string = ''
@secure()
param salesforceClientSecret string = ''

@description('With salesforceUrl: the unique, External ID Text field on Lead that holds our lead id.')
param salesforceExternalIdField string = 'MarketplaceLeadId__c'

@description('With salesforceUrl: the Lead Source picklist value to set (it must exist in the org). Empty: left unset.')
param salesforceLeadSource string = ''

@description('With salesforceUrl: the org has State and Country picklists, so send CountryCode (ISO 3166-1 alpha-2) instead of the free-text country.')
param salesforceCountryPicklists bool = false

@description('With salesforceUrl: who owns a new Lead — true (the org\'s active lead assignment rule), false (the Run As user), or an AssignmentRule id (01Q...).')
param salesforceAssignmentRule string = 'true'

@description('With salesforceUrl: the Lead Rating picklist\'s values for hot, warm and cold, comma-separated; none: no rating written.')
param salesforceRatingValues string = 'Hot,Warm,Cold'

@description('Marketo REST endpoint, https://<munchkin-id>.mktorest.com (Admin > Web Services): a lead per person, created or updated by email. Empty: off.')
param marketoUrl string = ''

@description('With marketoUrl: the Custom Service\'s client id and client secret (Admin > LaunchPoint > View Details).')
param marketoClientId string = ''
@secure()
param marketoClientSecret string = ''

@description('With marketoUrl: the standard Lead Source to set. Empty: left unset.')
param marketoLeadSource string = ''

@description('With marketoUrl: custom fields (REST API names) for the note, offer, action, lead id and rating, e.g. note=marketplaceNote,offer=marketplaceOffer,action=marketplaceAction,leadId=marketplaceLeadId; score=<field> or score=none instead of the standard leadScore (README: Marketo). Empty: none, and the score in leadScore.')
param marketoFields string = ''

@description('Also write Partner Center\'s test leads (MSFT_TEST...) to the CRMs.')
param crmIncludeTestLeads bool = false

@description('Also write "do not contact" (DNC) leads to the CRMs, with each CRM\'s opt-out fields set. HubSpot never gets them: it has no such field.')
param crmIncludeDnc bool = false

@description('Named destinations and routes (README: Routing): more app settings, each name a destination setting with __<name> (TEAMS_WEBHOOK_URL__analytics) or a route (TEAMS_OFFERS__analytics, HUBSPOT_ACTIONS, NOTIFY_TEST_LEADS__checks). Other names are ignored. Secure: it holds webhook URLs and keys.')
@secure()
param destinationSettings object = {}

@description('A delivery still failing after this many hours is dead (logged at error, reported in the next digest).')
@minValue(1)
@maxValue(336)
param deliveryMaxAgeHours int = 24

@description('NCRONTAB for LeadDeliver, the sweep that retries what the first attempt left (function.json reads %DELIVERY_SCHEDULE%). Each run is billed at least one second of instance memory.')
param deliverySchedule string = '0 */1 * * * *'

// ---------------------------------------------------------------- names and constants

// Storage account names are 3-24 lowercase letters/digits and globally unique; appName may
// contain hyphens or capitals, so derive the name from a hash instead of from appName.
var storageAccountName = 'st${uniqueString(resourceGroup().id, appName)}'
var deploymentContainerName = 'app-package'
var digestTableName = '${leadsTableName}Digest'

// Digest recipients as a clean list: "a@x.com; b@y.com," -> ['a@x.com', 'b@y.com'].
var digestRecipients = filter(map(split(replace(digestTo, ',', ';'), ';'), address => trim(address)), address => !empty(address))

// LeadDeliver runs only when some destination is switched on.
// Only destination and route settings: nothing here can replace a setting above.
var destinationAppSettings = map(
  filter(items(destinationSettings), s => contains(s.key, '__') || endsWith(s.key, '_OFFERS') || endsWith(s.key, '_ACTIONS') || endsWith(s.key, '_TEST_LEADS')),
  s => {
    name: s.key
    value: string(s.value)
  }
)

var anyDestination = !empty(destinationAppSettings) || !empty(notifyTo) || !empty(teamsWebhookUrl) || !empty(webhookUrl) || !empty(dataverseUrl) || !empty(hubspotToken) || !empty(salesforceUrl) || !empty(marketoUrl)

// Built-in role definition GUIDs (identical in every tenant).
var roleStorageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var roleStorageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var roleCommunicationAndEmailServiceOwner = '09976791-48a7-449e-bb21-39d1a415f350'

// ---------------------------------------------------------------- storage

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    // Identity only: the host (AzureWebJobsStorage__accountName), the deployment container and
    // the handler's tables are all reached with the app's managed identity, so no keys exist to leak.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: storage
  name: 'default'
}

// Flex Consumption deploys from a package in this container (functionAppConfig.deployment).
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-06-01' = {
  parent: storage
  name: 'default'
}

resource leadsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-06-01' = {
  parent: tableService
  name: leadsTableName
}

resource digestTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-06-01' = {
  parent: tableService
  name: digestTableName
}

// ---------------------------------------------------------------- monitoring

resource logs 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: 'log-${appName}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${appName}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

// ---------------------------------------------------------------- email (Azure Communication Services)

resource emailService 'Microsoft.Communication/emailServices@2025-05-01' = {
  name: 'ecs-${appName}'
  location: 'global'
  properties: {
    dataLocation: acsDataLocation
  }
}

// Azure-managed domain: <guid>.azurecomm.net, no DNS to set up, enough for one digest an hour
// (its send quota is low; move to a custom domain for more).
resource emailDomain 'Microsoft.Communication/emailServices/domains@2025-05-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource acs 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: 'acs-${appName}'
  location: 'global'
  properties: {
    dataLocation: acsDataLocation
    linkedDomains: [
      emailDomain.id
    ]
  }
}

// ---------------------------------------------------------------- function app (Flex Consumption)

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: 'plan-${appName}'
  location: location
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      // No ftpsState here: Flex Consumption has no FTP(S) endpoint, Microsoft lists
      // `ftpsState` among the Flex deprecations ("FTPS not supported") and ARM rejects
      // Site.SiteConfig.FtpsState on Flex sites (error 51021). FTP credentials are also
      // switched off below (basicPublishingCredentialsPolicies 'ftp').
      //
      // Exactly the settings the handler and host need. Flex takes the runtime from
      // functionAppConfig.runtime, so FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION
      // must not appear (they are on Microsoft's list of Flex Consumption deprecations).
      // tests/infra/test_bicep.py checks these names against the app-settings marker blocks
      // in the configuration module under src/.
      appSettings: concat([
        {
          // Host storage through the managed identity (no connection string, no key).
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'LEADS_TABLE'
          value: leadsTable.name
        }
        {
          name: 'DIGEST_SCHEDULE'
          value: digestSchedule
        }
        {
          name: 'DIGEST_TO'
          value: join(digestRecipients, ';')
        }
        {
          name: 'DIGEST_FROM'
          value: 'DoNotReply@${emailDomain.properties.fromSenderDomain}'
        }
        {
          name: 'DIGEST_LOOKBACK_HOURS'
          value: digestLookbackHours
        }
        {
          name: 'LEADS_RETENTION_DAYS'
          value: leadsRetentionDays
        }
        {
          // Email is sent with the app's managed identity (Bearer token), not an access key.
          name: 'ACS_ENDPOINT'
          value: 'https://${acs.properties.hostName}'
        }
        // Acting on each lead: a blank value is a destination switched off (the handler reads
        // a blank setting as an unset one).
        {
          name: 'NOTIFY_TO'
          value: notifyTo
        }
        {
          // Refinements are written only with what they refine: a cap with no email to cap
          // would only be a start-up warning.
          name: 'NOTIFY_MAX_PER_HOUR'
          value: empty(notifyTo) ? '' : string(notifyMaxPerHour)
        }
        {
          name: 'TEAMS_WEBHOOK_URL'
          value: teamsWebhookUrl
        }
        {
          name: 'WEBHOOK_URL'
          value: webhookUrl
        }
        {
          name: 'WEBHOOK_SECRET'
          value: webhookSecret
        }
        {
          name: 'DATAVERSE_URL'
          value: dataverseUrl
        }
        {
          name: 'DATAVERSE_TENANT_ID'
          value: dataverseTenantId
        }
        {
          name: 'DATAVERSE_CLIENT_ID'
          value: dataverseClientId
        }
        {
          name: 'DATAVERSE_CLIENT_SECRET'
          value: dataverseClientSecret
        }
        {
          name: 'HUBSPOT_TOKEN'
          value: hubspotToken
        }
        {
          name: 'HUBSPOT_RATING_PROPERTY'
          value: empty(hubspotToken) ? '' : hubspotRatingProperty
        }
        {
          name: 'SALESFORCE_URL'
          value: salesforceUrl
        }
        {
          name: 'SALESFORCE_CLIENT_ID'
          value: salesforceClientId
        }
        {
          name: 'SALESFORCE_CLIENT_SECRET'
          value: salesforceClientSecret
        }
        {
          name: 'SALESFORCE_EXTERNAL_ID_FIELD'
          value: empty(salesforceUrl) ? '' : salesforceExternalIdField
        }
        {
          name: 'SALESFORCE_LEAD_SOURCE'
          value: salesforceLeadSource
        }
        {
          name: 'SALESFORCE_COUNTRY_PICKLISTS'
          value: empty(salesforceUrl) ? '' : string(salesforceCountryPicklists)
        }
        {
          name: 'SALESFORCE_ASSIGNMENT_RULE'
          value: empty(salesforceUrl) ? '' : salesforceAssignmentRule
        }
        {
          name: 'SALESFORCE_RATING_VALUES'
          value: empty(salesforceUrl) ? '' : salesforceRatingValues
        }
        {
          name: 'MARKETO_URL'
          value: marketoUrl
        }
        {
          name: 'MARKETO_CLIENT_ID'
          value: marketoClientId
        }
        {
          name: 'MARKETO_CLIENT_SECRET'
          value: marketoClientSecret
        }
        {
          name: 'MARKETO_LEAD_SOURCE'
          value: empty(marketoUrl) ? '' : marketoLeadSource
        }
        {
          name: 'MARKETO_FIELDS'
          value: empty(marketoUrl) ? '' : marketoFields
        }
        {
          name: 'CRM_INCLUDE_TEST_LEADS'
          value: string(crmIncludeTestLeads)
        }
        {
          name: 'CRM_INCLUDE_DNC'
          value: string(crmIncludeDnc)
        }
        {
          name: 'DELIVERY_MAX_AGE_HOURS'
          value: string(deliveryMaxAgeHours)
        }
        {
          // function.json of LeadDeliver reads it: it must always be set.
          name: 'DELIVERY_SCHEDULE'
          value: deliverySchedule
        }
        {
          // The host's own switch: no destination, no LeadDeliver runs (and none billed).
          name: 'AzureWebJobs.LeadDeliver.Disabled'
          value: string(!anyDestination)
        }
      ], destinationAppSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        // Leads arrive one by one and the digest runs hourly: a small ceiling bounds cost.
        maximumInstanceCount: 40
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

// No basic-auth (username/password) publishing: deployments authenticate with Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

// ---------------------------------------------------------------- role assignments for the app's identity

// Host storage (timer locks, keys) and the deployment package both live in blobs.
resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, roleStorageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Table data access is scoped to the two tables the handler uses, not the whole account.
// Both tables are created here, so the handler never needs to create one in Azure (with a
// table-scoped role a "create table" call may be refused with 403 rather than answered 409).
resource appLeadsTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(leadsTable.id, app.id, roleStorageTableDataContributor)
  scope: leadsTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageTableDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appDigestTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(digestTable.id, app.id, roleStorageTableDataContributor)
  scope: digestTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageTableDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Sending email with Entra ID needs this role on the Communication Services resource.
resource appAcsEmailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acs.id, app.id, roleCommunicationAndEmailServiceOwner)
  scope: acs
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleCommunicationAndEmailServiceOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The person who deploys reads and repairs leads from their machine (`handler leads list`,
// `deliveries retry`, `status`) with `az login`: the same data role as the app, on the account.
resource operatorTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorObjectId)) {
  name: guid(storage.id, operatorObjectId, roleStorageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageTableDataContributor)
    principalId: operatorObjectId
    principalType: 'User'
  }
}

// ---------------------------------------------------------------- failure alert

// The people who read the digest are the ones who need to know it (or lead intake) broke.
resource failureActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${appName}'
  location: 'global'
  properties: {
    groupShortName: 'leadsfail' // at most 12 characters
    enabled: true
    emailReceivers: map(range(0, length(digestRecipients)), i => {
      name: 'digest-recipient-${i}'
      emailAddress: digestRecipients[i]
      useCommonAlertSchema: true
    })
  }
}

// A failed invocation of a function, or a delivery given up for good (logged at error as
// "delivery failed for good"). 401/403 are callers without a valid function key, rejected
// by the host before the handler runs: noise, not a failure of ours.
var failedInvocationsQuery = '''
union
  (requests
    | where operation_Name in ('LeadDigest', 'LeadIngest', 'LeadDeliver')
    | where success == false
    | where resultCode !in ('401', '403')),
  (traces
    | where severityLevel >= 3
    | where message has 'delivery failed for good')
'''

resource failureAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${appName}-function-failures'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: a function failed or a delivery died'
    description: 'A LeadIngest call, a LeadDigest or LeadDeliver run failed, or a destination gave up on a lead. Look at the invocations and logs in Application Insights; a failed digest is retried on the next run, a dead delivery is listed by `handler deliveries list --status dead`.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    // Every 5 minutes over the last 15, so telemetry that arrives a few minutes late is still
    // seen; autoMitigate makes the alert stateful, so one failure sends one email, not three.
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: failedInvocationsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'operation_Name'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        failureActionGroup.id
      ]
    }
  }
}

// ---------------------------------------------------------------- a timer that stops, an app that cannot be reached

// Timer triggers on Flex Consumption have stopped after a deployment and not come back on
// their own: a timer that stops is silent unless something notices the runs that did not
// happen. These alerts fire on the absence of rows.
resource digestStoppedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${appName}-digest-stopped'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: no successful digest for two intervals'
    description: 'LeadDigest has not succeeded for two of its intervals: its timer may have stopped (redeploy or restart the app), or every run failed (see the failure alert). `handler status` shows the last runs; no lead is lost, the next run reports them all.'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: digestIntervalHours <= 3 ? 'PT15M' : 'PT1H'
    windowSize: 'PT${2 * digestIntervalHours}H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'requests | where operation_Name == \'LeadDigest\' and success == true'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        failureActionGroup.id
      ]
    }
  }
}

// LeadDeliver runs every minute while a destination is on; ten minutes without a run is a
// stopped timer (deliveries wait, none is lost).
resource deliverStoppedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (anyDestination) {
  name: 'alert-${appName}-deliver-stopped'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: no delivery sweep for 10 minutes'
    description: 'LeadDeliver has not run for 10 minutes although a destination is configured: its timer may have stopped (redeploy or restart the app). Deliveries wait and are not lost; `handler status` shows the last sweep.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'requests | where operation_Name == \'LeadDeliver\''
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        failureActionGroup.id
      ]
    }
  }
}

// Partner Center never re-sends a lead it could not deliver: check from outside, every five
// minutes from three regions, that the app answers and can store a lead (Health is anonymous
// and says only ok or unavailable).
resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: 'webtest-${appName}-health'
  location: location
  kind: 'standard'
  tags: {
    // Links the test to its Application Insights resource (required by the portal and alerts).
    'hidden-link:${appInsights.id}': 'Resource'
  }
  properties: {
    SyntheticMonitorId: 'webtest-${appName}-health'
    Name: '${appName} health'
    Description: 'GET /api/Health: 200 while the app answers and Table storage takes writes.'
    Enabled: true
    Frequency: 300
    Timeout: 30
    Kind: 'standard'
    RetryEnabled: true
    Locations: [
      {
        Id: 'us-va-ash-azr' // East US
      }
      {
        Id: 'emea-nl-ams-azr' // West Europe
      }
      {
        Id: 'apac-sg-sin-azr' // Southeast Asia
      }
    ]
    Request: {
      RequestUrl: 'https://${app.properties.defaultHostName}/api/Health'
      HttpVerb: 'GET'
      ParseDependentRequests: false
      FollowRedirects: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

// Two of three regions failing (each after its retries) within 15 minutes: not one
// region's network blip, but the app or its storage.
resource healthAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${appName}-unreachable'
  location: 'global'
  properties: {
    description: 'Partner Center may not be able to deliver leads: /api/Health failed from two regions. Check the app and its storage; leads Partner Center could not deliver are not re-sent, so look in Partner Center (Referrals > Leads) for any that arrived meanwhile.'
    severity: 1
    enabled: true
    scopes: [
      healthTest.id
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: healthTest.id
      componentId: appInsights.id
      failedLocationCount: 2
    }
    actions: [
      {
        actionGroupId: failureActionGroup.id
      }
    ]
  }
}

// ---------------------------------------------------------------- outputs

output functionAppName string = app.name

@description('The storage account holding the leads: point the `handler` command line at it with LEADS_STORAGE__accountName (README: Operate).')
output storageAccountName string = storage.name

output leadsTableName string = leadsTable.name

@description('Where Partner Center posts leads. The function key is not included: see getKeyCommand.')
output leadIngestUrl string = 'https://${app.properties.defaultHostName}/api/LeadIngest'

@description('Prints the LeadIngest URL with its function key (run after the code is published; needs az login).')
output getKeyCommand string = 'echo "https://${app.properties.defaultHostName}/api/LeadIngest?code=$(az functionapp function keys list -g ${resourceGroup().name} -n ${app.name} --function-name LeadIngest --query default -o tsv)"'

@description('For Dynamics 365 through the managed identity: prints the application (client) ID to register as an application user in the Power Platform admin center.')
output identityClientIdCommand string = 'az ad sp show --id ${app.identity.principalId} --query appId -o tsv'
