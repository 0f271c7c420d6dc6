// Parameters for infra/main.bicep. Deploy with:
//   DIGEST_TO='sales@contoso.com;owner@contoso.com' az deployment group create -g <rg> -p infra/main.bicepparam
// The recipients come from the environment so no one's address is committed here;
// readEnvironmentVariable without a default fails the deployment when DIGEST_TO is unset.
using './main.bicep'

param digestTo = readEnvironmentVariable('DIGEST_TO')

// You, so `handler` on your machine reaches the tables after `az login` (README: Deploy fills
// it with `az ad signed-in-user show --query id -o tsv`). Empty: nobody but the app.
param operatorObjectId = readEnvironmentVariable('OPERATOR_OBJECT_ID', '')

// Defaults from main.bicep, repeated so they can be changed in one visible place.
param digestSchedule = '0 0 * * * *'
// Hours between two digests under digestSchedule: the "digest stopped" alert waits two of them.
param digestIntervalHours = 1
param digestLookbackHours = '24'
param leadsTableName = 'MarketplaceLeads'
// Days to keep leads; empty keeps them for good (README: Personal data).
param leadsRetentionDays = readEnvironmentVariable('LEADS_RETENTION_DAYS', '')
param acsDataLocation = 'United States'
param instanceMemoryMB = 512

// Acting on each lead: every destination is off unless its variables are set when you
// deploy, e.g. WEBHOOK_URL=... WEBHOOK_SECRET=whsec_... az deployment group create ...
// Secrets are read from the environment so they are never committed.
param notifyTo = readEnvironmentVariable('NOTIFY_TO', '')
param notifyMaxPerHour = 10
param teamsWebhookUrl = readEnvironmentVariable('TEAMS_WEBHOOK_URL', '')
param webhookUrl = readEnvironmentVariable('WEBHOOK_URL', '')
param webhookSecret = readEnvironmentVariable('WEBHOOK_SECRET', '')
param dataverseUrl = readEnvironmentVariable('DATAVERSE_URL', '')
param dataverseTenantId = readEnvironmentVariable('DATAVERSE_TENANT_ID', '')
param dataverseClientId = readEnvironmentVariable('DATAVERSE_CLIENT_ID', '')
param dataverseClientSecret = readEnvironmentVariable('DATAVERSE_CLIENT_SECRET', '')
param hubspotToken = readEnvironmentVariable('HUBSPOT_TOKEN', '')
param hubspotRatingProperty = readEnvironmentVariable('HUBSPOT_RATING_PROPERTY', '')
param salesforceUrl = readEnvironmentVariable('SALESFORCE_URL', '')
param salesforceClientId = readEnvironmentVariable('SALESFORCE_CLIENT_ID', '')
param salesforceClientSecret = readEnvironmentVariable('SALESFORCE_CLIENT_SECRET', '')
param salesforceExternalIdField = 'MarketplaceLeadId__c'
param salesforceLeadSource = readEnvironmentVariable('SALESFORCE_LEAD_SOURCE', '')
param salesforceCountryPicklists = false
param salesforceAssignmentRule = 'true'
param salesforceRatingValues = 'Hot,Warm,Cold'
param marketoUrl = readEnvironmentVariable('MARKETO_URL', '')
param marketoClientId = readEnvironmentVariable('MARKETO_CLIENT_ID', '')
param marketoClientSecret = readEnvironmentVariable('MARKETO_CLIENT_SECRET', '')
param marketoLeadSource = readEnvironmentVariable('MARKETO_LEAD_SOURCE', '')
param marketoFields = readEnvironmentVariable('MARKETO_FIELDS', '')
param crmIncludeTestLeads = false
// Named destinations and routes (README: Routing), e.g.
//   { TEAMS_WEBHOOK_URL__analytics: readEnvironmentVariable('TEAMS_WEBHOOK_URL__analytics', ''),
//     TEAMS_OFFERS__analytics: 'fabrikam.contoso-analytics', HUBSPOT_ACTIONS: 'INS' }
param destinationSettings = {}
param crmIncludeDnc = false
param deliveryMaxAgeHours = 24
param deliverySchedule = '0 */1 * * * *'

// appName (default: leads-<hash of the resource group>) and location (default: the resource
// group's) are left to main.bicep; add `param appName = '...'` to choose the name yourself.
