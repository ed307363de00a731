using Microsoft.Extensions.Hosting.Systemd;
using Sluice.Daemon.Datapath;
using Sluice.Daemon.Reconciling;

namespace Sluice.Daemon.Hosting;

/// <summary>
/// systemd's watchdog: WATCHDOG=1 at half the interval systemd asked for, but only while
/// the datapath is healthy, so systemd restarts a daemon whose program vanished.
/// STATUS= carries a one-line summary. The hosting package pings nothing itself.
/// </summary>
public sealed partial class WatchdogService(DatapathHost host, Reconciler reconciler, Events.EventLog events, IHostApplicationLifetime lifetime, ILogger<WatchdogService> logger, IServiceProvider services) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Nothing before READY=1; the first ping comes after a first interval.
        if (!await HostStarted.Wait(lifetime, stoppingToken))
        {
            return;
        }
        var notifier = services.GetService<ISystemdNotifier>();
        var interval = WatchdogInterval();
        var wasHealthy = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval ?? TimeSpan.FromSeconds(5), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var (healthy, detail) = host.Health();
            if (healthy)
            {
                try
                {
                    host.SyncVlans();
                }
                catch (Exception ex)
                {
                    (healthy, detail) = (false, $"cannot list the VLAN sub-interfaces: {ex.Message}");
                }
            }
            if (healthy != wasHealthy)
            {
                if (healthy) Log.Recovered(logger); else Log.Unhealthy(logger, detail);
                events.Add("datapath", healthy ? "datapath healthy again" : $"datapath unhealthy, watchdog pings stopped: {detail}");
                wasHealthy = healthy;
            }
            if (notifier?.IsEnabled == true)
            {
                if (healthy && interval is not null)
                {
                    notifier.Notify(new ServiceState("WATCHDOG=1"));
                }
                notifier.Notify(new ServiceState("STATUS=" + Summary(healthy, detail)));
            }
        }
    }

    private string Summary(bool healthy, string detail)
    {
        var services = reconciler.Current.Services.Count;
        var interfaces = string.Join(",", host.Attached.Select(a => $"{a.Key}({a.Value.ToString().ToLowerInvariant()})"));
        return healthy
            ? $"forwarding: {services} service(s) on {interfaces}"
            : $"DEGRADED: {detail}; {services} service(s)";
    }

    /// <summary>Half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises; null if systemd set none.</summary>
    private static TimeSpan? WatchdogInterval()
    {
        var text = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        return long.TryParse(text, out var microseconds) && microseconds > 0
            ? TimeSpan.FromMicroseconds(microseconds / 2.0)
            : null;
    }

    private static partial class Log
    {
        [LoggerMessage(400, LogLevel.Error, "datapath unhealthy, watchdog pings stopped: {Detail}")]
        public static partial void Unhealthy(ILogger logger, string detail);

        [LoggerMessage(401, LogLevel.Information, "datapath healthy again")]
        public static partial void Recovered(ILogger logger);
    }
}
