// Parameters for infra/main.bicep. Deploy with:
//   DIGEST_TO='sales@contoso.com;owner@contoso.com' az deployment group create -g <rg> -p infra/main.bicepparam
// The recipients come from the environment so no one's address is committed here;
// readEnvironmentVariable without a default fails the deployment when DIGEST_TO is unset.
using './main.bicep'

param digestTo = readEnvironmentVariable('DIGEST_TO')

// Defaults from main.bicep, repeated so they can be changed in one visible place.
param digestSchedule = '0 0 * * * *'
param digestLookbackHours = '24'
param leadsTableName = 'MarketplaceLeads'
param acsDataLocation = 'United States'
param instanceMemoryMB = 512

// appName (default: leads-<hash of the resource group>) and location (default: the resource
// group's) are left to main.bicep; add `param appName = '...'` to choose the name yourself.
