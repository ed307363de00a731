using Sluice.Daemon.Datapath;
using Sluice.Daemon.Events;
using Sluice.Daemon.Reconciling;
using Sluice.Daemon.Connections;
using Sluice.Model.Services;

namespace Sluice.Daemon.Drain;

/// <summary>
/// Finishes drains: a draining backend (no new flows, existing ones kept) is removed from
/// its service once its live flows in the flow table reach zero, or when the service's
/// drain timeout has passed since sluiced first saw it draining. Checks once a second,
/// and reads the flow table only while something is draining.
/// </summary>
public sealed partial class DrainMonitor(Reconciler reconciler, DatapathHost host, ConnectionTracking connections, EventLog events, ILogger<DrainMonitor> logger) : BackgroundService
{
    private readonly Dictionary<(string Service, string Backend), DateTime> drainingSince = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
                try
                {
                    Check();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.Failed(logger, ex.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Check()
    {
        var draining = reconciler.Current.Services.Values
            .SelectMany(s => s.Definition.Backends.Where(b => b.State == "draining").Select(b => (Service: s, Backend: $"{b.Address}:{b.Port}")))
            .ToList();
        var now = DateTime.UtcNow;
        foreach (var key in drainingSince.Keys.Where(k => !draining.Any(d => d.Service.Name == k.Service && d.Backend == k.Backend)).ToList())
        {
            drainingSince.Remove(key);
        }
        if (draining.Count == 0 || !host.IsStarted)
        {
            return;
        }
        var live = LiveFlows(draining.Select(d => (d.Service, d.Backend)));
        foreach (var (service, backend) in draining)
        {
            var since = drainingSince.TryGetValue((service.Name, backend), out var first) ? first : drainingSince[(service.Name, backend)] = now;
            var count = live.GetValueOrDefault((service.Name, backend));
            var timeout = TimeSpan.FromMilliseconds(service.Definition.DrainTimeoutMs ?? ServiceDefinition.DefaultDrainTimeoutMs);
            if (count == 0 || now - since >= timeout)
            {
                Remove(service.Name, backend, count);
            }
        }
    }

    /// <summary>Live flows per draining (service, backend), from one read of the flow table.</summary>
    public Dictionary<(string, string), int> LiveFlows(IEnumerable<(Sluice.Model.State.OwnedService Service, string Backend)> backends) =>
        reconciler.Read(programmer =>
        {
            var counts = connections.LiveCounts();
            var result = new Dictionary<(string, string), int>();
            foreach (var (service, backend) in backends)
            {
                if (programmer.Services.TryGetValue(SpecMapper.ToSpec(service.Definition).Key, out var programmed)
                    && programmed.BackendIds.TryGetValue(backend, out var id))
                {
                    result[(service.Name, backend)] = counts.GetValueOrDefault((programmed.Id, id));
                }
            }
            return result;
        });

    private void Remove(string serviceName, string backend, int liveFlows)
    {
        var (_, _, removed) = reconciler.Change(state =>
        {
            if (!state.Services.TryGetValue(serviceName, out var service))
            {
                return (null, false);
            }
            var remaining = service.Definition.Backends.Where(b => !($"{b.Address}:{b.Port}" == backend && b.State == "draining")).ToList();
            if (remaining.Count == service.Definition.Backends.Count)
            {
                return (null, false);
            }
            var (next, _, conflict) = state.Put(serviceName, service.Definition with { Backends = remaining }, service.Owner);
            return conflict is null ? (next, true) : (null, false);
        });
        if (removed)
        {
            drainingSince.Remove((serviceName, backend));
            var why = liveFlows == 0 ? "its last flow ended" : $"the drain timeout passed with {liveFlows} live flow(s)";
            events.Add("drain", $"{backend} of {serviceName} drained and removed: {why}", serviceName, backend);
            Log.Removed(logger, serviceName, backend, why);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(700, LogLevel.Information, "drain finished: {Service} {Backend} removed: {Why}")]
        public static partial void Removed(ILogger logger, string service, string backend, string why);

        [LoggerMessage(701, LogLevel.Error, "drain check failed: {Error}")]
        public static partial void Failed(ILogger logger, string error);
    }
}
