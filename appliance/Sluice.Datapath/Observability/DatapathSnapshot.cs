using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Maps;
using Sluice.Datapath.Programming;

namespace Sluice.Datapath.Observability;

public sealed record BackendSnapshot(uint Id, string Address, ushort Port, TrafficCounters Traffic);

public sealed record ServiceSnapshot(uint Id, string Vip, ushort Port, L4Protocol Protocol, ServiceMode Mode, bool SourceAffinity,
    TrafficCounters Traffic, IReadOnlyList<BackendSnapshot> Backends);

/// <summary>What the maps say right now: services and backends with their counters, global counters, drops.</summary>
public sealed record DatapathSnapshot(
    IReadOnlyList<ServiceSnapshot> Services,
    IReadOnlyDictionary<DatapathCounter, ulong> Counters,
    IReadOnlyDictionary<DropReason, ulong> Drops,
    int Flows)
{
    public static DatapathSnapshot Read(PinnedMaps maps) => Read(
        maps.Services, maps.Backends, maps.BackendCapacity, maps.ServiceStats, maps.BackendStats, maps.Counters, maps.Drops, maps.Flows);

    public static DatapathSnapshot Read(XdpDatapath datapath) => Read(
        datapath.Services, datapath.Backends, datapath.Options.MaxBackends, datapath.ServiceStats, datapath.BackendStats,
        datapath.Counters, datapath.Drops, datapath.Flows);

    private static DatapathSnapshot Read(
        BpfMap<ServiceKey, ServiceEntry> services, BpfMap<uint, BackendEntry> backends, uint backendCapacity,
        PerCpuArray<TrafficCounters> serviceStats, PerCpuArray<TrafficCounters> backendStats,
        PerCpuArray<ulong> counters, PerCpuArray<ulong> drops, BpfMap<Tuple5, FlowEntry> flows)
    {
        var backendsByService = new Dictionary<uint, List<BackendSnapshot>>();
        for (uint id = 0; id < backendCapacity; id++)
        {
            if (backends.TryLookup(id, out var backend) && backend.Flags.HasFlag(BackendFlags.Present))
            {
                if (!backendsByService.TryGetValue(backend.ServiceId, out var list))
                {
                    backendsByService[backend.ServiceId] = list = [];
                }
                list.Add(new BackendSnapshot(id, backend.Address.ToString(), backend.Port.ToHost(), Sum(backendStats.Read(id))));
            }
        }
        var serviceList = services.Entries()
            .Select(e => new ServiceSnapshot(e.Value.Id, e.Key.Vip.ToString(), e.Key.Port.ToHost(), (L4Protocol)e.Key.Protocol,
                e.Value.Mode, e.Value.Flags.HasFlag(ServiceFlags.SourceAffinity), Sum(serviceStats.Read(e.Value.Id)),
                backendsByService.GetValueOrDefault(e.Value.Id)?.OrderBy(b => b.Address).ThenBy(b => b.Port).ToList() ?? []))
            .OrderBy(s => s.Vip).ThenBy(s => s.Port)
            .ToList();
        return new DatapathSnapshot(
            serviceList,
            Enum.GetValues<DatapathCounter>().ToDictionary(c => c, c => counters.Read((uint)c).Aggregate(0UL, (a, b) => a + b)),
            Enum.GetValues<DropReason>().Where(r => r != DropReason.None).ToDictionary(r => r, r => drops.Read((uint)r).Aggregate(0UL, (a, b) => a + b)),
            flows.Count());
    }

    private static TrafficCounters Sum(TrafficCounters[] perCpu) => perCpu.Aggregate(default(TrafficCounters), (a, b) => a + b);
}
