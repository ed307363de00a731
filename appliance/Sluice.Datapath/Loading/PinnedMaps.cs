using Sluice.Datapath.Connections;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Interop;
using Sluice.Datapath.Maps;

namespace Sluice.Datapath.Loading;

/// <summary>
/// The pinned maps opened directly from bpffs, without loading a program: how a tool
/// reads what the datapath is doing while no control plane runs.
/// </summary>
public sealed unsafe class PinnedMaps : IDisposable
{
    private readonly List<FileDescriptorHandle> handles = [];

    private PinnedMaps(string pinPath)
    {
        PinPath = pinPath;
        Services = new(MapNames.Services, OpenPinned(MapNames.Services));
        var backendsFd = OpenPinned(MapNames.Backends);
        Backends = new(MapNames.Backends, backendsFd);
        BackendCapacity = MapInfo.MaxEntries(backendsFd, MapNames.Backends);
        Flows = new(MapNames.Flows, OpenPinned(MapNames.Flows));
        Nat = new SnatSlotTable(MapNames.Nat, OpenPinned(MapNames.Nat));
        Handshakes = new(MapNames.Handshakes, OpenPinned(MapNames.Handshakes));
        Reaper = File.Exists(Path.Combine(pinPath, MapNames.ReaperPin)) ? new FlowReaper(OpenPinned(MapNames.ReaperPin)) : null;
        Counters = new(MapNames.Counters, OpenPinned(MapNames.Counters));
        Drops = new(MapNames.Drops, OpenPinned(MapNames.Drops));
        ServiceStats = new(MapNames.ServiceStats, OpenPinned(MapNames.ServiceStats));
        BackendStats = new(MapNames.BackendStats, OpenPinned(MapNames.BackendStats));
    }

    public string PinPath { get; }

    public BpfMap<ServiceKey, ServiceEntry> Services { get; }

    public BpfMap<uint, BackendEntry> Backends { get; }

    public uint BackendCapacity { get; }

    public BpfMap<Tuple5, FlowEntry> Flows { get; }

    public SnatSlotTable Nat { get; }

    public BpfMap<uint, long> Handshakes { get; }

    /// <summary>The pinned reaper program of the loaded datapath (the sweeper's hand in the kernel);
    /// null if the datapath was loaded by a version without one.</summary>
    public FlowReaper? Reaper { get; }

    public PerCpuArray<ulong> Counters { get; }

    public PerCpuArray<ulong> Drops { get; }

    public PerCpuArray<TrafficCounters> ServiceStats { get; }

    public PerCpuArray<TrafficCounters> BackendStats { get; }

    public static PinnedMaps Open(string pinPath)
    {
        if (!File.Exists(Path.Combine(pinPath, MapNames.Services)))
        {
            throw new DatapathException($"no Sluice datapath is pinned at {pinPath}");
        }
        return new PinnedMaps(pinPath);
    }

    private int OpenPinned(string name)
    {
        var path = Path.Combine(PinPath, name);
        var handle = new FileDescriptorHandle(BpfException.ThrowIfNegative(Libbpf.ObjGet(path), $"open {path}"));
        handles.Add(handle);
        return handle.Fd;
    }

    public void Dispose()
    {
        Nat.Dispose();
        foreach (var handle in handles)
        {
            handle.Dispose();
        }
    }
}
