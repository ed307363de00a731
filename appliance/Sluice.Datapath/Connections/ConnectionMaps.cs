using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Maps;

namespace Sluice.Datapath.Connections;

/// <summary>
/// The maps the sweeper reads and writes, from a loaded datapath or straight from the pins
/// (a tool sweeping for a datapath no daemon runs). <c>PinPath</c>: where it is pinned, if it is
/// (its sweeper locks that directory).
/// </summary>
public sealed record ConnectionMaps(
    BpfMap<Tuple5, FlowEntry> Flows, SnatSlotTable Nat, BpfMap<ServiceKey, ServiceEntry> Services,
    BpfMap<uint, BackendEntry> Backends, BpfMap<uint, long> Handshakes, FlowReaper Reaper, string? PinPath = null)
{
    public static ConnectionMaps Of(XdpDatapath datapath) =>
        new(datapath.Flows, datapath.Nat, datapath.Services, datapath.Backends, datapath.Handshakes, datapath.Reaper, datapath.Options.PinPath);

    public static ConnectionMaps Of(PinnedMaps pinned) =>
        new(pinned.Flows, pinned.Nat, pinned.Services, pinned.Backends, pinned.Handshakes,
            pinned.Reaper ?? throw new DatapathException($"no reaper program is pinned at {pinned.PinPath}: restart sluiced to load this version's datapath"),
            pinned.PinPath);
}
