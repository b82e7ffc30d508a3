<#
.SYNOPSIS
    Exports what only Exchange Online knows, for dirsync: accepted domains, every recipient's
    type and addresses, dynamic distribution groups, mail-enabled public folders and the owners
    of every Microsoft 365 group.

.DESCRIPTION
    Writes ONE JSON document (schema "dirsync-exchange", version 1; see docs/exchange-data.md)
    to -OutputPath, UTF-8 without a byte order mark, every list as an array. The document is
    written to a temporary file next to -OutputPath and renamed when complete: on any failure
    the script exits non-zero and leaves no output file (and does not touch an older one).

    Runs under Windows PowerShell 5.1 and PowerShell 7 with the ExchangeOnlineManagement module
    (version 3). Unattended runs connect app-only with a certificate: -AppId, -Organization and
    either -CertificateThumbprint (certificate in the run-as account's CurrentUser\My store) or
    -CertificateFilePath with -CertificatePasswordFile (a file holding the .pfx password, readable
    only by the service account). -Interactive signs in as a user, for a first test.

    Every cmdlet is called with -ResultSize Unlimited (Exchange silently stops at 1000 otherwise)
    and the properties it needs; throttled calls are retried with backoff; a list of exactly
    1000 items is reported as suspicious.

.PARAMETER OutputPath
    Where to write the JSON document. dirsync sets this when it runs the script itself.

.PARAMETER Collections
    Which collections to gather; default all: AcceptedDomains, Recipients,
    DynamicDistributionGroups, PublicFolders, GroupOwners. A list (-Collections A,B) or one
    comma-separated string ("A,B", which is what -File delivers from a command line). Owners
    are read in bulk from the groups' ManagedBy and resolved against the recipient list; only
    groups whose owners cannot be resolved that way cost one Get-UnifiedGroupLinks call each.

.EXAMPLE
    .\Export-DirSyncExchangeData.ps1 -OutputPath C:\dirsync\state\exchange.json -AppId 3f1b... -Organization contoso.onmicrosoft.com -CertificateThumbprint 0123ABCD...

    Unattended export with a certificate from the service account's certificate store.

.EXAMPLE
    .\Export-DirSyncExchangeData.ps1 -OutputPath .\exchange.json -Interactive -UserPrincipalName admin@contoso.com -Collections Recipients,DynamicDistributionGroups

    A first test as an administrator, gathering only two collections.

.NOTES
    The app registration needs the Exchange.ManageAsApp permission and a read role such as
    Global Reader. Exit codes: 0 success, 1 failure (the message is on stderr).
#>
[CmdletBinding(DefaultParameterSetName = 'Thumbprint')]
param(
    [Parameter(Mandatory = $true)]
    [string] $OutputPath,

    [Parameter(ParameterSetName = 'Thumbprint', Mandatory = $true)]
    [Parameter(ParameterSetName = 'CertificateFile', Mandatory = $true)]
    [string] $AppId,

    [Parameter(ParameterSetName = 'Thumbprint', Mandatory = $true)]
    [Parameter(ParameterSetName = 'CertificateFile', Mandatory = $true)]
    [string] $Organization,

    [Parameter(ParameterSetName = 'Thumbprint', Mandatory = $true)]
    [string] $CertificateThumbprint,

    [Parameter(ParameterSetName = 'CertificateFile', Mandatory = $true)]
    [string] $CertificateFilePath,

    [Parameter(ParameterSetName = 'CertificateFile')]
    [string] $CertificatePasswordFile,

    [Parameter(ParameterSetName = 'Interactive', Mandatory = $true)]
    [switch] $Interactive,

    [Parameter(ParameterSetName = 'Interactive')]
    [string] $UserPrincipalName,

    [string[]] $Collections = @('AcceptedDomains', 'Recipients', 'DynamicDistributionGroups', 'PublicFolders', 'GroupOwners'),

    [ValidateRange(0, 10)]
    [int] $MaxRetries = 5
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
# Module functions (most ExchangeOnlineManagement v3 cmdlets) do not take this preference
# (PowerShell/PowerShell#4568): every Exchange call below also says -ErrorAction Stop, which
# the test command checks.

$known = @('AcceptedDomains', 'Recipients', 'DynamicDistributionGroups', 'PublicFolders', 'GroupOwners')
# -File passes "A,B" as one string: split every item at commas.
$Collections = @($Collections | ForEach-Object { $_ -split ',' } | ForEach-Object { $_.Trim() } | Where-Object { $_ })
foreach ($c in $Collections) {
    if ($known -notcontains $c) {
        [Console]::Error.WriteLine("Export-DirSyncExchangeData: unknown collection '$c'; expected $($known -join ', ')")
        exit 1
    }
}

# Relative paths are resolved once, against PowerShell's location (as cmdlets see them), and
# only the full paths are used: .NET calls would resolve them against the process directory.
$OutputPath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($OutputPath)
if ($CertificateFilePath) {
    $CertificateFilePath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($CertificateFilePath)
}
if ($CertificatePasswordFile) {
    $CertificatePasswordFile = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($CertificatePasswordFile)
}

function Write-Failure {
    param([string] $Message)
    [Console]::Error.WriteLine("Export-DirSyncExchangeData: $Message")
}

function Invoke-WithRetry {
    <# Runs a script block; retries throttling and transient service errors with backoff. #>
    param(
        [Parameter(Mandatory = $true)] [scriptblock] $Action,
        [Parameter(Mandatory = $true)] [string] $What
    )
    $attempt = 0
    while ($true) {
        try {
            return & $Action
        }
        catch {
            $attempt++
            $text = $_.Exception.Message
            $transient = $text -match 'throttl|Server ?Busy|too many requests|429|503|timed? ?out|temporarily'
            if (-not $transient -or $attempt -gt $MaxRetries) {
                throw "$What failed: $text"
            }
            $wait = [Math]::Min(300, [Math]::Pow(2, $attempt) * 5)
            Write-Warning "$What was throttled or failed transiently (attempt $attempt of $MaxRetries): $text; retrying in $wait s"
            Start-Sleep -Seconds $wait
        }
    }
}

function Test-Suspicious {
    <# Exactly 1000 items is what a cmdlet returns when -ResultSize was not honoured. #>
    param([object[]] $Items, [string] $What)
    if (@($Items).Count -eq 1000) {
        Write-Warning "$What returned exactly 1000 items: check that -ResultSize Unlimited was honoured"
    }
}

function ConvertTo-AddressList {
    <# EmailAddresses as plain strings ("SMTP:a@b", "smtp:c@d", "X500:..."). #>
    param([object] $Addresses)
    $out = New-Object System.Collections.Generic.List[string]
    foreach ($a in @($Addresses)) {
        if ($null -ne $a) {
            $out.Add([string] $a)
        }
    }
    return ,$out.ToArray()
}

function ConvertTo-RecipientRecord {
    param([object] $R, [string] $TypeDetails)
    $type = $TypeDetails
    if (-not $type) {
        $type = [string] $R.RecipientTypeDetails
    }
    $id = $null
    if ($R.PSObject.Properties['ExternalDirectoryObjectId'] -and $R.ExternalDirectoryObjectId) {
        $id = [string] $R.ExternalDirectoryObjectId
    }
    return [ordered] @{
        recipientTypeDetails      = $type
        primarySmtpAddress        = [string] $R.PrimarySmtpAddress
        emailAddresses            = ConvertTo-AddressList $R.EmailAddresses
        externalDirectoryObjectId = $id
        displayName               = [string] $R.DisplayName
    }
}

$temporary = "$OutputPath.partial"
$connected = $false
try {
    $outputFolder = Split-Path -Parent $OutputPath
    if (-not (Test-Path -LiteralPath $outputFolder)) {
        throw "the folder of -OutputPath does not exist: $outputFolder"
    }

    Import-Module ExchangeOnlineManagement -ErrorAction Stop
    $connect = @{ ShowBanner = $false }
    switch ($PSCmdlet.ParameterSetName) {
        'Thumbprint' {
            $connect.AppId = $AppId
            $connect.Organization = $Organization
            $connect.CertificateThumbprint = $CertificateThumbprint
        }
        'CertificateFile' {
            $connect.AppId = $AppId
            $connect.Organization = $Organization
            $connect.CertificateFilePath = $CertificateFilePath
            if ($CertificatePasswordFile) {
                $plain = (Get-Content -LiteralPath $CertificatePasswordFile -Raw).TrimEnd("`r", "`n")
                $connect.CertificatePassword = ConvertTo-SecureString -String $plain -AsPlainText -Force
                $plain = $null
            }
        }
        'Interactive' {
            if ($UserPrincipalName) {
                $connect.UserPrincipalName = $UserPrincipalName
            }
        }
    }
    Connect-ExchangeOnline @connect -ErrorAction Stop
    $connected = $true

    $tenant = $Organization
    if (-not $tenant) {
        $tenant = [string] (Get-OrganizationConfig -ErrorAction Stop).Name
    }

    $doc = [ordered] @{
        schema                    = 'dirsync-exchange'
        schemaVersion             = 1
        # Round-trip format, invariant culture: a Finnish host would write 07.26.56 with the
        # culture's time separator, a Thai host the Buddhist year.
        collectedAt               = [DateTime]::UtcNow.ToString('o', [System.Globalization.CultureInfo]::InvariantCulture)
        tenant                    = $tenant
        collections               = @($Collections)
        acceptedDomains           = @()
        recipients                = @()
        dynamicDistributionGroups = @()
        publicFolders             = @()
        groupOwners               = @()
    }

    if ($Collections -contains 'AcceptedDomains') {
        $domains = @(Invoke-WithRetry -What 'Get-AcceptedDomain' -Action { Get-AcceptedDomain -ErrorAction Stop })
        $doc.acceptedDomains = @($domains | ForEach-Object {
                [ordered] @{ domainName = [string] $_.DomainName; domainType = [string] $_.DomainType; default = [bool] $_.Default }
            })
    }

    $properties = @('RecipientTypeDetails', 'PrimarySmtpAddress', 'EmailAddresses', 'ExternalDirectoryObjectId', 'DisplayName', 'Name', 'Alias')
    $recipients = @()
    if ($Collections -contains 'Recipients' -or $Collections -contains 'GroupOwners') {
        $recipients = @(Invoke-WithRetry -What 'Get-EXORecipient' -Action {
                Get-EXORecipient -ResultSize Unlimited -Properties $properties -ErrorAction Stop
            })
        Test-Suspicious -Items $recipients -What 'Get-EXORecipient'
        # Microsoft 365 groups are returned only when asked for by type (documented for
        # Get-Recipient in the cloud): ask, and add those the first list did not have.
        $groupMailboxes = @(Invoke-WithRetry -What 'Get-EXORecipient GroupMailbox' -Action {
                Get-EXORecipient -RecipientTypeDetails GroupMailbox -ResultSize Unlimited -Properties $properties -ErrorAction Stop
            })
        Test-Suspicious -Items $groupMailboxes -What 'Get-EXORecipient -RecipientTypeDetails GroupMailbox'
        $have = @{}
        foreach ($r in $recipients) {
            $have[[string] $r.PrimarySmtpAddress] = $true
        }
        $recipients = @($recipients) + @($groupMailboxes | Where-Object { -not $have.ContainsKey([string] $_.PrimarySmtpAddress) })
    }
    if ($Collections -contains 'Recipients') {
        $doc.recipients = @($recipients | ForEach-Object { ConvertTo-RecipientRecord -R $_ })
    }

    if ($Collections -contains 'DynamicDistributionGroups') {
        $ddgs = @(Invoke-WithRetry -What 'Get-DynamicDistributionGroup' -Action { Get-DynamicDistributionGroup -ResultSize Unlimited -ErrorAction Stop })
        Test-Suspicious -Items $ddgs -What 'Get-DynamicDistributionGroup'
        $doc.dynamicDistributionGroups = @($ddgs | ForEach-Object { ConvertTo-RecipientRecord -R $_ -TypeDetails 'DynamicDistributionGroup' })
    }

    if ($Collections -contains 'PublicFolders') {
        $folders = @(Invoke-WithRetry -What 'Get-MailPublicFolder' -Action { Get-MailPublicFolder -ResultSize Unlimited -ErrorAction Stop })
        Test-Suspicious -Items $folders -What 'Get-MailPublicFolder'
        $doc.publicFolders = @($folders | ForEach-Object { ConvertTo-RecipientRecord -R $_ -TypeDetails 'PublicFolder' })
    }

    if ($Collections -contains 'GroupOwners') {
        # Owners in bulk: a Microsoft 365 group's ManagedBy lists its owners (by name); each is
        # resolved against the recipient list read above. Only a group with an owner that
        # cannot be resolved that way costs a Get-UnifiedGroupLinks call (throttled, ~1 s).
        $groups = @(Invoke-WithRetry -What 'Get-UnifiedGroup' -Action { Get-UnifiedGroup -ResultSize Unlimited -ErrorAction Stop })
        Test-Suspicious -Items $groups -What 'Get-UnifiedGroup'
        $byName = @{}
        foreach ($r in $recipients) {
            foreach ($key in @([string] $r.Name, [string] $r.Alias, [string] $r.ExternalDirectoryObjectId, [string] $r.PrimarySmtpAddress)) {
                if ($key -and -not $byName.ContainsKey($key)) {
                    $byName[$key] = [string] $r.PrimarySmtpAddress
                }
            }
        }
        $owners = New-Object System.Collections.Generic.List[object]
        $lookedUp = 0
        foreach ($g in $groups) {
            $addresses = New-Object System.Collections.Generic.List[string]
            $resolved = $true
            foreach ($m in @($g.ManagedBy)) {
                $name = [string] $m
                if (-not $name) {
                    continue
                }
                if ($byName.ContainsKey($name) -and $byName[$name]) {
                    $addresses.Add($byName[$name])
                }
                else {
                    $resolved = $false
                }
            }
            if (-not $resolved) {
                $identity = [string] $g.ExternalDirectoryObjectId
                if (-not $identity) {
                    $identity = [string] $g.PrimarySmtpAddress
                }
                # Never a partial owner list as if complete: this call's error ends the export.
                $links = @(Invoke-WithRetry -What "Get-UnifiedGroupLinks $identity" -Action {
                        Get-UnifiedGroupLinks -Identity $identity -LinkType Owners -ResultSize Unlimited -ErrorAction Stop
                    })
                $lookedUp++
                $addresses = @($links | Where-Object { $_.PrimarySmtpAddress } | ForEach-Object { [string] $_.PrimarySmtpAddress })
            }
            $owners.Add([ordered] @{
                    group                     = [string] $g.PrimarySmtpAddress
                    externalDirectoryObjectId = [string] $g.ExternalDirectoryObjectId
                    owners                    = @($addresses | Sort-Object -Unique)
                })
        }
        if ($lookedUp -gt 0) {
            Write-Verbose "owners of $lookedUp of $($groups.Count) groups needed Get-UnifiedGroupLinks"
        }
        $doc.groupOwners = $owners.ToArray()
    }

    # -InputObject keeps one-element arrays as arrays; depth 10 keeps nested lists whole.
    $json = ConvertTo-Json -InputObject $doc -Depth 10
    $utf8NoBom = New-Object System.Text.UTF8Encoding($false)
    [System.IO.File]::WriteAllText($temporary, $json, $utf8NoBom)
    Move-Item -LiteralPath $temporary -Destination $OutputPath -Force
    exit 0
}
catch {
    Write-Failure $_.Exception.Message
    if (Test-Path -LiteralPath $temporary) {
        Remove-Item -LiteralPath $temporary -Force -ErrorAction SilentlyContinue
    }
    exit 1
}
finally {
    if ($connected) {
        Disconnect-ExchangeOnline -Confirm:$false -ErrorAction SilentlyContinue
    }
}
