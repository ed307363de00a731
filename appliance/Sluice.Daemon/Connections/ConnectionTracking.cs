using Prometheus;
using Sluice.Daemon.Datapath;
using Sluice.Daemon.Hosting;
using Sluice.Daemon.Metrics;
using Sluice.Datapath.Connections;

namespace Sluice.Daemon.Connections;

/// <summary>
/// The connection table as the control plane sees it: timeouts from the config file (live
/// on reload), the reads behind the flows API, drain and metrics, and the sweeper that
/// deletes expired connections every <c>datapath.connections.sweepIntervalMs</c>. Nothing
/// else deletes connections, so while sluiced is stopped they are only kept, never lost.
/// </summary>
public sealed partial class ConnectionTracking(
    ConfigSource config, DatapathHost host, SluiceMetrics metrics, IHostApplicationLifetime lifetime, ILogger<ConnectionTracking> logger) : BackgroundService
{
    private ConnectionSweeper? sweeper;
    private TimeSpan lastDuration;

    public ConnectionTimeouts Timeouts => DatapathHost.TimeoutsFrom(config.Current.Datapath.Connections);

    public ConnectionSnapshot Read() => ConnectionTable.Read(host.Datapath.Flows, host.Datapath.Nat);

    /// <summary>Live connections per (service id, backend id); half-closed ones count.</summary>
    public Dictionary<(uint Service, uint Backend), int> LiveCounts() =>
        ConnectionTable.LiveCounts(Read().Connections, ConnectionTable.NowNs(), Timeouts);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await HostStarted.Wait(lifetime, stoppingToken))
        {
            return;
        }
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                // A sweep reads both tables whole (about 3.5 s for a million connections on a small
                // machine): the pause is at least twice the last sweep, so sweeping never takes
                // more than a third of a core however full the tables are.
                var interval = TimeSpan.FromMilliseconds(config.Current.Datapath.Connections.SweepIntervalMs);
                await Task.Delay(lastDuration * 2 > interval ? lastDuration * 2 : interval, stoppingToken);
                try
                {
                    Sweep();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    metrics.SweepFailures.Inc();
                    Log.SweepFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            sweeper?.Dispose(); // its lock on the pin directory: a daemon started next may sweep
        }
    }

    private void Sweep()
    {
        if (!host.IsStarted)
        {
            return;
        }
        sweeper ??= new ConnectionSweeper(host.Datapath, Timeouts);
        sweeper.Timeouts = Timeouts;
        var result = sweeper.Sweep(ConnectionTable.NowNs());
        lastDuration = result.Duration;
        foreach (var (reason, count) in result.Expired)
        {
            if (count > 0)
            {
                metrics.ConnectionsExpired.WithLabels(reason.ToString().ToLowerInvariant()).Inc(count);
            }
        }
        metrics.SweepDuration.Observe(result.Duration.TotalSeconds);
        metrics.SweepLastSuccess.SetToCurrentTimeUtc();
        metrics.HandshakesInProgress.Set(result.HandshakesInProgress);
        metrics.HandshakeLimit.Set(host.Datapath.Options.EffectiveHandshakeLimit);
        foreach (var state in Enum.GetValues<ConnectionState>())
        {
            foreach (var protocol in new[] { "tcp", "udp" })
            {
                metrics.Connections.WithLabels(StateLabel(state), protocol).Set(result.ByState.GetValueOrDefault((state, protocol)));
            }
        }
        if (result.TotalExpired > 0)
        {
            Log.Swept(logger, result.TotalExpired, result.Connections.Count, result.Duration.TotalMilliseconds);
        }
    }

    public static string StateLabel(ConnectionState state) => state switch
    {
        ConnectionState.Handshake => "handshake",
        ConnectionState.Established => "established",
        ConnectionState.HalfClosed => "half_closed",
        ConnectionState.Closed => "closed",
        _ => "datagram",
    };

    private static partial class Log
    {
        [LoggerMessage(700, LogLevel.Debug, "swept {Expired} expired connection(s) of {Connections} in {Milliseconds:F1} ms")]
        public static partial void Swept(ILogger logger, int expired, int connections, double milliseconds);

        [LoggerMessage(701, LogLevel.Warning, "connection sweep failed")]
        public static partial void SweepFailed(ILogger logger, Exception exception);
    }
}
