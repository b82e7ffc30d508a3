<#
.SYNOPSIS
    Registers (or, with -Remove, removes) the Windows scheduled task that runs dirsync every N
    minutes, and the "dirsync" event log source.

.DESCRIPTION
    The task runs, in -InstallPath as its working folder:
      1. optionally the Exchange export as a separate step (-ExchangeExport), when the config
         reads its Exchange data from a file ([exchange] input = ...);
      2. dirsync.exe sync --config <ConfigPath>.
    It runs under the given account — a service account (-Credential) or a group managed service
    account (-GroupManagedServiceAccount 'CONTOSO\svc-dirsync$', no password) — whether or not
    anyone is logged on, never two instances at once (a new start is skipped while one runs), and
    is stopped if it runs longer than -TimeLimitMinutes.

    The account needs: read access to InstallPath, write access to the state, output and log
    folders, the certificate for Exchange app-only auth in its CurrentUser\My store (thumbprint
    auth), and its secrets (environment or Credential Manager entries) set up under that account.

    Run this script elevated (as administrator).

.PARAMETER InstallPath
    The folder with dirsync.exe, the scripts and the config.

.PARAMETER ConfigPath
    The config file; default: dirsync.toml in InstallPath.

.PARAMETER IntervalMinutes
    How often the task runs. Default: 15.

.PARAMETER ExchangeExport
    Also run scripts\Export-DirSyncExchangeData.ps1 before dirsync, with these arguments (a
    string, e.g. "-OutputPath state\exchange.json -AppId ... -Organization ... -CertificateThumbprint ...").

.EXAMPLE
    .\Register-DirSyncTask.ps1 -InstallPath C:\dirsync -GroupManagedServiceAccount 'CONTOSO\svc-dirsync$' -IntervalMinutes 15

    Runs dirsync every 15 minutes as a gMSA.

.EXAMPLE
    .\Register-DirSyncTask.ps1 -InstallPath C:\dirsync -Credential (Get-Credential CONTOSO\svc-dirsync) -ExchangeExport "-OutputPath C:\dirsync\state\exchange.json -AppId 3f1b... -Organization contoso.onmicrosoft.com -CertificateThumbprint 0123ABCD..."

    Runs the Exchange export, then dirsync, as a service account with a password.

.EXAMPLE
    .\Register-DirSyncTask.ps1 -Remove

    Removes the task (the event log source, the files and the config stay).
#>
[CmdletBinding(DefaultParameterSetName = 'Gmsa', SupportsShouldProcess = $true)]
param(
    [Parameter(ParameterSetName = 'Gmsa', Mandatory = $true)]
    [Parameter(ParameterSetName = 'Account', Mandatory = $true)]
    [string] $InstallPath,

    [Parameter(ParameterSetName = 'Gmsa')]
    [Parameter(ParameterSetName = 'Account')]
    [string] $ConfigPath,

    [Parameter(ParameterSetName = 'Gmsa', Mandatory = $true)]
    [string] $GroupManagedServiceAccount,

    [Parameter(ParameterSetName = 'Account', Mandatory = $true)]
    [System.Management.Automation.PSCredential] $Credential,

    [Parameter(ParameterSetName = 'Gmsa')]
    [Parameter(ParameterSetName = 'Account')]
    [ValidateRange(1, 1440)]
    [int] $IntervalMinutes = 15,

    [Parameter(ParameterSetName = 'Gmsa')]
    [Parameter(ParameterSetName = 'Account')]
    [ValidateRange(1, 1440)]
    [int] $TimeLimitMinutes = 60,

    [Parameter(ParameterSetName = 'Gmsa')]
    [Parameter(ParameterSetName = 'Account')]
    [string] $ExchangeExport,

    [string] $TaskName = 'dirsync',

    [Parameter(ParameterSetName = 'Remove', Mandatory = $true)]
    [switch] $Remove
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

if ($Remove) {
    if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
        if ($PSCmdlet.ShouldProcess($TaskName, 'Unregister scheduled task')) {
            Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
            Write-Output "Removed the scheduled task $TaskName."
        }
    }
    else {
        Write-Output "There is no scheduled task $TaskName."
    }
    return
}

$InstallPath = (Resolve-Path -LiteralPath $InstallPath).Path
$exe = Join-Path $InstallPath 'dirsync.exe'
if (-not (Test-Path -LiteralPath $exe)) {
    throw "dirsync.exe is not in $InstallPath"
}
if (-not $ConfigPath) {
    $ConfigPath = Join-Path $InstallPath 'dirsync.toml'
}
if (-not (Test-Path -LiteralPath $ConfigPath)) {
    throw "the config $ConfigPath does not exist: create it with `"$exe init $ConfigPath`""
}
$ConfigPath = (Resolve-Path -LiteralPath $ConfigPath).Path

# The event log source dirsync writes failures and guard refusals to.
if (-not [System.Diagnostics.EventLog]::SourceExists('dirsync')) {
    if ($PSCmdlet.ShouldProcess('Application', 'Register event log source dirsync')) {
        New-EventLog -LogName Application -Source 'dirsync'
    }
}

$actions = @()
if ($ExchangeExport) {
    $script = Join-Path $InstallPath 'scripts\Export-DirSyncExchangeData.ps1'
    if (-not (Test-Path -LiteralPath $script)) {
        throw "the Exchange export script is not at $script"
    }
    $shell = (Get-Command pwsh.exe -ErrorAction SilentlyContinue)
    if ($shell) {
        $shell = $shell.Source
    }
    else {
        $shell = (Get-Command powershell.exe).Source
    }
    $actions += New-ScheduledTaskAction -Execute $shell -Argument "-NoProfile -NonInteractive -File `"$script`" $ExchangeExport" -WorkingDirectory $InstallPath
}
$actions += New-ScheduledTaskAction -Execute $exe -Argument "sync --config `"$ConfigPath`"" -WorkingDirectory $InstallPath

$trigger = New-ScheduledTaskTrigger -Once -At ((Get-Date).AddMinutes(1)) -RepetitionInterval (New-TimeSpan -Minutes $IntervalMinutes)
$settings = New-ScheduledTaskSettingsSet `
    -MultipleInstances IgnoreNew `
    -ExecutionTimeLimit (New-TimeSpan -Minutes $TimeLimitMinutes) `
    -StartWhenAvailable `
    -DontStopIfGoingOnBatteries `
    -AllowStartIfOnBatteries

$description = "dirsync: directory to Retarus Email Security MAP file, every $IntervalMinutes minutes. Config: $ConfigPath"
if ($PSCmdlet.ParameterSetName -eq 'Gmsa') {
    $principal = New-ScheduledTaskPrincipal -UserId $GroupManagedServiceAccount -LogonType Password -RunLevel Limited
    $task = New-ScheduledTask -Action $actions -Trigger $trigger -Settings $settings -Principal $principal -Description $description
    if ($PSCmdlet.ShouldProcess($TaskName, "Register scheduled task as $GroupManagedServiceAccount")) {
        Register-ScheduledTask -TaskName $TaskName -InputObject $task -Force | Out-Null
    }
}
else {
    $task = New-ScheduledTask -Action $actions -Trigger $trigger -Settings $settings -Description $description
    if ($PSCmdlet.ShouldProcess($TaskName, "Register scheduled task as $($Credential.UserName)")) {
        $plain = $Credential.GetNetworkCredential().Password
        Register-ScheduledTask -TaskName $TaskName -InputObject $task -User $Credential.UserName -Password $plain -RunLevel Limited -Force | Out-Null
        $plain = $null
    }
}
Write-Output "Registered the scheduled task $TaskName: every $IntervalMinutes minutes, one instance at a time, stopped after $TimeLimitMinutes minutes."
Write-Output "Test it now with: Start-ScheduledTask -TaskName $TaskName; then read the log folder and state\last-run.json."
