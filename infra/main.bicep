// Tillbridge on Azure: a resource group holding the Functions app (Flex Consumption), its storage,
// Service Bus, Key Vault, monitoring and one user-assigned identity with only the roles it needs.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags derive from it')
param environmentName string

@minLength(1)
@description('Azure region for every resource')
param location string

@description('Object id of the deploying user (gets Key Vault Secrets Officer to set the secrets); empty to skip')
param principalId string = ''

@description('Dataverse environment URL, e.g. https://contoso.crm.dynamics.com')
param dataverseUrl string

@allowed([
  'managed_identity'
  'client_secret'
])
@description('How the app authenticates to Dataverse: the managed identity, or an app registration secret in Key Vault')
param dataverseAuth string = 'managed_identity'

@description('App registration client id when dataverseAuth is client_secret (the managed identity is used otherwise)')
param dataverseClientId string = ''

@allowed([
  'sandbox'
  'production'
])
@description('Square environment the app talks to')
param squareEnvironment string = 'sandbox'

@description('Public webhook URL if a custom domain or Front Door sits in front; empty = the app\'s default host name')
param webhookUrlOverride string = ''

@description('Email address for alerts (dead letters, failure rate, lag); empty = alerts without notification')
param alertEmail string = ''

@allowed([
  'match_or_create'
  'match'
  'ignore'
])
@description('Sales without a Square customer: match or create a contact from the buyer email, only match, or ignore')
param guestCheckout string = 'match_or_create'

@description('Path, relative to the app root, of the JSON map from Square location id to CRM owner, business unit and territory (README, LOCATION_OWNERS); empty = default owner everywhere')
param locationOwnersFile string = ''

@description('Refunds of at least this amount open a case; empty = never')
param refundCaseThreshold string = ''

@minValue(40)
@maxValue(1000)
@description('Flex Consumption scale-out limit')
param maximumInstanceCount int = 40

var tags = {
  'azd-env-name': environmentName
  application: 'tillbridge'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'app/resources.bicep' = {
  name: 'tillbridge-resources'
  scope: resourceGroup
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    dataverseUrl: dataverseUrl
    dataverseAuth: dataverseAuth
    dataverseClientId: dataverseClientId
    squareEnvironment: squareEnvironment
    webhookUrlOverride: webhookUrlOverride
    maximumInstanceCount: maximumInstanceCount
    alertEmail: alertEmail
    guestCheckout: guestCheckout
    locationOwnersFile: locationOwnersFile
    refundCaseThreshold: refundCaseThreshold
  }
}

output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.functionAppName
output AZURE_KEY_VAULT_NAME string = resources.outputs.keyVaultName
output SQUARE_WEBHOOK_URL string = resources.outputs.webhookUrl
output MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.identityClientId
output DATAVERSE_URL string = dataverseUrl
