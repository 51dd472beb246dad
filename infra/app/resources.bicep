// Every Tillbridge resource inside the resource group. Plain resources (no registry modules), so the
// templates parse and lint offline.
param location string
param tags object
param resourceToken string
param principalId string
param dataverseUrl string
param dataverseAuth string
param dataverseClientId string
param squareEnvironment string
param webhookUrlOverride string
param maximumInstanceCount int
param alertEmail string
param guestCheckout string
param locationOwnersFile string
param refundCaseThreshold string

var eventsQueueName = 'square-events'
var crmEventsQueueName = 'crm-events'
var deploymentContainerName = 'app-package-${resourceToken}'
var functionAppName = 'func-tillbridge-${resourceToken}'
var squareBaseUrl = squareEnvironment == 'production' ? 'https://connect.squareup.com' : 'https://connect.squareupsandbox.com'
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-tillbridge-${resourceToken}'
  location: location
  tags: tags
}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-tillbridge-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-tillbridge-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'sttb${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: 'sb-tillbridge-${resourceToken}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource eventsQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: serviceBus
  name: eventsQueueName
  properties: {
    // no sessions: correctness comes from the version gate; batch triggers serialise sessions (decision 0011f)
    requiresSession: false
    requiresDuplicateDetection: true
    // Square retries a delivery for up to 24 h (older documentation: 72 h); duplicates inside 3 days are dropped
    duplicateDetectionHistoryTimeWindow: 'P3D'
    maxDeliveryCount: 10
    lockDuration: 'PT2M' // a batch gets no lock renewal: the worker's bulk path must finish inside it
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    maxSizeInMegabytes: 1024
  }
}

// CRM contact changes (two-way sync): filled by the change-tracking poll, read by process_crm_event
resource crmEventsQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: serviceBus
  name: crmEventsQueueName
  properties: {
    // no sessions: the sender sets no SessionId (a session queue refuses such messages); one change of a
    // contact at a time comes from the worker's per-object lock and the ledger's claims (decision 0011f)
    requiresSession: false
    requiresDuplicateDetection: true
    // a change is named by its row version: one read twice inside a day (overlapping polls) is sent once
    duplicateDetectionHistoryTimeWindow: 'P1D'
    maxDeliveryCount: 10
    lockDuration: 'PT1M'
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    maxSizeInMegabytes: 1024
  }
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-tb-${resourceToken}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-tillbridge-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

var webhookUrl = empty(webhookUrlOverride) ? 'https://${functionApp.properties.defaultHostName}/api/square/webhooks' : webhookUrlOverride
var secretUri = 'https://${keyVault.name}${environment().suffixes.keyvaultDns}/secrets'

// Settings only the client-secret mode uses: the reference points at a secret that only that mode's
// deployment creates (postprovision.sh), so the managed-identity mode does not carry it at all.
var clientSecretSettings = (dataverseAuth == 'client_secret') ? {
  DATAVERSE_TENANT_ID: subscription().tenantId
  DATAVERSE_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${secretUri}/dataverse-client-secret/)'
} : {}

// App settings are a separate resource so they can use the app's own host name for the webhook URL.
// Connections are identity-based; secrets are Key Vault references, never values.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union({
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
    QUEUE_BACKEND: 'servicebus'
    SQUARE_EVENTS_QUEUE: eventsQueueName
    CRM_EVENTS_QUEUE: crmEventsQueueName
    SERVICEBUS_CONNECTION__fullyQualifiedNamespace: '${serviceBus.name}.servicebus.windows.net'
    SERVICEBUS_CONNECTION__credential: 'managedidentity'
    SERVICEBUS_CONNECTION__clientId: identity.properties.clientId
    SQUARE_BASE_URL: squareBaseUrl
    SQUARE_VERSION: '2025-08-20'
    SQUARE_ACCESS_TOKEN: '@Microsoft.KeyVault(SecretUri=${secretUri}/square-access-token/)'
    SQUARE_WEBHOOK_SIGNATURE_KEY: '@Microsoft.KeyVault(SecretUri=${secretUri}/square-webhook-signature-key/)'
    SQUARE_WEBHOOK_URL: webhookUrl
    DATAVERSE_URL: dataverseUrl
    DATAVERSE_AUTH: dataverseAuth
    DATAVERSE_CLIENT_ID: dataverseAuth == 'client_secret' ? dataverseClientId : identity.properties.clientId
    DATAVERSE_PUBLISHER_PREFIX: 'tb'
    DATAVERSE_MAX_CONCURRENCY: '16'
    // each instance takes 1/maximumInstanceCount of the application user's budget (decision 0012f)
    DATAVERSE_MAX_INSTANCES: string(maximumInstanceCount)
    DEFAULT_PHONE_REGION: 'US'
    MAX_DELIVERY_ATTEMPTS: '8'
    RECONCILE_SCHEDULE: '0 */15 * * * *'
    SEGMENTS_SCHEDULE: '0 5 * * * *'
    RECONCILE_LAG_SECONDS: '300'
    CRM_CHANGES_SCHEDULE: '0 * * * * *'
    TRACE_RETENTION_DAYS: '14'
    GUEST_CHECKOUT: guestCheckout
    LOCATION_OWNERS_FILE: locationOwnersFile
    REFUND_CASE_THRESHOLD: refundCaseThreshold
  }, clientSecretSettings)
  dependsOn: [
    storageRoles
    serviceBusRoles
    keyVaultReader
  ]
}

var storageRoleIds = [
  roles.storageBlobDataOwner
  roles.storageTableDataContributor
  roles.storageQueueDataContributor
]

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoleIds: {
  name: guid(storage.id, identity.id, roleId)
  scope: storage
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}]

var serviceBusRoleIds = [
  roles.serviceBusDataSender
  roles.serviceBusDataReceiver
]

resource serviceBusRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in serviceBusRoleIds: {
  name: guid(serviceBus.id, identity.id, roleId)
  scope: serviceBus
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}]

resource keyVaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource keyVaultOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(keyVault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    principalId: principalId
    principalType: 'User'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// Monitoring: a workbook, and alerts on dead letters, failure rate and end-to-end lag.
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-tillbridge-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'tillbridge'
    enabled: true
    emailReceivers: [
      {
        name: 'operations'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertActions = empty(alertEmail) ? [] : [
  {
    actionGroupId: actionGroup.id
  }
]

resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-tillbridge-deadletters-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages were dead-lettered on an events queue (each also becomes a failure record)'
    severity: 2
    enabled: true
    scopes: [
      serviceBus.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'deadletters'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                eventsQueueName
                crmEventsQueueName
              ]
            }
          ]
        }
      ]
    }
    actions: alertActions
  }
}

resource failureRateAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-tillbridge-failures-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    description: 'More than 10 records failed in 15 minutes (see the ops console for each one)'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "tillbridge_failures" | summarize failures = sum(valueSum)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          operator: 'GreaterThan'
          threshold: 10
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        actionGroup.id
      ]
    }
  }
}

resource lagAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-tillbridge-lag-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    description: 'A record took more than 10 minutes from webhook to CRM'
    severity: 3
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "tillbridge_e2e_lag_seconds" | summarize lag = max(valueMax)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'lag'
          operator: 'GreaterThan'
          threshold: 600
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(alertEmail) ? [] : [
        actionGroup.id
      ]
    }
  }
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'tillbridge-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Tillbridge operations'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: loadTextContent('workbook.json')
  }
}

output functionAppName string = functionApp.name
output keyVaultName string = keyVault.name
output webhookUrl string = webhookUrl
output identityClientId string = identity.properties.clientId
output serviceBusNamespace string = serviceBus.name
output storageAccountName string = storage.name
