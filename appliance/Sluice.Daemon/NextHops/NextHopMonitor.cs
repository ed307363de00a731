using System.Net;
using Sluice.Daemon.Events;
using Sluice.Daemon.Hosting;
using Sluice.Daemon.Metrics;
using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Neighbours;
using Sluice.Model.State;

namespace Sluice.Daemon.NextHops;

/// <summary>
/// Keeps the next hops of every backend in service resolved (kernel-managed neighbour entries,
/// <see cref="NextHopKeeper"/>) every two seconds: routes looked up again, entries no backend
/// needs removed. A backend whose next hop stops resolving, or resolves again, is an event and a
/// log line; the count unresolved is a metric. New backends are prepared by the reconciler before
/// they are programmed.
/// </summary>
public sealed partial class NextHopMonitor(
    NextHopKeeper keeper, Reconciler reconciler, EventLog events, SluiceMetrics metrics, IHostApplicationLifetime lifetime, ILogger<NextHopMonitor> logger)
    : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private readonly Dictionary<IPAddress, bool> reported = [];

    /// <summary>The backend addresses of every service in a state.</summary>
    public static IReadOnlyCollection<IPAddress> BackendsOf(IEnumerable<OwnedService> services) =>
        services.SelectMany(s => s.Definition.Backends).Select(b => IPAddress.Parse(b.Address!)).ToHashSet();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await HostStarted.Wait(lifetime, stoppingToken))
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                Refresh();
            }
            catch (Exception ex)
            {
                Log.RefreshFailed(logger, ex);
            }
            try
            {
                await Task.Delay(Interval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Refresh()
    {
        var statuses = keeper.Refresh(BackendsOf(reconciler.Current.Services.Values));
        foreach (var gone in reported.Keys.Where(b => !statuses.ContainsKey(b)).ToList())
        {
            reported.Remove(gone);
        }
        foreach (var (backend, status) in statuses)
        {
            var wasResolved = reported.TryGetValue(backend, out var before) ? before : true;
            reported[backend] = status.Resolved;
            if (wasResolved == status.Resolved)
            {
                continue;
            }
            if (status.Resolved)
            {
                events.Add("next-hop", $"the next hop of backend {backend} is resolved again ({status.NextHop} on {status.Interface}, {status.State})", backend: backend.ToString());
                Log.Resolved(logger, backend.ToString(), status.State);
            }
            else
            {
                events.Add("next-hop", $"backend {backend} cannot be forwarded to by the datapath: {status.Problem}", backend: backend.ToString());
                Log.Unresolved(logger, backend.ToString(), status.Problem ?? status.State);
            }
        }
        metrics.NextHopsUnresolved.Set(statuses.Values.Count(s => !s.Resolved));
    }

    private static partial class Log
    {
        [LoggerMessage(800, LogLevel.Warning, "next hop of backend {Backend} unresolved: {Problem}")]
        public static partial void Unresolved(ILogger logger, string backend, string problem);

        [LoggerMessage(801, LogLevel.Information, "next hop of backend {Backend} resolved again ({State})")]
        public static partial void Resolved(ILogger logger, string backend, string state);

        [LoggerMessage(802, LogLevel.Warning, "refreshing the backends' next hops failed")]
        public static partial void RefreshFailed(ILogger logger, Exception exception);
    }
}
