using Sluice.Daemon.Health;
using Sluice.Daemon.Metrics;
using Sluice.Datapath.Neighbours;
using Sluice.Datapath.Programming;
using Sluice.Model.Services;
using Sluice.Model.State;

namespace Sluice.Daemon.Reconciling;

/// <summary>
/// The single writer of the desired state and the datapath. Every change, from the API,
/// a config reload or start-up, goes through <see cref="Change"/>: the new state is
/// computed, its difference programmed (only the changed services), API-owned services
/// persisted, and only then published. A failure anywhere leaves the old state in force.
/// </summary>
public sealed partial class Reconciler(
    ApiStateStore store, HealthRegistry health, SluiceMetrics metrics, NextHopKeeper nextHops, Events.EventLog events, ILogger<Reconciler> logger)
{
    /// <summary>How long programming waits for new backends' next hops to resolve (each change, not each backend).</summary>
    public static readonly TimeSpan NextHopPatience = TimeSpan.FromSeconds(1);

    private readonly Lock gate = new();
    private DatapathProgrammer? programmer;

    public DesiredState Current { get; private set; } = DesiredState.Empty;

    /// <summary>Takes over the (possibly adopted) datapath and programs <paramref name="initial"/>, removing what it does not hold.</summary>
    public void Start(DatapathProgrammer datapath, DesiredState initial)
    {
        lock (gate)
        {
            programmer = datapath;
            var wanted = initial.Services.Values.Select(s => SpecMapper.ToSpec(s.Definition).Key).ToHashSet();
            foreach (var stale in datapath.Services.Keys.Where(k => !wanted.Contains(k)).ToList())
            {
                datapath.Remove(stale);
                Log.RemovedStale(logger, stale.ToString());
            }
            PrepareNextHops(initial.Services.Values);
            datapath.ApplyAll(initial.Services.Values.Select(ToSpec).ToList());
            Current = initial;
        }
    }

    /// <summary>
    /// Computes a change with <paramref name="decide"/> (which sees the current state and
    /// returns the next, or null to change nothing) and applies it unless
    /// <paramref name="dryRun"/>. Returns the state in force afterwards and the plan.
    /// </summary>
    public (DesiredState State, ReconcilePlan Plan, T Outcome) Change<T>(Func<DesiredState, (DesiredState? Next, T Outcome)> decide, bool dryRun = false)
    {
        lock (gate)
        {
            var before = Current;
            var (next, outcome) = decide(before);
            if (next is null)
            {
                return (before, new ReconcilePlan([], []), outcome);
            }
            var plan = ReconcilePlan.Between(before, next);
            if (dryRun || plan.IsEmpty)
            {
                return (before, plan, outcome);
            }
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                Program(plan);
                if (!ApiServicesEqual(plan))
                {
                    store.Save(next.Of(Owner.Api));
                }
            }
            catch
            {
                metrics.MapOperationErrors.Inc();
                Program(ReconcilePlan.Between(next, before)); // put back what was in force
                throw;
            }
            Current = next;
            ReportResizes(before, plan);
            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            metrics.ReconcileDuration.Observe(elapsed.TotalSeconds);
            Log.Reconciled(logger, plan.Upserts.Count, plan.Removals.Count, elapsed.TotalMilliseconds);
            return (next, plan, outcome);
        }
    }

    private void Program(ReconcilePlan plan)
    {
        var datapath = programmer ?? throw new InvalidOperationException("the datapath is not started");
        foreach (var removed in plan.Removals)
        {
            datapath.Remove(SpecMapper.ToSpec(removed.Definition).Key);
        }
        PrepareNextHops(plan.Upserts);
        datapath.ApplyAll(plan.Upserts.Select(ToSpec).ToList());
    }

    /// <summary>A Maglev table that changed size reshuffles nearly all new connections of its service: never silently.</summary>
    private void ReportResizes(DesiredState before, ReconcilePlan plan)
    {
        foreach (var service in plan.Upserts)
        {
            if (!before.Services.TryGetValue(service.Name, out var old))
            {
                continue;
            }
            var (was, now) = (TableSize(old.Definition), TableSize(service.Definition));
            if (was != now)
            {
                Log.Resized(logger, service.Name, was, now, service.Definition.Backends.Count);
                events.Add("config", $"the Maglev table of {service.Name} was resized from {was} to {now} slots ({service.Definition.Backends.Count} backends): " +
                    "new connections are spread afresh, open ones keep their backends", service.Name);
            }
        }
    }

    private static int TableSize(ServiceDefinition definition) =>
        definition.MaglevTableSize ?? Sluice.Datapath.Maglev.MaglevTableSizes.For(definition.Backends.Count);

    /// <summary>New backends' next hops resolved before their first packet (never fails the change:
    /// a next hop that does not resolve shows in the backend's status).</summary>
    private void PrepareNextHops(IEnumerable<OwnedService> services)
    {
        try
        {
            nextHops.Prepare(NextHops.NextHopMonitor.BackendsOf(services), NextHopPatience);
        }
        catch (Exception ex)
        {
            Log.NextHopsFailed(logger, ex);
        }
    }

    /// <summary>The service as the datapath should have it now: its definition with its backends' health.</summary>
    private ServiceSpec ToSpec(OwnedService service) =>
        SpecMapper.ToSpec(service.Definition, backend => health.IsDown(service.Name, backend));

    /// <summary>Programs one service again after a health change of one of its backends.</summary>
    public void Reprogram(string name)
    {
        lock (gate)
        {
            if (programmer is null || !Current.Services.TryGetValue(name, out var service))
            {
                return;
            }
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                programmer.Apply(ToSpec(service));
            }
            catch
            {
                metrics.MapOperationErrors.Inc();
                throw;
            }
            metrics.ReconcileDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    /// <summary>Whether the API-owned part differs (then it must be persisted); by the plan, not by re-serialising every service.</summary>
    private static bool ApiServicesEqual(ReconcilePlan plan) =>
        plan.Upserts.All(s => s.Owner != Owner.Api) && plan.Removals.All(s => s.Owner != Owner.Api);

    /// <summary>Reads under the writer's lock (map reads must not race a swap of ids).</summary>
    public T Read<T>(Func<DatapathProgrammer, T> read)
    {
        lock (gate)
        {
            return read(programmer ?? throw new InvalidOperationException("the datapath is not started"));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(200, LogLevel.Information, "reconciled: {Upserts} service(s) programmed, {Removals} removed in {Milliseconds:F2} ms")]
        public static partial void Reconciled(ILogger logger, int upserts, int removals, double milliseconds);

        [LoggerMessage(201, LogLevel.Information, "removed service {Endpoint}: in the pinned maps but no longer desired")]
        public static partial void RemovedStale(ILogger logger, string endpoint);

        [LoggerMessage(203, LogLevel.Warning, "Maglev table of {Service} resized from {Was} to {Now} slots ({Backends} backends): new connections spread afresh")]
        public static partial void Resized(ILogger logger, string service, int was, int now, int backends);

        [LoggerMessage(202, LogLevel.Warning, "preparing the new backends' next hops failed; they are programmed all the same")]
        public static partial void NextHopsFailed(ILogger logger, Exception exception);
    }
}
