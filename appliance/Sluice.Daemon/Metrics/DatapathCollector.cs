using Prometheus;
using Sluice.Daemon.Datapath;
using Sluice.Daemon.Health;
using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Abi;
using Sluice.Daemon.Connections;
using Sluice.Datapath.Connections;

namespace Sluice.Daemon.Metrics;

/// <summary>
/// Reads the per-CPU counters, the flow and NAT tables at scrape time and sets the
/// exported series. A service that is gone, or whose kernel counters restarted under a
/// new id, loses its series first, so no counter ever goes backwards.
/// </summary>
public sealed class DatapathCollector(SluiceMetrics metrics, Reconciler reconciler, DatapathHost host, HealthRegistry health, ConnectionTracking connections)
{
    private readonly Lock gate = new();
    private Dictionary<string, (uint Id, List<string> Backends)> exported = [];

    public void Collect()
    {
        if (!host.IsStarted)
        {
            return;
        }
        lock (gate)
        {
            reconciler.Read(programmer =>
            {
                var datapath = host.Datapath;
                var snapshot = connections.Read();
                var live = ConnectionTable.LiveCounts(snapshot.Connections, ConnectionTable.NowNs(), connections.Timeouts);
                var next = new Dictionary<string, (uint, List<string>)>();
                foreach (var service in reconciler.Current.Services.Values)
                {
                    if (!programmer.Services.TryGetValue(SpecMapper.ToSpec(service.Definition).Key, out var programmed))
                    {
                        continue;
                    }
                    if (exported.TryGetValue(service.Name, out var before) && before.Id != programmed.Id)
                    {
                        Forget(service.Name, before.Backends);
                    }
                    Traffic(programmer.ServiceCounters(programmed.Id), service.Name);
                    var backends = new List<string>();
                    foreach (var backend in service.Definition.Backends)
                    {
                        var name = $"{backend.Address}:{backend.Port}";
                        if (!programmed.BackendIds.TryGetValue(name, out var id))
                        {
                            continue;
                        }
                        backends.Add(name);
                        Traffic(programmer.BackendCounters(id), service.Name, name);
                        metrics.BackendUp.WithLabels(service.Name, name).Set(health.IsDown(service.Name, name) ? 0 : 1);
                        metrics.BackendDraining.WithLabels(service.Name, name).Set(backend.State == "draining" ? 1 : 0);
                        metrics.BackendLiveFlows.WithLabels(service.Name, name).Set(live.GetValueOrDefault((programmed.Id, id)));
                    }
                    if (exported.TryGetValue(service.Name, out before) && before.Id == programmed.Id)
                    {
                        Forget(service.Name, before.Backends.Except(backends).ToList(), serviceToo: false);
                    }
                    next[service.Name] = (programmed.Id, backends);
                }
                foreach (var (name, gone) in exported.Where(e => !next.ContainsKey(e.Key)))
                {
                    Forget(name, gone.Backends);
                }
                exported = next;

                var drops = datapath.Drops;
                foreach (var reason in Enum.GetValues<DropReason>().Where(r => r != DropReason.None))
                {
                    metrics.Drops.WithLabels(Snake(reason.ToString())).IncTo(drops.Read((uint)reason).Aggregate(0UL, (a, b) => a + b));
                }
                foreach (var counter in Enum.GetValues<DatapathCounter>())
                {
                    metrics.PacketEvents.WithLabels(Snake(counter.ToString())).IncTo(datapath.Counters.Read((uint)counter).Aggregate(0UL, (a, b) => a + b));
                }
                metrics.SnatAllocationFailures.IncTo(drops.Read((uint)DropReason.SnatExhausted).Aggregate(0UL, (a, b) => a + b));
                metrics.FlowEntries.Set(snapshot.Connections.Count);
                metrics.FlowCapacity.Set(datapath.Options.FlowTableSize);
                metrics.NatEntries.Set(snapshot.Connections.Count(c => c.Reverse is not null) + snapshot.OrphanReverseHalves.Count);
                metrics.NatCapacity.Set(datapath.Options.NatTableSize ?? datapath.Options.FlowTableSize);
                // Every fullnat reverse half holds its port, orphans included, until the sweeper frees it.
                metrics.SnatPortsInUse.Set(snapshot.Connections.Count(c => c.Reverse is not null && c.Forward.Mode == ServiceMode.FullNat)
                    + snapshot.OrphanReverseHalves.Count(o => o.Key.DestinationAddress != o.Value.DestinationAddress));
                return 0;
            });
        }
    }

    private void Traffic(TrafficCounters counters, string service, string? backend = null)
    {
        string[] labels = backend is null ? [service] : [service, backend];
        (backend is null ? metrics.ServicePackets : metrics.BackendPackets).WithLabels(labels).IncTo(counters.Packets);
        (backend is null ? metrics.ServiceBytes : metrics.BackendBytes).WithLabels(labels).IncTo(counters.Bytes);
        (backend is null ? metrics.ServiceNewFlows : metrics.BackendNewFlows).WithLabels(labels).IncTo(counters.NewFlows);
        (backend is null ? metrics.ServiceReplyPackets : metrics.BackendReplyPackets).WithLabels(labels).IncTo(counters.ReplyPackets);
        (backend is null ? metrics.ServiceReplyBytes : metrics.BackendReplyBytes).WithLabels(labels).IncTo(counters.ReplyBytes);
    }

    private void Forget(string service, List<string> backends, bool serviceToo = true)
    {
        if (serviceToo)
        {
            foreach (var counter in new[] { metrics.ServicePackets, metrics.ServiceBytes, metrics.ServiceNewFlows, metrics.ServiceReplyPackets, metrics.ServiceReplyBytes })
            {
                counter.RemoveLabelled(service);
            }
        }
        foreach (var backend in backends)
        {
            foreach (var counter in new[] { metrics.BackendPackets, metrics.BackendBytes, metrics.BackendNewFlows, metrics.BackendReplyPackets, metrics.BackendReplyBytes })
            {
                counter.RemoveLabelled(service, backend);
            }
            foreach (var gauge in new[] { metrics.BackendUp, metrics.BackendDraining, metrics.BackendLiveFlows })
            {
                gauge.RemoveLabelled(service, backend);
            }
        }
    }

    /// <summary>SnatExhausted -> snat_exhausted: Prometheus label values in the usual style.</summary>
    private static string Snake(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
