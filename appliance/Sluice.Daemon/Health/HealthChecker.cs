using System.Net;
using Sluice.Daemon.Events;
using Sluice.Daemon.Hosting;
using Sluice.Daemon.Metrics;
using Sluice.Daemon.Reconciling;
using Sluice.Model.Services;
using Sluice.Model.State;

namespace Sluice.Daemon.Health;

/// <summary>
/// Runs one probe loop per checked backend, following the desired state as it changes.
/// Probes start on a fixed period (interval minus up to 10% jitter, so appliances and
/// backends do not fall into step), so a backend that dies is down within
/// fall × interval + timeout. A transition reprograms that service at once.
/// </summary>
public sealed partial class HealthChecker(
    Reconciler reconciler, HealthRegistry registry, EventLog events, SluiceMetrics metrics,
    IHostApplicationLifetime lifetime, ILogger<HealthChecker> logger) : BackgroundService
{
    private readonly Dictionary<string, (CancellationTokenSource Stop, Task Loop)> probes = [];

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
                Sync(reconciler.Current, stoppingToken);
                await Task.Delay(TimeSpan.FromMilliseconds(250), stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            foreach (var (stop, _) in probes.Values)
            {
                stop.Cancel();
            }
            await Task.WhenAll(probes.Values.Select(p => p.Loop));
        }
    }

    /// <summary>Starts loops for new (service, backend, check) triples, stops those gone.</summary>
    private void Sync(DesiredState state, CancellationToken stoppingToken)
    {
        var wanted = new Dictionary<string, (string Service, BackendDefinition Backend, HealthCheckDefinition Check)>();
        foreach (var service in state.Services.Values)
        {
            if (service.Definition.HealthCheck is not { } check)
            {
                continue;
            }
            foreach (var backend in service.Definition.Backends)
            {
                wanted[$"{service.Name}|{backend.Address}:{backend.Port}|{ModelJson.Canonical(check)}"] = (service.Name, backend, check);
            }
        }
        foreach (var key in probes.Keys.Where(k => !wanted.ContainsKey(k)).ToList())
        {
            probes[key].Stop.Cancel();
            probes.Remove(key);
            var parts = key.Split('|');
            if (!wanted.Keys.Any(k => k.StartsWith($"{parts[0]}|{parts[1]}|", StringComparison.Ordinal)))
            {
                // No longer checked: forget its health, and put it back if it was down.
                var wasDown = registry.IsDown(parts[0], parts[1]);
                registry.Forget(parts[0], parts[1]);
                if (wasDown)
                {
                    reconciler.Reprogram(parts[0]);
                }
            }
        }
        foreach (var (key, (service, backend, check)) in wanted)
        {
            if (!probes.ContainsKey(key))
            {
                var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                probes[key] = (stop, Task.Run(() => Loop(service, backend, check, stop.Token)));
            }
        }
    }

    private async Task Loop(string service, BackendDefinition backend, HealthCheckDefinition check, CancellationToken stop)
    {
        var name = $"{backend.Address}:{backend.Port}";
        var target = new IPEndPoint(IPAddress.Parse(backend.Address!), check.Port ?? backend.Port!.Value);
        var next = DateTime.UtcNow;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var delay = next - DateTime.UtcNow;
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, stop);
                }
                next = DateTime.UtcNow + TimeSpan.FromMilliseconds(check.IntervalMs * (1 - (Random.Shared.NextDouble() * 0.1)));
                var error = await Probe.Run(check, target, stop);
                if (stop.IsCancellationRequested)
                {
                    return;
                }
                if (registry.Report(service, name, error, check.Rise, check.Fall) is bool up)
                {
                    Transition(service, name, up, error);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                // A failed reprogram is counted by the reconciler; keep probing.
                Log.ProbeLoopError(logger, service, name, ex.Message);
            }
        }
    }

    private void Transition(string service, string backend, bool up, string? error)
    {
        reconciler.Reprogram(service);
        var state = up ? "up" : "down";
        metrics.HealthTransitions.WithLabels(service, backend, state).Inc();
        events.Add("health", up ? $"{backend} of {service} is up" : $"{backend} of {service} is down: {error}", service, backend);
        if (up) Log.Up(logger, service, backend);
        else Log.Down(logger, service, backend, error ?? "");
    }

    private static partial class Log
    {
        [LoggerMessage(600, LogLevel.Warning, "backend down: {Service} {Backend}: {Reason}")]
        public static partial void Down(ILogger logger, string service, string backend, string reason);

        [LoggerMessage(601, LogLevel.Information, "backend up: {Service} {Backend}")]
        public static partial void Up(ILogger logger, string service, string backend);

        [LoggerMessage(602, LogLevel.Error, "health check of {Service} {Backend} failed to apply: {Error}")]
        public static partial void ProbeLoopError(ILogger logger, string service, string backend, string error);
    }
}
