using System.Reflection;
using Sluice.Daemon.Datapath;
using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Observability;

namespace Sluice.Daemon.Api;

public sealed record InterfaceStatus(string Name, string Mode, uint AttachedProgramId, bool Ours);

public sealed record DatapathStatus(bool Healthy, string Detail, uint ProgramId, string PinPath, bool AdoptedPinnedMaps, IReadOnlyList<InterfaceStatus> Interfaces, IReadOnlyList<VlanStatus> Vlans);

/// <summary>An 802.1Q sub-interface of an attached interface: its VLAN's frames are balanced.</summary>
public sealed record VlanStatus(string Name, string Parent, int VlanId);

public sealed record StatusCounts(int Services, int Backends, int Flows);

/// <summary>Backends' next hops: how many are kept, how many unresolved, and the first of those.</summary>
public sealed record NextHopsStatus(int Backends, int Unresolved, IReadOnlyList<NextHopProblem> Problems);

public sealed record NextHopProblem(string Backend, string Problem);

public sealed record StatusView(
    DatapathStatus Datapath,
    StatusCounts Counts,
    NextHopsStatus NextHops,
    IReadOnlyDictionary<string, ulong> Counters,
    IReadOnlyDictionary<string, ulong> Drops,
    IReadOnlyDictionary<string, string> Versions);

/// <summary>GET /api/v1/status: where and how the datapath runs, counts, counters, versions.</summary>
public static class StatusEndpoints
{
    public static RouteGroupBuilder MapStatusEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/status", Status).WithTags("status").Produces<StatusView>();
        return api;
    }

    public static IResult Status(DatapathHost host, Reconciler reconciler, Sluice.Datapath.Neighbours.NextHopKeeper nextHops)
    {
        var hops = nextHops.Statuses.Values.ToList();
        var unresolved = hops.Where(h => !h.Resolved).OrderBy(h => h.Backend.ToString(), StringComparer.Ordinal).ToList();
        var datapath = host.Datapath;
        var (healthy, detail) = host.Health();
        var snapshot = reconciler.Read(_ => DatapathSnapshot.Read(datapath));
        var interfaces = host.Attached.Select(a =>
        {
            var id = Sluice.Datapath.Loading.XdpDatapath.AttachedProgramId(a.Key);
            return new InterfaceStatus(a.Key, a.Value.ToString().ToLowerInvariant(), id, id == datapath.ProgramId);
        }).ToList();
        return Results.Ok(new StatusView(
            new DatapathStatus(healthy, detail, datapath.ProgramId, datapath.Options.PinPath ?? "", datapath.AdoptedPinnedMaps, interfaces,
                host.Vlans.Select(v => new VlanStatus(v.Name, v.ParentName, v.VlanId)).ToList()),
            new StatusCounts(reconciler.Current.Services.Count, snapshot.Services.Sum(s => s.Backends.Count), snapshot.Flows),
            new NextHopsStatus(hops.Count, unresolved.Count, unresolved.Take(20).Select(h => new NextHopProblem(h.Backend.ToString(), h.Problem!)).ToList()),
            snapshot.Counters.ToDictionary(c => Camel(c.Key.ToString()), c => c.Value),
            snapshot.Drops.ToDictionary(d => Camel(d.Key.ToString()), d => d.Value),
            new Dictionary<string, string>
            {
                ["sluiced"] = typeof(StatusEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown",
                ["abi"] = Sluice.Datapath.Loading.MapNames.AbiVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["kernel"] = Environment.OSVersion.Version.ToString(),
            }));
    }

    private static string Camel(string name) => char.ToLowerInvariant(name[0]) + name[1..];
}
